"""Summary statistics of a built dataset from its manifests."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from .storage import SHARD_MANIFESTS


def stats(folder) -> dict:
    """Counts per split and shard, failures per shard (from the shard manifests), and min/mean/max of every numeric
    column of samples.parquet. ``folder``: a path, a ``pyarrow.fs`` URI or a :class:`~manifests.storage.Store`."""
    from .verify import require_build

    store = require_build(folder)
    table = store.read_table("samples.parquet")
    out = {"samples": table.num_rows, "splits": {}, "shards": {}, "columns": {}}
    for split in set(table["split"].to_pylist()):
        out["splits"][split] = int(pc.sum(pc.equal(table["split"], split)).as_py())
    for manifest in store.names(SHARD_MANIFESTS):
        t = store.read_table(manifest)
        meta = t.schema.metadata or {}
        failures = json.loads(meta.get(b"failures", b"[]"))
        out["shards"][manifest.removesuffix(".parquet") + ".tar"] = {"samples": t.num_rows, "failures": failures}
    for name in table.column_names:
        col = table[name]
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            mm = pc.min_max(col)
            out["columns"][name] = {"min": mm["min"].as_py(), "mean": pc.mean(col).as_py(), "max": mm["max"].as_py()}
    return out
