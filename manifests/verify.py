"""Check a built dataset against its manifest: every row's members are in its shard with matching checksums, and
no shard holds a sample the manifest does not list."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pyarrow.parquet as pq

from .schemas import MEMBERS


def verify(folder) -> list[str]:
    """Problems found (empty when the dataset is intact), each naming the shard and the key."""
    folder = Path(folder)
    rows = pq.read_table(folder / "samples.parquet").to_pylist()
    by_shard: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_shard.setdefault(row["shard"], {})[row["key"]] = row
    problems = []
    for tar_path in sorted(folder.glob("*.tar")):
        listed = by_shard.pop(tar_path.name, {})
        seen = set()
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                key, _, ext = member.name.partition(".")
                if key not in listed:
                    problems.append(f"{tar_path.name}: {member.name} is not in samples.parquet (orphan)")
                    continue
                digest = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
                if digest != listed[key][f"{ext.replace('.', '_')}_sha256"]:
                    problems.append(f"{tar_path.name}: {member.name} checksum differs from the manifest")
                seen.add((key, ext))
        for key in listed:
            for ext in MEMBERS:
                if (key, ext) not in seen:
                    problems.append(f"{tar_path.name}: {key}.{ext} listed in samples.parquet but missing")
    for shard in by_shard:
        problems.append(f"{shard}: listed in samples.parquet but the shard file is missing")
    return problems
