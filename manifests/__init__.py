"""Parquet schemas and manifest I/O of bokehgen (DESIGN.md, "Manifests")."""

from .schemas import degradation_schema, pairs_schema, skipped_schema, write_table

__all__ = ["degradation_schema", "pairs_schema", "skipped_schema", "write_table"]
