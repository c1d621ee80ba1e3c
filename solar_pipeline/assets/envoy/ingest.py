"""raw.envoy_responses -> envoy.* readings, incrementally and in bounded batches.

The watermark is the last raw row id parsed. Rows are read in id order a few thousand at a
time and polls are taken whole (a poll's rows are written in one transaction, so their ids are
contiguous), so re-parsing a year of one-minute polls never holds more than a batch in memory.

A batch always ends with the watermark past every row in it. An answer that cannot be read
(readings_from_poll catches whatever its parser raises) or whose values do not fit the table's
columns (an int beyond INTEGER or BIGINT) gives no rows: it is counted as malformed and its row
gets the reason in `parse_error`, in the same transaction as the readings and the watermark. A
re-parse clears the reason of an answer it now reads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from solar_pipeline.sources.envoy.readings import RawRow, readings_from_poll
from solar_pipeline.warehouse.db import one_row
from solar_pipeline.warehouse.fit import split_fitting
from solar_pipeline.warehouse.parse_errors import mark_parsed
from solar_pipeline.warehouse.watermarks import get_watermark, set_watermark

CONSUMER = "envoy.readings"
RAW_TABLE = "raw.envoy_responses"
# About 500 polls of 6 answers: a few MB of bodies in memory at a time.
ROWS_PER_BATCH = 3000

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
TIME_COLUMN = {"production": "reading_at", "inverters": "last_report_at", "meters": "reading_at"}


@dataclass
class IngestStats:
    polls: int = 0
    raw_rows: int = 0
    written: Counter = field(default_factory=Counter)
    malformed: Counter = field(default_factory=Counter)
    error_answers: int = 0
    # A few raw ids per kind of the answers flagged, for the run's metadata.
    malformed_ids: dict[str, list[int]] = field(default_factory=dict)

    def flagged(self, kind: str, raw_id: int) -> None:
        self.malformed[kind] += 1
        ids = self.malformed_ids.setdefault(kind, [])
        if len(ids) < 20:
            ids.append(raw_id)


def _fitting(
    conn: duckdb.DuckDBPyConnection, kind: str, rows: list[dict]
) -> tuple[list[dict], dict[int, str]]:
    """(the rows of answers that fit the table whole, {raw id: why not} for the others): an
    answer with one row that does not fit is malformed, and none of its rows is kept."""
    good, bad = split_fitting(conn, TABLES[kind], rows)
    misfits: dict[int, str] = {}
    for row, why in bad:
        misfits.setdefault(row["raw_id"], f"{why} ({TABLES[kind]})")
    return [row for row in good if row["raw_id"] not in misfits], misfits


def _insert_new(conn: duckdb.DuckDBPyConnection, kind: str, rows: list[dict]) -> int:
    if not rows:
        return 0
    table, key, at = TABLES[kind], NATURAL_KEYS[kind], TIME_COLUMN[kind]
    frame = pd.DataFrame(rows)
    conn.register("_new", frame)
    try:
        match = " AND ".join(f"t.{k} IS NOT DISTINCT FROM n.{k}" for k in key)
        # Only rows as recent as the new ones can be duplicates; the bound lets DuckDB skip
        # older row groups, so the check costs the same with a day or a year of history.
        match += f" AND t.{at} >= ?"
        inserted = conn.execute(
            f"""
            INSERT INTO {table} BY NAME
            SELECT DISTINCT ON ({", ".join(key)}) * FROM _new n
            WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})
            ORDER BY raw_id
            """,
            [frame[at].min()],
        ).fetchone()
        return int(inserted[0]) if inserted else 0
    finally:
        conn.unregister("_new")


def ingest(conn: duckdb.DuckDBPyConnection, full: bool = False) -> IngestStats:
    """Parse raw answers newer than the watermark (all of them with `full`, replacing the
    readings parsed from them before)."""
    stats = IngestStats()
    if full:
        conn.execute("BEGIN TRANSACTION")
        for table in TABLES.values():
            # Only readings whose raw answer is still here are rebuilt: readings of answers
            # moved to the Parquet archive (`raw-archive`) stay, so a re-parse never loses them.
            conn.execute(
                f"DELETE FROM {table} WHERE raw_id IN (SELECT id FROM raw.envoy_responses)"
            )
        set_watermark(conn, CONSUMER, 0)
        conn.execute("COMMIT")
    mark = get_watermark(conn, CONSUMER)
    top = one_row(conn, "SELECT coalesce(max(id), 0) FROM raw.envoy_responses")[0]
    while mark < top:
        # An id range, not ORDER BY ... LIMIT: DuckDB then reads only the row groups in range
        # instead of sorting the whole table's bodies for every batch.
        hi = mark + ROWS_PER_BATCH
        rows = conn.execute(
            """
            SELECT poll_id, envoy_serial, firmware, id, endpoint, http_status, body, fetched_at
            FROM raw.envoy_responses WHERE id > ? AND id <= ? ORDER BY id
            """,
            [mark, hi],
        ).fetchall()
        if not rows:
            mark = hi  # a gap in the sequence (a rolled-back poll)
            continue
        if hi < top and rows[0][0] != rows[-1][0]:
            # The range may end inside a poll: leave that poll for the next batch.
            cut = next(i for i in range(len(rows) - 1, -1, -1) if rows[i][0] != rows[-1][0])
            rows = rows[: cut + 1]
        polls: dict[str, tuple[str, str | None, list[RawRow]]] = {}
        for poll_id, serial, firmware, *rest in rows:
            polls.setdefault(poll_id, (serial, firmware, []))[2].append(RawRow(*rest))
        found: dict[str, list[dict]] = {kind: [] for kind in TABLES}
        problems: dict[int, tuple[str, str]] = {}
        for serial, firmware, poll_rows in polls.values():
            readings = readings_from_poll(serial, firmware, poll_rows)
            found["production"] += readings.production
            found["inverters"] += readings.inverters
            found["meters"] += readings.meters
            problems.update(readings.problems)
            stats.error_answers += readings.error_answers
        for kind in TABLES:
            found[kind], misfits = _fitting(conn, kind, found[kind])
            problems.update({raw_id: (kind, why) for raw_id, why in misfits.items()})
        for raw_id, (kind, _) in sorted(problems.items()):
            stats.flagged(kind, raw_id)
        first, mark = mark, rows[-1][3]
        conn.execute("BEGIN TRANSACTION")
        for kind, new in found.items():
            stats.written[kind] += _insert_new(conn, kind, new)
        # This batch's verdicts: the new reasons, and no stale one from an earlier parse.
        conn.execute(
            f"UPDATE {RAW_TABLE} SET parse_error = NULL "
            "WHERE id > ? AND id <= ? AND parse_error IS NOT NULL",
            [first, mark],
        )
        mark_parsed(conn, RAW_TABLE, {i: why for i, (_, why) in problems.items()})
        set_watermark(conn, CONSUMER, mark)
        conn.execute("COMMIT")
        stats.polls += len(polls)
        stats.raw_rows += len(rows)
    return stats
