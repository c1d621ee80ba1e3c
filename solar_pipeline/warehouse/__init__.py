"""DuckDB: the one place that knows the schema and how to write it safely."""

from solar_pipeline.warehouse.db import connect, ensure_schema, replace_rows, upsert_rows

__all__ = ["connect", "ensure_schema", "replace_rows", "upsert_rows"]
