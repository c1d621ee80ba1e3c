"""The DuckDB side of the request ledger: ops.api_requests plus the vendor's raw table.

Opening a DuckDB file costs ~30 ms (the close checkpoints), so successful answers are
written in small batches: every 25 answers or 2 seconds, at once for any error answer (its row
id goes into the error message), and when the step ends (`close`). No connection is held while
an HTTP request is in flight. A crash loses at most the last batch of *successful* answers,
which nothing has parsed yet and the next run fetches again.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from solar_pipeline.sources.enphase.ledger import LedgerEntry, RawResponse, Usage
from solar_pipeline.warehouse.db import connect

FLUSH_EVERY = 25
FLUSH_AFTER_S = 2.0


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _month_start(ts: float) -> datetime:
    t = _utc(ts)
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def _is_data(entry: LedgerEntry) -> bool:
    return entry.kind == "data" and entry.status is not None


class DuckDBRequestLog:
    def __init__(self, path: str | Path, api: str, raw_table: str, run_id: str | None = None):
        self.path = Path(path)
        self.api = api
        self.raw_table = raw_table
        self.run_id = run_id
        self._usage: tuple[int, int, Usage] | None = None  # (minute, month key, usage)
        self._pending: list[tuple[LedgerEntry, RawResponse | None]] = []
        self._oldest_pending = 0.0

    # -- usage -----------------------------------------------------------------------------

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
        self._usage = (int(now // 60), _month_start(now).month, usage)
        return usage

    def usage(self, now: float) -> Usage:
        cached = self._usage
        if cached and cached[0] == int(now // 60) and cached[1] == _month_start(now).month:
            return cached[2]
        self.flush()
        with connect(self.path) as conn:
            return self._query_usage(conn, now)

    # -- recording -------------------------------------------------------------------------

    def record(self, entry: LedgerEntry, raw: RawResponse | None = None) -> int | None:
        if not self._pending:
            self._oldest_pending = time.monotonic()
        self._pending.append((entry, raw))
        if _is_data(entry) and self._usage is not None:
            minute, month, u = self._usage
            self._usage = (minute, month, Usage(u.minute_count + 1, u.month_count + 1))
        failed = entry.status is None or entry.status >= 300
        if (
            failed
            or len(self._pending) >= FLUSH_EVERY
            or time.monotonic() - self._oldest_pending >= FLUSH_AFTER_S
        ):
            ids = self.flush()
            return ids[-1] if raw is not None and ids else None
        return None

    def flush(self) -> list[int]:
        """Write what is pending in one transaction; returns the raw row ids written."""
        if not self._pending:
            return []
        pending, self._pending = self._pending, []
        ids: list[int] = []
        with connect(self.path) as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                conn.executemany(
                    "INSERT INTO ops.api_requests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        [
                            _utc(e.requested_at),
                            e.api,
                            e.endpoint,
                            e.kind,
                            e.status,
                            e.duration_ms,
                            e.error,
                            self.run_id,
                        ]
                        for e, _ in pending
                    ],
                )
                for _, raw in pending:
                    if raw is not None:
                        ids.append(self._insert_raw(conn, raw))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                self._pending = pending + self._pending
                raise
            self._query_usage(conn, pending[-1][0].requested_at)
        return ids

    def close(self) -> None:
        self.flush()

    def _insert_raw(self, conn, raw: RawResponse) -> int:
        return conn.execute(
            f"""
            INSERT INTO {self.raw_table} (fetched_at, system_id, endpoint, query, status,
                content_type, body, elapsed_ms, error, valid_json, covers_start, covers_end,
                run_id)
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
