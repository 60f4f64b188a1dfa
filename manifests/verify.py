"""Check a built dataset against its manifest: every row's members are in its shard with matching checksums, and
no shard holds a sample the manifest does not list."""

from __future__ import annotations

import hashlib
import tarfile

from .schemas import MEMBERS
from .storage import Store


def verify(folder) -> list[str]:
    """Problems found (empty when the dataset is intact), each naming the shard and the key. ``folder``: a path,
    a ``pyarrow.fs`` URI or a :class:`~manifests.storage.Store`."""
    store = Store.of(folder)
    rows = store.read_table("samples.parquet").to_pylist()
    by_shard: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_shard.setdefault(row["shard"], {})[row["key"]] = row
    problems = []
    for name in store.names("*.tar"):
        listed = by_shard.pop(name, {})
        seen = set()
        with store.open_input(name) as f, tarfile.open(fileobj=f) as tar:
            for member in tar.getmembers():
                key, _, ext = member.name.partition(".")
                if key not in listed:
                    problems.append(f"{name}: {member.name} is not in samples.parquet (orphan)")
                    continue
                digest = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
                if digest != listed[key][f"{ext.replace('.', '_')}_sha256"]:
                    problems.append(f"{name}: {member.name} checksum differs from the manifest")
                seen.add((key, ext))
        for key in listed:
            for ext in MEMBERS:
                if (key, ext) not in seen:
                    problems.append(f"{name}: {key}.{ext} listed in samples.parquet but missing")
    for shard in by_shard:
        problems.append(f"{shard}: listed in samples.parquet but the shard file is missing")
    return problems
