"""Parquet schemas and manifest I/O of bokehgen (ARCHITECTURE.md, "Manifests")."""

from .schemas import (
    assets_schema,
    checked_table,
    degradation_schema,
    pairs_schema,
    samples_schema,
    scene_schema,
    skipped_schema,
    write_table,
)
from .stats import stats
from .storage import SHARD_MANIFESTS, Store
from .verify import shard_problem, verify

__all__ = [
    "SHARD_MANIFESTS",
    "Store",
    "assets_schema",
    "checked_table",
    "degradation_schema",
    "pairs_schema",
    "samples_schema",
    "scene_schema",
    "shard_problem",
    "skipped_schema",
    "stats",
    "verify",
    "write_table",
]
