"""Parsed rows checked against their table's column types before they are inserted.

A parser hands over Python values; Python's ints have no size, DuckDB's INTEGER and BIGINT do.
Inserted as they are, one answer's 2**63 (or 1e12 watts into an INTEGER) fails the whole
batch with a ConversionException, every run again. So each row is checked first, against the
types the table itself declares, and a row that does not fit is handed back with the reason:
the caller flags the answer it came from and inserts the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

import duckdb

from solar_pipeline.sources.parsing import shown

_INT_BITS = {"TINYINT": 8, "SMALLINT": 16, "INTEGER": 32, "BIGINT": 64, "HUGEINT": 128}
_UINT_BITS = {"UTINYINT": 8, "USMALLINT": 16, "UINTEGER": 32, "UBIGINT": 64}


def _integer(lo: int, hi: int) -> Callable[[Any], bool]:
    def fits(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return lo <= value <= hi

    return fits


def _double(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _checker(sql_type: str) -> Callable[[Any], bool] | None:
    if sql_type in _INT_BITS:
        bits = _INT_BITS[sql_type]
        return _integer(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if sql_type in _UINT_BITS:
        return _integer(0, 2 ** _UINT_BITS[sql_type] - 1)
    if sql_type in ("DOUBLE", "FLOAT", "REAL") or sql_type.startswith("DECIMAL"):
        return _double
    if sql_type == "VARCHAR":
        return lambda v: isinstance(v, str)
    if sql_type == "BOOLEAN":
        return lambda v: isinstance(v, bool)
    if sql_type.startswith("TIMESTAMP"):
        return lambda v: isinstance(v, datetime)
    if sql_type == "DATE":
        return lambda v: isinstance(v, date)
    return None  # a type no parser writes: left to DuckDB


def column_checks(
    conn: duckdb.DuckDBPyConnection, table: str
) -> dict[str, tuple[str, Callable[[Any], bool]]]:
    """column -> (its SQL type, a test a non-null value must pass), as the table declares."""
    schema, name = table.split(".", 1)
    rows = conn.execute(
        """
        SELECT column_name, data_type FROM information_schema.columns
        WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?
        """,
        [schema, name],
    ).fetchall()
    checks = {}
    for column, sql_type in rows:
        check = _checker(str(sql_type).upper())
        if check is not None:
            checks[column] = (str(sql_type), check)
    return checks


def misfit(row: dict[str, Any], checks: dict[str, tuple[str, Callable[[Any], bool]]]) -> str | None:
    """Why `row` cannot go into the table (the first column whose value does not fit), or None."""
    for column, value in row.items():
        if value is None or column not in checks:
            continue
        sql_type, fits = checks[column]
        if not fits(value):
            return f"{column} = {shown(value)} does not fit its {sql_type} column"
    return None


def split_fitting(
    conn: duckdb.DuckDBPyConnection, table: str, rows: Iterable[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """(rows that fit `table`, [(row, why not)] for the others)."""
    checks = column_checks(conn, table)
    good: list[dict[str, Any]] = []
    bad: list[tuple[dict[str, Any], str]] = []
    for row in rows:
        why = misfit(row, checks)
        if why is None:
            good.append(row)
        else:
            bad.append((row, why))
    return good, bad
