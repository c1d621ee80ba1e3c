from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg
import duckdb

from solar_pipeline.warehouse import connect


class DuckDBWarehouse(dg.ConfigurableResource):
    """The DuckDB file. Connections are short-lived and always closed (unlike
    dagster-duckdb's resource, which keeps the file lock after an exception)."""

    path: str

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.path, read_only=read_only) as conn:
            yield conn
