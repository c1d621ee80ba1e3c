"""Reads of raw.enphase_responses that the Enphase assets share."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import duckdb

RAW_TABLE = "raw.enphase_responses"
WELL_FORMED_CHECK = "raw_answers_well_formed"


def well_formed_result(
    problems: dict[int, str], asset_key: dg.AssetKey | None = None
) -> dg.AssetCheckResult:
    """The typed assets' verdict on the answers they read: each unreadable one is named by raw
    id (its reason is in its row's parse_error), and any fails the check."""
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=WELL_FORMED_CHECK,
        passed=not problems,
        metadata={
            "malformed_answers": len(problems),
            "malformed_raw_ids": dg.MetadataValue.json(sorted(problems)[:20]),
        },
        description=(
            f"{len(problems)} answers could not be read; their text is kept in "
            f"{RAW_TABLE}, with the reason in parse_error"
            if problems
            else None
        ),
    )


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
    conn: duckdb.DuckDBPyConnection, system_id: int, endpoints: list[str], after_id: int
) -> list[tuple[int, datetime, str, int | None, bool, str | None]]:
    """(id, fetched_at, endpoint, status, valid_json, body) of every answer of these endpoints
    newer than a watermark, oldest first."""
    return conn.execute(
        f"""
        SELECT id, fetched_at, endpoint, status, valid_json, body FROM {RAW_TABLE}
        WHERE system_id = ? AND endpoint IN (SELECT unnest(?)) AND id > ? ORDER BY id
        """,
        [system_id, endpoints, after_id],
    ).fetchall()


def latest_answer(
    conn: duckdb.DuckDBPyConnection, system_id: int, endpoint: str, newer_than: datetime
) -> tuple[int, str] | None:
    """The newest usable answer's raw id and text, leaving out answers already found unreadable
    (parse_error), so one bad answer is never reused."""
    row = conn.execute(
        f"""
        SELECT id, body FROM {RAW_TABLE}
        WHERE system_id = ? AND endpoint = ? AND {USABLE} AND parse_error IS NULL
          AND fetched_at > ?
        ORDER BY fetched_at DESC LIMIT 1
        """,
        [system_id, endpoint, newer_than],
    ).fetchone()
    return (int(row[0]), str(row[1])) if row else None


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


def open_alarms(conn: duckdb.DuckDBPyConnection, system_id: int) -> dict[str, int]:
    """alarm_id -> start of the alarms the typed table holds open."""
    rows = conn.execute(
        "SELECT alarm_id, epoch(started_at)::BIGINT FROM enphase.alarms "
        "WHERE system_id = ? AND cleared IS NOT TRUE AND started_at IS NOT NULL",
        [system_id],
    ).fetchall()
    return {alarm_id: started for alarm_id, started in rows}


def alarms_without_end(conn: duckdb.DuckDBPyConnection, system_id: int) -> dict[str, int]:
    """alarm_id -> start of alarms seen cleared (gone from open_alarms) whose end time no
    answer gave yet, and whose week no cleared-alarm read has covered since: reads already
    made are not repeated."""
    rows = conn.execute(
        f"""
        SELECT a.alarm_id, epoch(a.started_at)::BIGINT FROM enphase.alarms a
        WHERE a.system_id = ? AND a.cleared AND a.ended_at IS NULL
          AND a.seen_cleared_at IS NOT NULL AND a.started_at IS NOT NULL
          AND NOT EXISTS (
            SELECT 1 FROM {RAW_TABLE} r
            WHERE r.system_id = a.system_id AND r.endpoint = 'alarms'
              AND r.status = 200 AND r.valid_json
              AND json_extract_string(r.query, '$.cleared') = 'true'
              AND r.fetched_at >= a.seen_cleared_at
              AND TRY_CAST(json_extract_string(r.query, '$.start_time') AS BIGINT)
                  <= epoch(a.started_at)
              AND TRY_CAST(json_extract_string(r.query, '$.end_time') AS BIGINT)
                  > epoch(a.started_at)
          )
        """,
        [system_id],
    ).fetchall()
    return {alarm_id: started for alarm_id, started in rows}


def open_events(conn: duckdb.DuckDBPyConnection, system_id: int) -> list[tuple[int, str, int]]:
    """(event_type_id, serial_number, start) of the events the typed table holds open."""
    rows = conn.execute(
        "SELECT event_type_id, serial_number, epoch(started_at)::BIGINT FROM enphase.events "
        "WHERE system_id = ? AND status = 'open'",
        [system_id],
    ).fetchall()
    return [(int(t), str(s), int(at)) for t, s, at in rows]


def has_answer(conn: duckdb.DuckDBPyConnection, system_id: int, endpoint: str) -> bool:
    row = conn.execute(
        f"SELECT count(*) FROM {RAW_TABLE} WHERE system_id = ? AND endpoint = ? AND {USABLE}",
        [system_id, endpoint],
    ).fetchone()
    return bool(row and row[0])
