"""Parquet schemas and manifest I/O of bokehgen (DESIGN.md, "Manifests")."""

from .stats import stats
from .verify import verify
from .schemas import (assets_schema, degradation_schema, pairs_schema, samples_schema, scene_schema, skipped_schema,
                      write_table)

__all__ = ["assets_schema", "degradation_schema", "pairs_schema", "samples_schema", "scene_schema", "skipped_schema", "stats", "verify", "write_table"]
