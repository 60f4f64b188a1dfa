"""A dataset folder on any filesystem pyarrow knows: a local path, or a ``pyarrow.fs`` URI (``s3://``, ``gs://``,
``hdfs://``, ``abfs://``, ``file://``).

    store = Store("s3://bucket/bokeh?region=eu-west-1")     # or Store("/data/bokeh")
    with store.open_atomic("train-000000.tar") as f: ...     # appears complete or not at all
    store.write_table(table, "train-000000.parquet"); store.names("train-*.parquet")

Every write goes to a hidden temporary name (``.NAME.tmp-PID``) first and is then moved into place: on a local
disk the file is fsynced and renamed (atomic); on object storage the final object is created by one server-side
copy once the upload is complete, so a reader never sees half a file. ``clean_partial`` removes what a killed run
left behind.

Object storage fails fast (:func:`open_filesystem`): every filesystem opened from a URI gets bounded connect and
request timeouts and retries (S3: ``connect_timeout``, ``request_timeout`` and AWS's standard retry strategy; GCS:
``retry_limit_seconds``), every call that only asks the store something (is it there, list it, move, delete) waits
at most ``BOKEHGEN_STORAGE_TIMEOUT`` seconds in all, Ctrl-C interrupts that wait, and a failure is one line
(:class:`StorageError`) naming the URI and the cause: no credentials, credentials refused, no such bucket, endpoint
unreachable, no answer in time, Java or libhdfs missing for HDFS. The bounds come from the environment (so Ray
workers see them too) or from the URI's query string, which wins:

=============================  ===========================  =======
environment                    S3 URI query                 default
=============================  ===========================  =======
BOKEHGEN_STORAGE_TIMEOUT       -                            30 s (the whole of one call, retries included)
BOKEHGEN_STORAGE_CONNECT       connect_timeout              5 s
BOKEHGEN_STORAGE_REQUEST       request_timeout              10 s
BOKEHGEN_STORAGE_RETRIES       retries                      3 attempts
BOKEHGEN_STORAGE_GCS_RETRY     retry_limit_seconds (GCS)    5 s
=============================  ===========================  =======
"""

from __future__ import annotations

import atexit
import fnmatch
import functools
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from common.errors import UserError

PARTIAL = ".*.tmp-*"
SHARD_MANIFESTS = "*-[0-9][0-9][0-9][0-9][0-9][0-9].parquet"  # train-000000.parquet, val-000003.parquet


def is_uri(location) -> bool:
    """A ``pyarrow.fs`` URI (``s3://…``, ``gs://…``, ``file://…``): not a local path, and not a bundled
    ``demo://`` asset location (datagen.sources), which names files generated on each node."""
    location = str(location)
    return "://" in location and not location.startswith("demo://")


def shown(location) -> str:
    """A location as messages show it: a URI without its query string or user info (either may hold
    credentials: ``s3://KEY:SECRET@bucket/...``)."""
    location = str(location)
    if not is_uri(location):
        return location
    scheme, rest = location.split("?", 1)[0].split("://", 1)
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rsplit('@', 1)[-1]}{slash}{path}"


class StorageError(UserError, OSError):
    """Object storage cannot be used: one line naming the URI and the cause."""


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        v = float(value)
    except ValueError:
        v = float("nan")
    if not 0 < v < 86400:
        raise UserError(f"{name}={value!r}: expected a number of seconds in (0, 86400)")
    return v


def storage_bounds() -> dict:
    """The storage timeouts and retries in force (see the module's table), read from the environment."""
    retries = _env_seconds("BOKEHGEN_STORAGE_RETRIES", 3)
    if retries != int(retries):
        raise UserError(f"BOKEHGEN_STORAGE_RETRIES={retries}: expected a whole number of attempts")
    return {
        "timeout": _env_seconds("BOKEHGEN_STORAGE_TIMEOUT", 30.0),
        "connect": _env_seconds("BOKEHGEN_STORAGE_CONNECT", 5.0),
        "request": _env_seconds("BOKEHGEN_STORAGE_REQUEST", 10.0),
        "retries": int(retries),
        "gcs_retry": _env_seconds("BOKEHGEN_STORAGE_GCS_RETRY", 5.0),
    }


_CAUSES = (  # (what the client says, lower-cased) -> the cause in words
    (("unexpected query parameter", "invalid uri", "cannot parse uri", "unrecognized filesystem type"), "invalid URI"),
    (
        (
            "no_such_bucket",
            "nosuchbucket",
            "bucket does not exist",
            "specified bucket does not exist",
            "bucket_not_found",
            "to create buckets, enable",
        ),
        "no such bucket",
    ),
    (
        (
            "invalidaccesskeyid",
            "signaturedoesnotmatch",
            "access_denied",
            "accessdenied",
            "forbidden",
            "invalid_access_key",
            "permission_denied",
            "http response code: 403",
            "error code 403",
        ),
        "credentials refused (a wrong key, or no permission)",
    ),
    (
        (
            "no credentials",
            "unable to locate credentials",
            "could not create a oauth2 access token",
            "missing_authentication",
            "credentials",
            "unauthenticated",
        ),
        "no credentials",
    ),
    (("timed out", "timeout", "curlcode: 28"), "no answer in time (an unreachable endpoint?)"),
    (
        (
            "could not resolve",
            "couldn't connect",
            "could not connect",
            "connection refused",
            "curlcode: 6",
            "curlcode: 7",
            "network_connection",
            "unavailable",
            "failed to connect",
        ),
        "endpoint unreachable",
    ),
    (("libjvm", "java_home", "jni"), "Java is missing for HDFS (set JAVA_HOME to a JDK with lib/server/libjvm.so)"),
    (("libhdfs",), "libhdfs is missing for HDFS (set ARROW_LIBHDFS_DIR or HADOOP_HOME)"),
)


def describe_storage_error(uri, e: BaseException) -> str:
    """One line for a failed storage call on ``uri``: the URI, the cause in words, and the client's own words
    (shortened)."""
    text = " ".join(str(e).split())
    low = text.lower()
    cause = next((c for keys, c in _CAUSES if any(k in low for k in keys)), None)
    if isinstance(e, FileNotFoundError) or "path does not exist" in low or "no such file" in low:
        cause = cause or "not found"
    detail = text if len(text) <= 160 else text[:157] + "..."
    return f"{shown(uri)}: {cause}: {detail}" if cause else f"{shown(uri)}: {detail}"


def bounded(call, uri, timeout: float | None = None):
    """``call()``, waited for at most ``timeout`` seconds (the storage bound by default) in a way Ctrl-C can end:
    a blocked storage client holds the thread that calls it, so the call runs in a helper thread and this one
    waits in short steps. A StorageError names ``uri`` and the cause when it fails or does not answer in time.
    FileNotFoundError passes through (a caller may expect it)."""
    timeout = storage_bounds()["timeout"] if timeout is None else timeout
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        try:
            return call()
        except FileNotFoundError:
            raise
        except OSError as e:
            raise StorageError(describe_storage_error(uri, e)) from None
    box, done = {}, threading.Event()

    def target():
        try:
            box["value"] = call()
        except BaseException as e:  # noqa: B036 - handed to the waiting thread
            box["error"] = e
        finally:
            done.set()

    # an Event, not Thread.join: a join interrupted by Ctrl-C can mark a running thread as stopped (CPython 3.11)
    ABANDONED.append(done)  # until it is set: Ctrl-C may come at any point of the wait
    threading.Thread(target=target, name=f"storage {shown(uri)}", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not done.wait(0.05):  # Ctrl-C raises KeyboardInterrupt here
        if time.monotonic() > deadline:
            raise StorageError(
                f"{shown(uri)}: no answer within {timeout:g} s (an unreachable endpoint, or a "
                f"network that drops packets; BOKEHGEN_STORAGE_TIMEOUT sets the bound)"
            )
    ABANDONED.remove(done)
    if "error" in box:
        e = box["error"]
        if isinstance(e, (FileNotFoundError, StorageError)):
            raise e
        if isinstance(e, (OSError, ValueError)):  # pyarrow: OSError for the store, ArrowInvalid for the URI
            raise StorageError(describe_storage_error(uri, e)) from None
        raise e
    return box.get("value")


#: storage calls given up while still blocked (Ctrl-C, or no answer within the bound): the storage client's
#: own shutdown at exit would wait for them, so ``common.cli.run`` ends such a process without it
ABANDONED: list[threading.Event] = []  # set when the call has ended

_OWN_S3_KEYS = {"connect_timeout", "request_timeout", "retries"}


def check_location(fs, path: str, uri) -> pafs.FileInfo:
    """What the store says about ``path`` (``uri`` as the user gave it), asked once within the bounds: a
    StorageError in one line when the store cannot be reached, refuses the credentials, or (S3, GCS) has no such
    bucket. A missing path in an existing bucket is a FileInfo of type NotFound, not an error."""
    info = bounded(lambda: fs.get_file_info(path), uri)
    if info.type == pafs.FileType.NotFound and type(fs).__name__ in ("S3FileSystem", "GcsFileSystem"):
        bucket = path.strip("/").split("/", 1)[0]
        if bucket and bounded(lambda: fs.get_file_info(bucket), uri).type == pafs.FileType.NotFound:
            raise StorageError(f"{shown(uri)}: no such bucket '{bucket}' (or these credentials may not see it)")
    return info


@functools.lru_cache(maxsize=4096)
def cached_filesystem(uri: str):
    """:func:`open_filesystem`, made once per process and URI (a reader opens the same store file after file, and
    making an S3 filesystem may ask the bucket's region over the network)."""
    return open_filesystem(uri)


def _release_filesystems() -> None:
    """At exit, before pyarrow finalizes S3 (its own atexit hook, registered when pyarrow.fs was imported, so run
    after this one): drop the cached filesystems. An S3FileSystem still alive when the AWS SDK shuts down can crash
    the interpreter at exit (apache/arrow#38352, #41087); a test run that used S3 ended in a segfault that way."""
    import gc

    cached_filesystem.cache_clear()
    gc.collect()


atexit.register(_release_filesystems)


def open_filesystem(uri: str):
    """(filesystem, path) for a ``pyarrow.fs`` URI, with the storage bounds applied (the module's table); a
    StorageError in one line when the URI is invalid or the store cannot be reached to make it (S3 asks for a
    bucket's region when the URI does not give it)."""
    uri = str(uri)
    bounds = storage_bounds()
    scheme = uri.split("://", 1)[0].lower()
    base, _, query = uri.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    own = {k: v for k, v in params if k in _OWN_S3_KEYS} if scheme == "s3" else {}
    rest = [(k, v) for k, v in params if not (scheme == "s3" and k in _OWN_S3_KEYS)]
    if scheme in ("gs", "gcs") and not any(k == "retry_limit_seconds" for k, _ in rest):
        rest.append(("retry_limit_seconds", f"{bounds['gcs_retry']:g}"))
    plain = base + ("?" + urlencode(rest) if rest else "")
    fs, path = bounded(lambda: pafs.FileSystem.from_uri(plain), uri)
    if isinstance(fs, pafs.S3FileSystem):
        try:
            connect = float(own.get("connect_timeout", bounds["connect"]))
            request = float(own.get("request_timeout", bounds["request"]))
            retries = int(own.get("retries", bounds["retries"]))
        except ValueError as e:
            raise StorageError(f"{shown(uri)}: connect_timeout, request_timeout, retries: {e}") from None
        options = dict(fs.__reduce__()[1][0])  # the options from_uri read off the URI (region, endpoint, keys)
        options.update(
            connect_timeout=connect,
            request_timeout=request,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=max(1, retries)),
        )
        fs = pafs.S3FileSystem(**options)
    return fs, path


@contextmanager
def atomic_file(path, mode: str = "wb"):
    """A local file to write ``path`` through, complete or not at all: :meth:`Store.open_atomic` on its folder
    (the one atomic write of the project). ``mode``: "wb", or "w" for text (UTF-8, newlines as written)."""
    path = Path(path)
    with Store(path.parent).open_atomic(path.name) as f:
        if mode == "wb":
            yield f
        else:
            import io

            text = io.TextIOWrapper(f, encoding="utf-8", newline="")
            yield text
            text.flush()
            text.detach()


def save_image(path, image, **pil_options) -> None:
    """A PIL image (or an H×W[×C] uint8/uint16 array) saved at ``path`` through :func:`atomic_file`; the format
    from the file's extension, ``pil_options`` passed to ``Image.save`` (compress_level, quality, ...)."""
    from PIL import Image

    path = Path(path)
    img = image if isinstance(image, Image.Image) else Image.fromarray(image)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    with atomic_file(path) as f:
        img.save(f, format=fmt, **pil_options)


def save_figure(path, fig, **options) -> None:
    """A matplotlib figure saved at ``path`` (PNG) through :func:`atomic_file`."""
    with atomic_file(path) as f:
        fig.savefig(f, format="png", **options)


def write_csv(path, rows: list[dict], fieldnames=None) -> None:
    """Rows (dicts with the same keys) as a CSV file at ``path``, through :func:`atomic_file`."""
    import csv

    with atomic_file(path, "w") as f:
        w = csv.DictWriter(f, fieldnames=list(fieldnames or (rows[0] if rows else [])))
        w.writeheader()
        w.writerows(rows)


class Store:
    """One flat folder of files (shards, manifests, reports) at ``location``."""

    def __init__(self, location):
        self.location = str(location)
        if is_uri(location):
            self.fs, root = open_filesystem(self.location)
        else:
            self.fs, root = pafs.LocalFileSystem(), str(Path(location).resolve())
            self.location = root  # absolute: Ray workers need not share the driver's working directory
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    @classmethod
    def of(cls, folder) -> "Store":
        """``folder`` itself when it is a Store, else the Store at that path or URI."""
        return folder if isinstance(folder, cls) else cls(folder)

    def __repr__(self) -> str:
        return f"Store({self.display()!r})"

    def display(self) -> str:
        """The location without a URI's query string (which may hold credentials)."""
        return shown(self.location) if is_uri(self.location) else self.root

    def _ask(self, call, name: str | None = None):
        """A question to the store (info, listing, move, delete): bounded and interruptible on remote storage
        (:func:`bounded`), direct on a local disk."""
        if self.local:
            return call()
        where = self.display() if name is None else f"{self.display().rstrip('/')}/{name}"
        return bounded(call, where)

    def check_reachable(self) -> None:
        """Ask the store once whether the folder is there: a StorageError in one line, within the bound, when
        the store cannot be reached or refuses the credentials. Free on a local disk."""
        if not self.local:
            check_location(self.fs, self.root, self.location)

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def local_path(self, name: str) -> Path | None:
        """The file's path on this machine's disk, or None on remote storage."""
        return Path(self.path(name)) if self.local else None

    def makedirs(self) -> None:
        self._ask(lambda: self.fs.create_dir(self.root, recursive=True))

    def exists(self, name: str) -> bool:
        return self._ask(lambda: self.fs.get_file_info(self.path(name)), name).type == pafs.FileType.File

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names of the files directly in the folder that match the glob ``pattern``."""
        found = self._ask(lambda: self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True)))
        return sorted(
            i.base_name for i in found if i.type == pafs.FileType.File and fnmatch.fnmatch(i.base_name, pattern)
        )

    def read_bytes(self, name: str) -> bytes:
        try:
            with self.fs.open_input_stream(self.path(name)) as f:
                return f.read()
        except FileNotFoundError:
            raise
        except OSError as e:
            if self.local:
                raise
            raise StorageError(describe_storage_error(f"{self.display().rstrip('/')}/{name}", e)) from None

    def open_input(self, name: str):
        return self.fs.open_input_file(self.path(name))

    @contextmanager
    def open_atomic(self, name: str):
        """A binary file to write ``name`` through; it appears under its name only when the block ends without
        an exception."""
        tmp = self.path(f".{name}.tmp-{os.getpid()}")
        try:
            if self.local:
                with open(tmp, "wb") as f:
                    yield f
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path(name))
            else:
                with self.fs.open_output_stream(tmp) as f:
                    yield f
                self.fs.move(tmp, self.path(name))
        except BaseException as e:
            try:
                self.fs.delete_file(tmp)
            except OSError:
                pass
            if isinstance(e, OSError) and e.errno is not None and e.filename in (tmp, None):
                # name the file the user asked for, not its hidden temporary name (a full disk, a read-only folder)
                raise OSError(e.errno, e.strerror, self.path(name)) from e
            raise

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.open_atomic(name) as f:
            f.write(data)

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode()

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode())

    def read_table(self, name: str) -> pa.Table:
        return pq.read_table(self.path(name), filesystem=self.fs)

    def read_metadata(self, name: str):
        with self.open_input(name) as f:
            return pq.read_metadata(f)

    def write_table(self, table: pa.Table, name: str) -> None:
        with self.open_atomic(name) as f:
            pq.write_table(table, f)

    def delete(self, name: str) -> None:
        self._ask(lambda: self.fs.delete_file(self.path(name)), name)

    def clean_partial(self) -> list[str]:
        """Delete the temporary files of an interrupted run; returns their names."""
        stale = self.names(PARTIAL)
        for name in stale:
            self.delete(name)
        return stale

    def entries(self) -> list[tuple[str, bool]]:
        """(name, is a folder) of everything directly in the folder, sorted; [] when it does not exist."""
        found = self._ask(lambda: self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True)))
        return sorted((i.base_name, i.type == pafs.FileType.Directory) for i in found)

    def size(self, name: str) -> int | None:
        """Size in bytes of the file ``name``, None when it is missing."""
        info = self._ask(lambda: self.fs.get_file_info(self.path(name)), name)
        return info.size if info.type == pafs.FileType.File else None

    def is_file_or_missing_parent(self) -> bool:
        """True when the folder's own path is a file, or a file stands where one of its parents should be (a
        local folder can then never be created)."""
        if self._ask(lambda: self.fs.get_file_info(self.root)).type == pafs.FileType.File:
            return True
        if self.local:
            for parent in Path(self.root).parents:
                if parent.exists():
                    return not parent.is_dir()
        return False
