"""raw.envoy_responses -> envoy.* readings, incrementally and in bounded batches.

The watermark is the last raw row id parsed. Polls are taken whole (a poll's rows are written
in one transaction, so their ids are contiguous), a few hundred at a time, so re-parsing a year
of one-minute polls never loads the year into memory.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from solar_pipeline.sources.envoy.readings import RawRow, readings_from_poll
from solar_pipeline.warehouse.watermarks import get_watermark, set_watermark

CONSUMER = "envoy.readings"
POLLS_PER_BATCH = 500

TABLES = {
    "production": "envoy.production_readings",
    "inverters": "envoy.inverter_readings",
    "meters": "envoy.meter_readings",
}
# What makes a reading the same reading: the gateway repeats inverter reports for 5-15
# minutes and the night-time production entry keeps its readingTime.
NATURAL_KEYS = {
    "production": ["envoy_serial", "measurement", "source", "phase", "reading_at"],
    "inverters": ["serial_number", "last_report_at"],
    "meters": ["envoy_serial", "eid", "phase", "reading_at"],
}


@dataclass
class IngestStats:
    polls: int = 0
    raw_rows: int = 0
    written: Counter = field(default_factory=Counter)
    malformed: Counter = field(default_factory=Counter)
    error_answers: int = 0


def _insert_new(conn: duckdb.DuckDBPyConnection, kind: str, rows: list[dict]) -> int:
    if not rows:
        return 0
    table, key = TABLES[kind], NATURAL_KEYS[kind]
    conn.register("_new", pd.DataFrame(rows))
    try:
        match = " AND ".join(f"t.{k} IS NOT DISTINCT FROM n.{k}" for k in key)
        inserted = conn.execute(
            f"""
            INSERT INTO {table} BY NAME
            SELECT DISTINCT ON ({", ".join(key)}) * FROM _new n
            WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})
            ORDER BY raw_id
            """
        ).fetchone()
        return int(inserted[0]) if inserted else 0
    finally:
        conn.unregister("_new")


def ingest(conn: duckdb.DuckDBPyConnection, full: bool = False) -> IngestStats:
    """Parse raw answers newer than the watermark (all of them with `full`)."""
    stats = IngestStats()
    if full:
        conn.execute("BEGIN TRANSACTION")
        for table in TABLES.values():
            conn.execute(f"DELETE FROM {table}")
        set_watermark(conn, CONSUMER, 0)
        conn.execute("COMMIT")
    mark = get_watermark(conn, CONSUMER)
    polls = conn.execute(
        """
        SELECT poll_id, any_value(envoy_serial), any_value(firmware), min(id), max(id)
        FROM raw.envoy_responses
        WHERE id > ? GROUP BY poll_id ORDER BY min(id)
        """,
        [mark],
    ).fetchall()
    for start in range(0, len(polls), POLLS_PER_BATCH):
        chunk = polls[start : start + POLLS_PER_BATCH]
        rows = conn.execute(
            """
            SELECT poll_id, id, endpoint, http_status, body, fetched_at
            FROM raw.envoy_responses WHERE id BETWEEN ? AND ? ORDER BY id
            """,
            [chunk[0][3], chunk[-1][4]],
        ).fetchall()
        by_poll: dict[str, list[RawRow]] = {}
        for poll_id, *rest in rows:
            by_poll.setdefault(poll_id, []).append(RawRow(*rest))
        found: dict[str, list[dict]] = {kind: [] for kind in TABLES}
        for poll_id, serial, firmware, _, _ in chunk:
            readings = readings_from_poll(serial, firmware, by_poll.get(poll_id, []))
            found["production"] += readings.production
            found["inverters"] += readings.inverters
            found["meters"] += readings.meters
            stats.malformed.update(readings.malformed)
            stats.error_answers += readings.error_answers
        conn.execute("BEGIN TRANSACTION")
        for kind, new in found.items():
            stats.written[kind] += _insert_new(conn, kind, new)
        set_watermark(conn, CONSUMER, chunk[-1][4])
        conn.execute("COMMIT")
        stats.polls += len(chunk)
        stats.raw_rows += len(rows)
    return stats
