"""Parquet schemas of bokehgen. Every table the project writes is declared here."""

from __future__ import annotations

import dataclasses
import typing

import pyarrow as pa
import pyarrow.parquet as pq

_PA = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}

# The members of every sample in a shard (DESIGN.md "Samples"), in the order the manifests list them.
MEMBERS = ("aif.png", "bokeh.png", "lq.png", "disp.npy", "json")


def _flat_fields(cls, prefix: str = "") -> list[pa.Field]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            out.extend(_flat_fields(t, f"{prefix}{f.name}_"))
        else:
            out.append(pa.field(f"{prefix}{f.name}", _PA[t]))
    return out


def assets_schema() -> pa.Schema:
    """assets.parquet: one row per foreground/background file found, skipped ones included (ok = False)."""
    from datagen.assets import Asset

    return pa.schema(_flat_fields(Asset))


def scene_schema() -> pa.Schema:
    """Columns of one scene (datagen.SceneSpec.columns()): two foregrounds, tuples split into _0, _1, …"""
    f = [pa.field(n, t) for n, t in (("seed", pa.int64()), ("index", pa.int64()), ("size", pa.int64()),
                                     ("background_id", pa.string()))]
    f += [pa.field(f"bg_crop_{i}", pa.float64()) for i in range(3)] + [pa.field("bg_flip", pa.bool_())]
    f += [pa.field(f"bg_plane_{i}", pa.float64()) for i in range(3)]
    for k in range(2):
        f += [pa.field(f"fg{k}_asset_id", pa.string()), pa.field(f"fg{k}_disparity", pa.float64()),
              pa.field(f"fg{k}_scale", pa.float64()), pa.field(f"fg{k}_center_0", pa.float64()),
              pa.field(f"fg{k}_center_1", pa.float64()), pa.field(f"fg{k}_flip", pa.bool_())]
    f += [pa.field("K", pa.float64()), pa.field("focus_target", pa.string()), pa.field("focus_u_0", pa.float64()),
          pa.field("focus_u_1", pa.float64()), pa.field("degradation_seed", pa.int64())]
    return pa.schema(f)


def degradation_schema() -> pa.Schema:
    """Columns of one degradation record (degradations.DegradationRecord.columns())."""
    from degradations.pipeline import DegradationRecord

    return pa.schema(_flat_fields(DegradationRecord))


def samples_schema() -> pa.Schema:
    """samples.parquet (and each shard's manifest): key, shard, split, every scene parameter, the focus point used,
    every degradation draw (deg_*), sha256 and size of every member."""
    base = [pa.field("key", pa.string()), pa.field("shard", pa.string()), pa.field("split", pa.string())]
    focus = [pa.field("focus_target_used", pa.string()), pa.field("focus_x", pa.float64()),
             pa.field("focus_y", pa.float64()), pa.field("focus_disparity", pa.float64())]
    deg = [pa.field(f"deg_{f.name}", f.type) for f in degradation_schema()]
    members = [pa.field(f"{m.replace('.', '_')}_{s}", t) for m in MEMBERS
               for s, t in (("sha256", pa.string()), ("bytes", pa.int64()))]
    return pa.schema(base + list(scene_schema()) + focus + deg + members)


def pairs_schema() -> pa.Schema:
    """degradations.cli output: one row per HQ/LQ pair, then every degradation draw."""
    base = [
        pa.field("name", pa.string()),
        pa.field("source", pa.string()),
        pa.field("source_sha256", pa.string()),
        pa.field("hq", pa.string()),
        pa.field("lq", pa.string()),
        pa.field("hq_height", pa.int64()),
        pa.field("hq_width", pa.int64()),
        pa.field("index", pa.int64()),
    ]
    return pa.schema(base + list(degradation_schema()))


def skipped_schema() -> pa.Schema:
    return pa.schema([pa.field("source", pa.string()), pa.field("reason", pa.string())])


def checked_table(rows: list[dict], schema: pa.Schema, source="rows") -> pa.Table:
    """Rows (dicts keyed by the schema's column names) as a table of ``schema``; a missing column is an error
    naming ``source``."""
    missing = [name for name in schema.names if rows and name not in rows[0]]
    if missing:
        raise ValueError(f"{source}: rows lack column(s) {missing}")
    return pa.Table.from_pylist(rows, schema=schema)


def write_table(rows: list[dict], schema: pa.Schema, path) -> None:
    """Write rows to a Parquet file, checked against the schema."""
    pq.write_table(checked_table(rows, schema, path), path)
