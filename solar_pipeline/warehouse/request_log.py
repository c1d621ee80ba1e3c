"""The DuckDB side of the request ledger: ops.api_requests plus the vendor's raw table.

One short connection per request writes the ledger row and the raw answer together and reads
back the usage the budget needs for the next request, so nothing holds the database while an
HTTP request is in flight, and a crash loses at most the request in flight.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from solar_pipeline.sources.enphase.ledger import LedgerEntry, RawResponse, Usage
from solar_pipeline.warehouse.db import connect


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _month_start(ts: float) -> datetime:
    t = _utc(ts)
    return datetime(t.year, t.month, 1, tzinfo=UTC)


class DuckDBRequestLog:
    def __init__(self, path: str | Path, api: str, raw_table: str, run_id: str | None = None):
        self.path = Path(path)
        self.api = api
        self.raw_table = raw_table
        self.run_id = run_id
        self._usage: tuple[int, Usage] | None = None  # (clock minute, usage)

    def _query_usage(self, conn, now: float) -> Usage:
        minute_start = _utc(now - now % 60)
        row = conn.execute(
            """
            SELECT count(*) FILTER (WHERE requested_at >= ?), count(*)
            FROM ops.api_requests
            WHERE api = ? AND kind = 'data' AND status IS NOT NULL AND requested_at >= ?
            """,
            [minute_start, self.api, _month_start(now)],
        ).fetchone()
        usage = Usage(int(row[0]), int(row[1]))
        self._usage = (int(now // 60), usage)
        return usage

    def usage(self, now: float) -> Usage:
        if self._usage is not None and self._usage[0] == int(now // 60):
            return self._usage[1]
        with connect(self.path) as conn:
            return self._query_usage(conn, now)

    def record(self, entry: LedgerEntry, raw: RawResponse | None = None) -> int | None:
        raw_id = None
        with connect(self.path) as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                conn.execute(
                    "INSERT INTO ops.api_requests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        _utc(entry.requested_at),
                        entry.api,
                        entry.endpoint,
                        entry.kind,
                        entry.status,
                        entry.duration_ms,
                        entry.error,
                        self.run_id,
                    ],
                )
                if raw is not None:
                    raw_id = conn.execute(
                        f"""
                        INSERT INTO {self.raw_table} (fetched_at, system_id, endpoint, query,
                            status, content_type, body, elapsed_ms, error, valid_json,
                            covers_start, covers_end, run_id)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
                        """,
                        [
                            _utc(raw.fetched_at),
                            raw.system_id,
                            raw.endpoint,
                            json.dumps(raw.query, sort_keys=True),
                            raw.status,
                            raw.content_type,
                            raw.body,
                            raw.elapsed_ms,
                            raw.error,
                            raw.valid_json,
                            _utc(raw.covers[0]) if raw.covers else None,
                            _utc(raw.covers[1]) if raw.covers else None,
                            self.run_id,
                        ],
                    ).fetchone()[0]
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._query_usage(conn, entry.requested_at)
        return raw_id
