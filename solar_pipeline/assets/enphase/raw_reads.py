"""Reads of raw.enphase_responses that the Enphase assets share."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

RAW_TABLE = "raw.enphase_responses"

# A usable answer: HTTP 200 with a JSON body. Everything else stays raw and flagged.
USABLE = "status = 200 AND valid_json"


def latest_covering(
    conn: duckdb.DuckDBPyConnection,
    system_id: int,
    endpoints: list[str],
    start: datetime,
    end: datetime,
) -> list[tuple[int, str, str]]:
    """(id, endpoint, body) of the newest usable answer per distinct request overlapping
    [start, end), oldest first, so a caller merging them lets newer data win."""
    return conn.execute(
        f"""
        SELECT id, endpoint, body FROM {RAW_TABLE}
        WHERE system_id = ? AND endpoint IN (SELECT unnest(?)) AND {USABLE}
          AND covers_start < ? AND covers_end > ?
        QUALIFY row_number() OVER (
            PARTITION BY endpoint, query ORDER BY fetched_at DESC, id DESC
        ) = 1
        ORDER BY fetched_at, id
        """,
        [system_id, endpoints, end, start],
    ).fetchall()


def responses_after(
    conn: duckdb.DuckDBPyConnection, system_id: int, endpoint: str, after_id: int
) -> list[tuple[int, datetime, int | None, bool, str | None]]:
    """(id, fetched_at, status, valid_json, body) of every answer newer than a watermark."""
    return conn.execute(
        f"""
        SELECT id, fetched_at, status, valid_json, body FROM {RAW_TABLE}
        WHERE system_id = ? AND endpoint = ? AND id > ? ORDER BY id
        """,
        [system_id, endpoint, after_id],
    ).fetchall()


def latest_body(
    conn: duckdb.DuckDBPyConnection, system_id: int, endpoint: str, newer_than: datetime
) -> Any | None:
    row = conn.execute(
        f"""
        SELECT body FROM {RAW_TABLE}
        WHERE system_id = ? AND endpoint = ? AND {USABLE} AND fetched_at > ?
        ORDER BY fetched_at DESC LIMIT 1
        """,
        [system_id, endpoint, newer_than],
    ).fetchone()
    return json.loads(row[0]) if row else None


def last_window_end(conn: duckdb.DuckDBPyConnection, system_id: int, endpoint: str) -> int | None:
    """The end_time of the newest usable events/alarms request: where the next one resumes."""
    row = conn.execute(
        f"""
        SELECT max(CAST(json_extract_string(query, '$.end_time') AS BIGINT)) FROM {RAW_TABLE}
        WHERE system_id = ? AND endpoint = ? AND {USABLE}
        """,
        [system_id, endpoint],
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def oldest_active_alarm_start(conn: duckdb.DuckDBPyConnection, system_id: int) -> int | None:
    """Active alarms must be re-queried from their start, or we would never see them clear."""
    row = conn.execute(
        "SELECT min(epoch(started_at)) FROM enphase.alarms WHERE system_id = ? AND NOT cleared",
        [system_id],
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else None
