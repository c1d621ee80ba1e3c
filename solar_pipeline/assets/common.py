"""What every daily-partitioned DuckDB asset shares, so the policy lives in one place."""

from __future__ import annotations

from typing import Any

import dagster as dg

from solar_pipeline.constants import DUCKDB_POOL
from solar_pipeline.partitions import DAILY


def daily_duckdb_asset(group: str) -> dict[str, Any]:
    """Local-day partitions, a whole range in one run, one DuckDB writer at a time."""
    return {
        "partitions_def": DAILY,
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "pool": DUCKDB_POOL,
        "group_name": group,
        "kinds": {"duckdb"},
    }
