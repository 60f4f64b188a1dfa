"""A dataset folder on any filesystem pyarrow knows: a local path, or a ``pyarrow.fs`` URI (``s3://``, ``gs://``,
``hdfs://``, ``abfs://``, ``file://``).

    store = Store("s3://bucket/bokeh?region=eu-west-1")     # or Store("/data/bokeh")
    with store.open_atomic("train-000000.tar") as f: ...     # appears complete or not at all
    store.write_table(table, "train-000000.parquet"); store.names("train-*.parquet")

Every write goes to a hidden temporary name (``.NAME.tmp-PID``) first and is then moved into place: on a local
disk the file is fsynced and renamed (atomic); on object storage the final object is created by one server-side
copy once the upload is complete, so a reader never sees half a file. ``clean_partial`` removes what a killed run
left behind.
"""

from __future__ import annotations

import fnmatch
import os
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

PARTIAL = ".*.tmp-*"
SHARD_MANIFESTS = "*-[0-9][0-9][0-9][0-9][0-9][0-9].parquet"  # train-000000.parquet, val-000003.parquet


def is_uri(location) -> bool:
    return "://" in str(location)


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


class Store:
    """One flat folder of files (shards, manifests, reports) at ``location``."""

    def __init__(self, location):
        self.location = str(location)
        if is_uri(location):
            self.fs, root = pafs.FileSystem.from_uri(self.location)
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
        return self.location.split("?", 1)[0] if is_uri(self.location) else self.root

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def local_path(self, name: str) -> Path | None:
        """The file's path on this machine's disk, or None on remote storage."""
        return Path(self.path(name)) if self.local else None

    def makedirs(self) -> None:
        self.fs.create_dir(self.root, recursive=True)

    def exists(self, name: str) -> bool:
        return self.fs.get_file_info(self.path(name)).type == pafs.FileType.File

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names of the files directly in the folder that match the glob ``pattern``."""
        found = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        return sorted(i.base_name for i in found
                      if i.type == pafs.FileType.File and fnmatch.fnmatch(i.base_name, pattern))

    def read_bytes(self, name: str) -> bytes:
        with self.fs.open_input_stream(self.path(name)) as f:
            return f.read()

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
        self.fs.delete_file(self.path(name))

    def clean_partial(self) -> list[str]:
        """Delete the temporary files of an interrupted run; returns their names."""
        stale = self.names(PARTIAL)
        for name in stale:
            self.delete(name)
        return stale

    def entries(self) -> list[tuple[str, bool]]:
        """(name, is a folder) of everything directly in the folder, sorted; [] when it does not exist."""
        found = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        return sorted((i.base_name, i.type == pafs.FileType.Directory) for i in found)

    def size(self, name: str) -> int | None:
        """Size in bytes of the file ``name``, None when it is missing."""
        info = self.fs.get_file_info(self.path(name))
        return info.size if info.type == pafs.FileType.File else None

    def is_file_or_missing_parent(self) -> bool:
        """True when the folder's own path is a file, or a file stands where one of its parents should be (a
        local folder can then never be created)."""
        if self.fs.get_file_info(self.root).type == pafs.FileType.File:
            return True
        if self.local:
            for parent in Path(self.root).parents:
                if parent.exists():
                    return not parent.is_dir()
        return False
