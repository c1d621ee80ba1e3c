"""Short-lived DuckDB connections, schema creation, and the two write patterns we use.

DuckDB lets one process write a database file at a time and keeps the file lock for as long as
a connection is open, so connections here are opened late, closed in ``finally``, and retried
briefly when another process holds the lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from solar_pipeline.settings import InvalidSettingError
from solar_pipeline.sites import FLEET_VENDORS
from solar_pipeline.sources.files import open_to_others, private_dir
from solar_pipeline.warehouse.damage import damage_error

log = logging.getLogger(__name__)

_schema_ready: set[str] = set()
_warned_open: set[Path] = set()
_schema_lock = threading.Lock()

LOCK_WAIT_S = 60.0


def _ddl_statements() -> list[str]:
    # One .sql file per schema (ops, raw, then the Enphase sources and energy); the fleet
    # vendors' tables share one shape, created from a template per vendor of sites.VENDORS.
    ddl = resources.files("solar_pipeline.warehouse.ddl")
    files = sorted((f for f in ddl.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    template = ddl.joinpath("fleet_vendor.sql.template").read_text()
    return [f.read_text() for f in files] + [
        template.replace("{vendor}", vendor) for vendor in FLEET_VENDORS
    ]


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    for ddl in _ddl_statements():
        conn.execute(ddl)


_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)$", re.IGNORECASE)


def one_row(
    conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] | None = None
) -> tuple[Any, ...]:
    """The row of a query that always returns exactly one (count, max, current_database())."""
    row = conn.execute(sql, params or []).fetchone()
    assert row is not None, f"no row from {sql}"
    return row


def _config() -> dict[str, str | bool | int | float | list[str]]:
    # DuckDB's buffer pool may grow to 80 % of RAM by default (1.2 GB in a year's re-parse, see
    # README, Performance); on a Raspberry Pi, SOLAR_DUCKDB_MEMORY_LIMIT (e.g. 256MB) caps it.
    # Opt-in: a cap can make a large operation fail instead of spilling to disk.
    limit = os.environ.get("SOLAR_DUCKDB_MEMORY_LIMIT", "").strip()
    if limit and not _MEMORY.match(limit):
        raise InvalidSettingError(
            f"SOLAR_DUCKDB_MEMORY_LIMIT={limit!r} is not a size such as 256MB or 1GB"
        )
    return {"memory_limit": limit} if limit else {}


def _raise_if_damaged(path: Path, exc: duckdb.Error) -> None:
    """A damaged file is named with how to restore a backup, not left to DuckDB's message."""
    damaged = damage_error(path, exc)
    if damaged is not None:
        raise damaged from None


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + LOCK_WAIT_S
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=_config())
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                _raise_if_damaged(path, exc)
                raise
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 1.0)
        except duckdb.Error as exc:  # "Corrupt database file" is no IOException
            _raise_if_damaged(path, exc)
            raise


@contextlib.contextmanager
def connect(path: str | Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection that is always closed, releasing the file lock even on error."""
    path = Path(path)
    created = False
    if not read_only:
        private_dir(path.parent)
        created = not path.exists()
        _warn_if_open(path.parent)
    conn = _open(path, read_only)
    if created:
        # DuckDB creates the file 0644; ours holds every raw answer, so it is private whatever
        # the directory it lies in (whose mode is the owner's business, never changed here).
        with contextlib.suppress(FileNotFoundError):
            path.chmod(0o600)
    try:
        key = str(path.resolve())
        if not read_only and key not in _schema_ready:
            with _schema_lock:
                ensure_schema(conn)
                _schema_ready.add(key)
        yield conn
    except duckdb.Error as exc:
        # A file cut short may open and fail only when a query reaches the missing blocks.
        _raise_if_damaged(path, exc)
        raise
    finally:
        conn.close()


def _warn_if_open(folder: Path) -> None:
    """Once per directory and process: DuckDB writes its write-ahead log (mode 0644, beside
    the database) into `folder`, so others who can enter it can read recent rows."""
    if folder in _warned_open or not open_to_others(folder):
        return
    _warned_open.add(folder)
    log.warning(
        "%s is open to other users (mode %o): DuckDB's write-ahead log in it is readable by them "
        "while the pipeline writes; chmod 700 %s unless they should read the data",
        folder,
        folder.stat().st_mode & 0o7777,
        folder,
    )


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    rows: pd.DataFrame,
    where: str,
    params: Sequence[object],
) -> int:
    """Delete the rows matching `where` and insert `rows` in one transaction.

    Re-running a partition therefore replaces it and never duplicates rows.
    """
    conn.execute("BEGIN TRANSACTION")
    try:
        deleted = conn.execute(f"DELETE FROM {table} WHERE {where}", list(params)).fetchone()
        if len(rows):
            conn.register("_new_rows", rows)
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _new_rows")
            conn.unregister("_new_rows")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(deleted[0]) if deleted else 0


def upsert_rows(
    conn: duckdb.DuckDBPyConnection, table: str, rows: pd.DataFrame, key: Sequence[str]
) -> None:
    """Insert or update on the natural key (which the table declares as its primary key)."""
    if not len(rows):
        return
    cols = list(rows.columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key)
    conn.register("_upsert_rows", rows)
    try:
        conn.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _upsert_rows "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
        )
    finally:
        conn.unregister("_upsert_rows")
