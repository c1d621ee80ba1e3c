"""Incremental parsing: each consumer remembers the last raw row id it has read."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb


def get_watermark(conn: duckdb.DuckDBPyConnection, consumer: str) -> int:
    row = conn.execute(
        "SELECT last_raw_id FROM ops.parse_watermarks WHERE consumer = ?", [consumer]
    ).fetchone()
    return int(row[0]) if row else 0


def set_watermark(conn: duckdb.DuckDBPyConnection, consumer: str, last_raw_id: int) -> None:
    conn.execute(
        """
        INSERT INTO ops.parse_watermarks VALUES (?, ?, ?)
        ON CONFLICT (consumer) DO UPDATE SET last_raw_id = excluded.last_raw_id,
            updated_at = excluded.updated_at
        """,
        [consumer, last_raw_id, datetime.now(UTC)],
    )
