"""The tables every fleet vendor (SolarEdge, SMA, GoodWe, Fronius) has in the same shape:
`raw.<vendor>_responses` (answers verbatim), `<vendor>.intervals` (one row per interval and
figure) and `<vendor>.daily_energy` (the vendor's own daily totals). Each vendor's DDL file
creates them; this module is the only code that writes them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from solar_pipeline.energy.model import Interval
from solar_pipeline.warehouse.db import replace_rows
from solar_pipeline.warehouse.parse_errors import mark_parsed


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange as the client recorded it (the query never holds a secret)."""

    endpoint: str
    query: str
    fetched_at: float
    status: int | None
    content_type: str | None
    body: str | None
    elapsed_ms: float
    error: str | None = None
    covers: tuple[date, date] | None = None  # the site-local days it answers for

    @classmethod
    def of(cls, resp: Any, covers: tuple[date, date] | None = None) -> Answer:
        """From a vendor client's response record (same fields; a dict query becomes JSON)."""
        query = resp.query
        if not isinstance(query, str):
            query = json.dumps(query, sort_keys=True)
        return cls(
            endpoint=resp.endpoint,
            query=query,
            fetched_at=resp.fetched_at,
            status=resp.status,
            content_type=resp.content_type,
            body=resp.body,
            elapsed_ms=resp.elapsed_ms,
            error=resp.error,
            covers=covers or getattr(resp, "covers", None),
        )


@dataclass(frozen=True)
class RawRow:
    id: int
    endpoint: str
    query: str
    fetched_at: datetime
    status: int | None
    body: str | None
    covers: tuple[date, date] | None


def store_answers(
    conn: duckdb.DuckDBPyConnection,
    vendor: str,
    site_id: str,
    answers: Sequence[Answer],
    ledger_api: str | None,
    run_id: str | None,
) -> None:
    """Answers into the raw table and, for a metered API, into the request ledger."""
    if not answers:
        return
    conn.execute("BEGIN TRANSACTION")
    try:
        for a in answers:
            fetched = datetime.fromtimestamp(a.fetched_at, UTC)
            conn.execute(
                f"""
                INSERT INTO raw.{vendor}_responses (fetched_at, site_id, endpoint, query, status,
                    content_type, body, elapsed_ms, error, covers_first, covers_last, run_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    fetched,
                    site_id,
                    a.endpoint,
                    a.query,
                    a.status,
                    a.content_type,
                    a.body,
                    a.elapsed_ms,
                    a.error,
                    a.covers[0] if a.covers else None,
                    a.covers[1] if a.covers else None,
                    run_id,
                ],
            )
            if ledger_api:
                conn.execute(
                    "INSERT INTO ops.api_requests VALUES (?, ?, ?, 'data', ?, ?, ?, ?)",
                    [fetched, ledger_api, a.endpoint, a.status, a.elapsed_ms, a.error, run_id],
                )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def requests_since(conn: duckdb.DuckDBPyConnection, api: str, since: datetime) -> int:
    """Requests the ledger holds for `api` since `since` (every process's, not only ours)."""
    row = conn.execute(
        "SELECT count(*) FROM ops.api_requests WHERE api = ? AND requested_at >= ?",
        [api, since],
    ).fetchone()
    return int(row[0]) if row else 0


def raw_rows(
    conn: duckdb.DuckDBPyConnection,
    vendor: str,
    site_id: str,
    first: date,
    last: date,
    start: datetime,
    end: datetime,
) -> list[RawRow]:
    """Answers for the site about days first..last: those covering them, and undated (realtime)
    ones fetched from a day before `start` to a day after `end` (the neighbouring readings
    make the intervals across the boundaries). Oldest first, so later answers win."""
    rows = conn.execute(
        f"""
        SELECT id, endpoint, query, fetched_at, status, body, covers_first, covers_last
        FROM raw.{vendor}_responses
        WHERE site_id = ? AND status = 200 AND (
            (covers_first <= ? AND covers_last >= ?)
            OR (covers_first IS NULL AND fetched_at BETWEEN ? AND ?))
        ORDER BY id
        """,
        [site_id, last, first, start - timedelta(days=1), end + timedelta(days=1)],
    ).fetchall()
    return [
        RawRow(i, e, q, f, s, b, (c0, c1) if c0 is not None else None)
        for i, e, q, f, s, b, c0, c1 in rows
    ]


def flag_problems(
    conn: duckdb.DuckDBPyConnection,
    vendor: str,
    problems: dict[int, str],
    clean: Iterable[int] = (),
) -> None:
    """A malformed answer stays in the raw table, marked with what was wrong with it; an
    answer read cleanly this time (after a parser fix) loses an old mark."""
    mark_parsed(conn, f"raw.{vendor}_responses", problems, clean)


def replace_site_energy(
    conn: duckdb.DuckDBPyConnection,
    vendor: str,
    site_id: str,
    intervals: Iterable[tuple[str, Interval, int]],
    daily: dict[date, tuple[str, float, int]],
    first: date,
    last: date,
    start: datetime,
    end: datetime,
) -> int:
    """The site's (figure, interval, raw id) ending in (start, end] and its daily totals for
    first..last, replacing what those days held. An anomalous counter interval has no value
    but keeps its row, so the flag shows."""
    rows = [
        {
            "site_id": site_id,
            "start_at": i.start_at,
            "end_at": i.end_at,
            "source": i.source,
            "figure": figure,
            "wh": getattr(i, figure),
            "flags": ",".join(i.flags) or None,
            "raw_id": raw_id,
        }
        for figure, i, raw_id in intervals
        if start < i.end_at <= end
    ]
    replace_rows(
        conn,
        f"{vendor}.intervals",
        pd.DataFrame(rows, columns=_INTERVAL_COLUMNS),
        "site_id = ? AND end_at > ? AND end_at <= ?",
        [site_id, start, end],
    )
    replace_rows(
        conn,
        f"{vendor}.daily_energy",
        pd.DataFrame(
            [
                {"site_id": site_id, "day": d, "source": s, "produced_wh": wh, "raw_id": r}
                for d, (s, wh, r) in sorted(daily.items())
                if first <= d <= last
            ],
            columns=["site_id", "day", "source", "produced_wh", "raw_id"],
        ),
        "site_id = ? AND day BETWEEN ? AND ?",
        [site_id, first, last],
    )
    return len(rows)


_INTERVAL_COLUMNS = ["site_id", "start_at", "end_at", "source", "figure", "wh", "flags", "raw_id"]


def site_intervals(
    conn: duckdb.DuckDBPyConnection, vendor: str, site_id: str, start: datetime, end: datetime
) -> list[tuple[str, Interval]]:
    rows = conn.execute(
        f"""
        SELECT start_at, end_at, source, figure, wh, flags FROM {vendor}.intervals
        WHERE site_id = ? AND end_at > ? AND start_at < ? ORDER BY end_at
        """,
        [site_id, start, end],
    ).fetchall()
    return [
        (
            figure,
            Interval(s, e, src, flags=tuple(flags.split(",")) if flags else (), **{figure: wh}),
        )
        for s, e, src, figure, wh, flags in rows
    ]


def site_daily_totals(
    conn: duckdb.DuckDBPyConnection, vendor: str, site_id: str, first: date, last: date
) -> dict[date, dict[str, float]]:
    rows = conn.execute(
        f"SELECT day, source, produced_wh FROM {vendor}.daily_energy "
        "WHERE site_id = ? AND day BETWEEN ? AND ?",
        [site_id, first, last],
    ).fetchall()
    out: dict[date, dict[str, float]] = {}
    for day, source, wh in rows:
        if wh is not None:
            out.setdefault(day, {})[source] = float(wh)
    return out
