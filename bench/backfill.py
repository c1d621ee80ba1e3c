"""Backfill a year of Enphase cloud data in one run against the simulator and report the cost.

Prints wall time, HTTP requests (and per day of data), time spent waiting for the plan's
per-minute budget, and peak RSS; writes bench/results.json. The simulator's own quotas are
lifted so that only our budget (ENPHASE_PLAN=partner, 300/minute) paces the run.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("SOLAR_TIMEZONE", "Europe/Amsterdam")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

import dagster as dg

from solar_pipeline.assets import enphase
from solar_pipeline.partitions import DAILY
from solar_pipeline.resources import DuckDBWarehouse, EnphaseCloudResource
from solar_pipeline.simulator import EnphaseCloudSimulator, SystemSpec
from solar_pipeline.warehouse import connect

TELEMETRY = [
    "raw/enphase_responses",
    "enphase/production_intervals",
    "enphase/consumption_intervals",
    "enphase/daily_energy",
]


def year_backfill(days: int = 365, plan: str = "partner") -> dict:
    today = date.fromisoformat(DAILY.get_partition_key_for_timestamp(time.time()))
    first, last = today - timedelta(days=days), today - timedelta(days=1)
    spec = SystemSpec(timezone=DAILY.timezone)
    with (
        tempfile.TemporaryDirectory() as tmp,
        EnphaseCloudSimulator([spec], per_minute=1_000_000, per_month=100_000_000) as sim,
    ):
        os.environ["ENPHASE_REFRESH_TOKEN"] = sim.mint_refresh_token()
        cloud = EnphaseCloudResource(
            api_url=sim.base_url,
            api_key=sim.api_key,
            client_id=sim.client_id,
            client_secret=sim.client_secret,
            system_id=str(spec.system_id),
            token_store=f"file:{Path(tmp) / 'tokens.json'}",
            plan=plan,
        )
        warehouse = DuckDBWarehouse(path=str(Path(tmp) / "solar.duckdb"))
        started = time.perf_counter()
        result = dg.materialize(
            enphase.assets,
            selection=[dg.AssetKey.from_user_string(k) for k in TELEMETRY],
            resources={"enphase": cloud, "warehouse": warehouse},
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
        )
        wall = time.perf_counter() - started
        assert result.success
        raw_meta = result.asset_materializations_for_node("raw__enphase_responses")[0].metadata
        with connect(warehouse.path) as conn:
            requests = conn.execute("SELECT count(*) FROM ops.api_requests").fetchone()[0]
            data = conn.execute(
                "SELECT count(*) FROM ops.api_requests WHERE kind = 'data'"
            ).fetchone()[0]
            intervals = conn.execute(
                "SELECT count(*) FROM enphase.production_intervals"
            ).fetchone()[0]
    waited = raw_meta["budget_wait_s"].value
    return {
        "days": days,
        "plan": plan,
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "wall_s": round(wall, 2),
        "budget_wait_s": waited,
        "wall_without_budget_wait_s": round(wall - waited, 2),
        "http_requests": requests,
        "data_requests": data,
        "requests_per_day": round(requests / days, 3),
        "production_intervals": intervals,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    days = int(sys.argv[1]) if len(sys.argv) > 1 else 365
    results = {"year_backfill": year_backfill(days)}
    out = Path(__file__).parent / "results.json"
    out.write_text(json.dumps(results, indent=2))
    width = max(len(k) for k in results["year_backfill"])
    for key, value in results["year_backfill"].items():
        print(f"{key:<{width}}  {value}")
    print(f"(written to {out})")


if __name__ == "__main__":
    main()
