"""ops.site_status: one row per site and asset, updated after every attempt."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb


def record_site_status(
    conn: duckdb.DuckDBPyConnection,
    site_id: str,
    vendor: str,
    asset: str,
    error: str | None,
    run_id: str | None = None,
    at: datetime | None = None,
) -> None:
    """A success clears the error and the failure count; a failure keeps the last success."""
    at = at or datetime.now(UTC)
    conn.execute(
        """
        INSERT INTO ops.site_status AS s (site_id, vendor, asset, last_attempt_at,
            last_success_at, last_error, consecutive_failures, run_id)
        VALUES ($site, $vendor, $asset, $at, CASE WHEN $error IS NULL THEN $at END, $error,
                CASE WHEN $error IS NULL THEN 0 ELSE 1 END, $run)
        ON CONFLICT (site_id, asset) DO UPDATE SET
            vendor = excluded.vendor,
            last_attempt_at = excluded.last_attempt_at,
            last_success_at = coalesce(excluded.last_success_at, s.last_success_at),
            last_error = excluded.last_error,
            consecutive_failures = CASE WHEN excluded.last_error IS NULL THEN 0
                                        ELSE s.consecutive_failures + 1 END,
            run_id = excluded.run_id
        """,
        {
            "site": site_id,
            "vendor": vendor,
            "asset": asset,
            "at": at,
            "error": error,
            "run": run_id,
        },
    )
