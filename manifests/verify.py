"""Check a built dataset against its manifests: every row's members are in its shard with matching checksums, no
shard holds a sample the manifest does not list, and (for a resumed build) a shard matches the size and sha256 its
own manifest recorded. A shard that cannot be read is reported by name; the check goes on with the others.

    python -m manifests verify DIR_OR_URI      # prints each problem; exit 0 when intact, else 1
"""

from __future__ import annotations

import hashlib
import tarfile

from common.errors import UserError

from .schemas import member_names
from .storage import Store


def shard_problem(folder, shard: str) -> str | None:
    """None when ``shard`` (e.g. ``train-000003.tar``) matches its manifest (``train-000003.parquet``), else the
    problem, naming the shard: missing, another size, another sha256, or (for a manifest without the tar's
    checksum, written before it was recorded) a member that differs or cannot be read."""
    store = Store.of(folder)
    manifest = shard.removesuffix(".tar") + ".parquet"
    size = store.size(shard)
    if size is None:
        return f"{shard}: missing, but {manifest} marks it complete"
    meta = store.read_metadata(manifest).metadata or {}
    if b"shard_sha256" in meta:
        if size != int(meta[b"shard_bytes"]):
            return f"{shard}: {size} bytes on disk, {int(meta[b'shard_bytes'])} in {manifest} (truncated or replaced)"
        digest = hashlib.sha256()
        with store.open_input(shard) as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        if digest.hexdigest() != meta[b"shard_sha256"].decode():
            return f"{shard}: sha256 differs from {manifest} (the file was altered)"
        return None
    rows = {r["key"]: r for r in store.read_table(manifest).to_pylist()}
    problems = _check_members(store, shard, rows)
    return problems[0] if problems else None


def _check_members(store, name: str, listed: dict[str, dict]) -> list[str]:
    """Problems of one shard against its manifest rows (key -> row); an unreadable tar is one problem."""
    problems, seen = [], set()
    try:
        with store.open_input(name) as f, tarfile.open(fileobj=f) as tar:
            for member in tar:
                key, _, ext = member.name.partition(".")
                if key not in listed:
                    problems.append(f"{name}: {member.name} is not in samples.parquet (orphan)")
                    continue
                digest = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
                if digest != listed[key][f"{ext.replace('.', '_')}_sha256"]:
                    problems.append(f"{name}: {member.name} checksum differs from the manifest")
                seen.add((key, ext))
    except (tarfile.TarError, EOFError, OSError) as e:
        problems.append(f"{name}: unreadable tar ({type(e).__name__}: {e})")
        return problems
    for key, row in listed.items():
        for ext in member_names(row.get("frames") or 0, "flow_000_npy_sha256" in row):
            if (key, ext) not in seen:
                problems.append(f"{name}: {key}.{ext} listed in samples.parquet but missing")
    return problems


def require_build(folder) -> Store:
    """The Store of a finished build's folder; a UserError in one line when the folder is missing, empty, not
    a build, or a build that has not finished (no samples.parquet)."""
    store = Store.of(folder)
    store.check_reachable()
    if not store.exists("samples.parquet"):
        if not store.entries():
            raise UserError(f"{store.display()}: no such folder (or an empty one), not a build")
        if store.exists("dataset.json"):
            raise UserError(
                f"{store.display()}: no samples.parquet: the build has not finished (run the same "
                f"build command again to complete it)"
            )
        raise UserError(f"{store.display()}: no samples.parquet or dataset.json: not a folder written by datagen.build")
    return store


def verify(folder) -> list[str]:
    """Problems found (empty when the dataset is intact), each naming the shard and the key. ``folder``: a path,
    a ``pyarrow.fs`` URI or a :class:`~manifests.storage.Store`."""
    store = require_build(folder)
    rows = store.read_table("samples.parquet").to_pylist()
    by_shard: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_shard.setdefault(row["shard"], {})[row["key"]] = row
    problems = []
    for name in store.names("*.tar"):
        problems += _check_members(store, name, by_shard.pop(name, {}))
    for shard in by_shard:
        problems.append(f"{shard}: listed in samples.parquet but the shard file is missing")
    return problems
