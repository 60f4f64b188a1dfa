"""Where asset files live, and reading them on whichever node a shard runs (ARCHITECTURE.md, "Assets on a
cluster").

An asset's location (``Asset.uri``, ``alpha_uri``, ``disp_uri`` in assets.parquet) is one of:

* an absolute local path: read from this node's disk, so every node must mount the folder at the same path (a
  local folder is checked on every node before a build starts: :func:`check_node`);
* a ``pyarrow.fs`` URI (``s3://bucket/fg/a.png``, ``gs://…``, ``hdfs://…``, ``file://…``): listed and read through
  its filesystem by every node;
* ``demo://fg/NAME.png``: a bundled demo asset. Demo assets are generated deterministically from photographs that
  ship in scikit-image, so a node that lacks them generates them into its own cache (``datagen.demo_assets``)
  before it reads one; the hash check below proves that its copy is the scan's.

Every read of an asset checks the SHA-256 of its files against the one the scan recorded, so a node holding a
different copy is caught, never silently used. A file that is absent on a node is an :class:`AssetUnavailable`
naming the node and the path.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path, PurePosixPath

from common.errors import UserError
from manifests.storage import bounded, cached_filesystem, check_location, is_uri, shown

DEMO = "demo://"


class AssetUnavailable(RuntimeError):
    """An asset file that this node cannot read (absent here, or another copy than the scan's): a problem of the
    node's storage, not of one sample, so it stops the build with one line. ``changed``: the file is there but
    is not the one the scan read."""

    def __init__(self, message: str, changed: bool = False):
        super().__init__(message)
        self.changed = changed

    def __reduce__(self):  # crosses Ray's process boundary with its flag
        return (type(self), (self.args[0], self.changed))


def node_name() -> str:
    """This node's address as Ray knows it (the host name outside Ray)."""
    try:
        import ray

        if ray.is_initialized():
            return ray.util.get_node_ip_address()
    except Exception:
        pass
    return socket.gethostname()


__all__ = [
    "DEMO",
    "AssetUnavailable",
    "Folder",
    "check_node",
    "is_uri",
    "node_name",
    "read_bytes",
    "read_checked",
    "shown",
]


def _filesystem(uri: str):
    """(filesystem, path) of a URI, made once per worker process: a task reads the same assets sample after
    sample, and making an S3 filesystem may ask the bucket's region over the network."""
    return cached_filesystem(uri)


def _query(uri: str) -> str:
    return "?" + uri.split("?", 1)[1] if "?" in uri else ""


class Folder:
    """One asset folder (``--assets LAYOUT:LOCATION``): a local path, a pyarrow.fs URI or ``demo://SUB``."""

    def __init__(self, location):
        self.location = str(location)
        if self.location.startswith(DEMO):
            from .demo_assets import make_demo_assets

            self.kind = "demo"
            self.local_root = make_demo_assets() / self.location[len(DEMO) :].strip("/")
        elif is_uri(self.location):
            self.kind = "uri"
            self.fs, self.root = _filesystem(self.location)
            self.root = self.root.rstrip("/")
        else:
            self.kind = "local"
            self.local_root = Path(self.location).expanduser().resolve()

    def display(self) -> str:
        return shown(self.location)

    def prefix(self) -> str:
        """What the shown location of every file of the folder starts with."""
        return (str(self.local_root) if self.kind == "local" else shown(self.location).rstrip("/")) + "/"

    def has_subfolder(self, name: str) -> bool:
        if self.kind == "uri":
            import pyarrow.fs as pafs

            info = bounded(lambda: self.fs.get_file_info(f"{self.root}/{name}"), f"{self.display()}/{name}")
            return info.type == pafs.FileType.Directory
        return (self.local_root / name).is_dir()

    def exists(self) -> bool:
        if self.kind == "uri":
            import pyarrow.fs as pafs

            return check_location(self.fs, self.root, self.location).type == pafs.FileType.Directory
        return self.local_root.is_dir()

    def files(self) -> list[PurePosixPath]:
        """Every file below the folder, relative to it, sorted."""
        if self.kind == "uri":
            import pyarrow.fs as pafs

            infos = bounded(
                lambda: self.fs.get_file_info(pafs.FileSelector(self.root, recursive=True, allow_not_found=True)),
                self.location,
            )
            return sorted(
                PurePosixPath(i.path[len(self.root) :].lstrip("/")) for i in infos if i.type == pafs.FileType.File
            )
        import os

        def refuse(e: OSError):  # os.walk (and rglob) skip a folder they cannot list, silently: say so instead
            what = "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))
            raise UserError(
                f"{e.filename or self.local_root}: {what}: the asset folder (or a folder in it) cannot "
                f"be listed by this user"
            ) from None

        found = []
        for dirpath, _, names in os.walk(self.local_root, onerror=refuse, followlinks=True):
            here = Path(dirpath)
            found += [
                PurePosixPath((here / n).relative_to(self.local_root).as_posix()) for n in names if (here / n).is_file()
            ]
        return sorted(found)

    def uri(self, rel: PurePosixPath) -> str:
        """The location of the file ``rel`` as assets.parquet records it (a URI keeps its query string)."""
        if self.kind == "local":
            return str(self.local_root / rel)
        return f"{self.location.split('?', 1)[0].rstrip('/')}/{rel.as_posix()}{_query(self.location)}"


def _local_path(uri: str) -> Path:
    """The file on this node that a local or demo location names (demo assets generated here when absent)."""
    if uri.startswith(DEMO):
        from .demo_assets import make_demo_assets

        return make_demo_assets() / uri[len(DEMO) :]
    return Path(uri)


def read_bytes(uri: str) -> bytes:
    """The bytes of one asset file on this node; AssetUnavailable (node and path) when it is not there."""
    try:
        if is_uri(uri):
            fs, path = _filesystem(uri)
            with fs.open_input_stream(path) as f:
                return f.read()
        return _local_path(uri).read_bytes()
    except FileNotFoundError:
        raise AssetUnavailable(
            f"node {node_name()}: {shown(uri)}: missing on this node (no such file "
            f"here): put the assets on storage every node mounts, or pass a URI"
        ) from None
    except OSError as e:
        if "not found" in str(e).lower() or "no such file" in str(e).lower():
            raise AssetUnavailable(f"node {node_name()}: {shown(uri)}: missing on this node ({e})") from None
        raise AssetUnavailable(f"node {node_name()}: {shown(uri)}: cannot be read on this node ({e})") from None


def read_checked(uris: list[str], sha256: str) -> list[bytes]:
    """The bytes of an asset's files (image, matte, disparity map: the scan's order), checked against the SHA-256
    the scan recorded for them together; AssetUnavailable names the node and the files otherwise."""
    blobs = [read_bytes(u) for u in uris]
    h = hashlib.sha256()
    for b in blobs:
        h.update(b)
    if sha256 and h.hexdigest() != sha256:
        names = ", ".join(shown(u) for u in uris)
        raise AssetUnavailable(
            f"node {node_name()}: {names}: not the file the scan read (sha256 "
            f"{h.hexdigest()[:16]}…, the scan recorded {sha256[:16]}…): it changed during the "
            f"build, or this node holds another copy; keep the assets unchanged while a build "
            f"runs (and the same on every node), then run the same command again",
            changed=True,
        )
    return blobs


def check_node(samples: list[tuple[str, list]]) -> str | None:
    """Read a sample of assets (per asset folder: (folder, [Asset, ...])) as a shard on this node would, hashes
    checked; None when every one reads, else one line naming this node and the folder it cannot read."""
    for folder, assets in samples:
        for a in assets:
            try:
                read_checked([u for u in (a.uri, a.alpha_uri, a.disp_uri) if u], a.sha256)
            except AssetUnavailable as e:
                if e.changed:
                    return str(e)
                return (
                    f"node {node_name()} cannot read {folder}: put the assets on storage every node mounts, or "
                    f"pass a URI ({e})"
                )
    return None
