"""Summary statistics of a built dataset from its manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def stats(folder) -> dict:
    """Counts per split and shard, failures per shard (from the shard manifests), and min/mean/max of every numeric
    column of samples.parquet."""
    folder = Path(folder)
    table = pq.read_table(folder / "samples.parquet")
    out = {"samples": table.num_rows, "splits": {}, "shards": {}, "columns": {}}
    for split in set(table["split"].to_pylist()):
        out["splits"][split] = int(pc.sum(pc.equal(table["split"], split)).as_py())
    for manifest in sorted(folder.glob("*-[0-9][0-9][0-9][0-9][0-9][0-9].parquet")):
        t = pq.read_table(manifest)
        meta = t.schema.metadata or {}
        failures = json.loads(meta.get(b"failures", b"[]"))
        out["shards"][manifest.stem + ".tar"] = {"samples": t.num_rows, "failures": failures}
    for name in table.column_names:
        col = table[name]
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            mm = pc.min_max(col)
            out["columns"][name] = {"min": mm["min"].as_py(), "mean": pc.mean(col).as_py(), "max": mm["max"].as_py()}
    return out
