"""A year of cloud telemetry and its daily energy: one single-run backfill versus one run per
partition, both launched as Dagster launches runs (`dagster job execute`, a process per run).

The job is `energy_gap_fill_job` (raw answers, production/consumption intervals, Enphase's
daily energy, and every energy.* asset), the job the gap-filling sensor launches. The
simulator's quotas are lifted so that only our own budget paces the run: ENPHASE_PLAN=partner
(300 requests a minute), whose wait is reported separately because it is the plan's, not ours.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from bench.common import Launch, dagster_home, launch, past_days
from solar_pipeline.simulator import EnphaseCloudSimulator

JOB = "energy_gap_fill_job"
PLAN = "partner"


def cloud_env(sim: EnphaseCloudSimulator, data_dir: Path, first: date) -> dict[str, str]:
    """The settings a user gives the code location, pointed at the simulator."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "SOLAR_DATA_DIR": str(data_dir),
        "SOLAR_START_DATE": (first - timedelta(days=7)).isoformat(),
        "DAGSTER_HOME": str(dagster_home(data_dir)),
        "ENPHASE_API_URL": sim.base_url,
        "ENPHASE_API_KEY": sim.api_key,
        "ENPHASE_CLIENT_ID": sim.client_id,
        "ENPHASE_CLIENT_SECRET": sim.client_secret,
        "ENPHASE_SYSTEM_ID": str(next(iter(sim.systems))),
        "ENPHASE_PLAN": PLAN,
        # Read once, while the token store is empty; the store rotates it afterwards.
        "ENPHASE_REFRESH_TOKEN": sim.mint_refresh_token(),
    }


def _run(env: dict[str, str], tags: dict[str, str]) -> Launch:
    return launch(
        [
            "job",
            "execute",
            "-m",
            "solar_pipeline.definitions",
            "-j",
            JOB,
            "--tags",
            json.dumps(tags),
        ],
        env,
    )


def _requests(data_dir: Path) -> tuple[int, int]:
    """(all requests, energy days) from the ledger and energy.daily_energy."""
    con = duckdb.connect(str(data_dir / "solar.duckdb"), read_only=True)
    try:
        [(requests,)] = con.execute("SELECT count(*) FROM ops.api_requests").fetchall()
        [(days,)] = con.execute("SELECT count(*) FROM energy.daily_energy").fetchall()
        return requests, days
    finally:
        con.close()


def _runs(home: str) -> tuple[float, float]:
    """(seconds the runs slept for the plan's per-minute limit, seconds between their
    RUN_START and end): the rest of a launch's wall time is process start, code loading and
    Dagster creating the run. Each run records its wait on every partition it materialized,
    so the wait is counted once per run."""
    with dg.DagsterInstance.from_config(home) as instance:
        records = instance.fetch_materializations(
            dg.AssetKey(["raw", "enphase_responses"]), limit=10_000
        ).records
        waits = {
            r.run_id: float(r.asset_materialization.metadata["budget_wait_s"].value)  # type: ignore[arg-type]
            for r in records
            if r.asset_materialization and "budget_wait_s" in r.asset_materialization.metadata
        }
        in_run = sum(
            (r.end_time or 0) - (r.start_time or 0)
            for r in instance.get_run_records(dg.RunsFilter(job_name=JOB))
        )
        return sum(waits.values()), in_run


def single_run(sim: EnphaseCloudSimulator, work: Path, days: int) -> dict:
    first, last = past_days(days)
    env = cloud_env(sim, work / "single", first)
    run = _run(
        env,
        {
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
    )
    requests, energy_days = _requests(work / "single")
    if energy_days != days:
        raise RuntimeError(f"single-run backfill built {energy_days} energy days, not {days}")
    waited, in_run = _runs(env["DAGSTER_HOME"])
    return {
        "days": days,
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "runs": 1,
        "wall_s": round(run.wall_s, 2),
        "budget_wait_s": round(waited, 2),
        "wall_without_budget_wait_s": round(run.wall_s - waited, 2),
        "in_run_s": round(in_run, 2),
        "peak_rss_mb": run.peak_rss_mb,
        "requests": requests,
        "requests_per_day": round(requests / days, 3),
        # Popped by the caller (the tick reuses this data directory); never printed.
        "env": env,
    }


def per_partition(sim: EnphaseCloudSimulator, work: Path, runs: int, days: int) -> dict:
    """`runs` one-day runs, as a per-partition backfill launches them, scaled to `days`."""
    first, _ = past_days(runs)
    env = cloud_env(sim, work / "per_partition", first)
    launches = [
        _run(env, {"dagster/partition": (first + timedelta(days=n)).isoformat()})
        for n in range(runs)
    ]
    requests, energy_days = _requests(work / "per_partition")
    if energy_days != runs:
        raise RuntimeError(f"{runs} per-partition runs built {energy_days} energy days")
    wall = sum(x.wall_s for x in launches)
    waited, in_run = _runs(env["DAGSTER_HOME"])
    scale = days / runs
    return {
        "days": days,
        "runs_measured": runs,
        "runs": days,
        "measured_wall_s": round(wall, 2),
        "wall_s": round(wall * scale, 2),
        "budget_wait_s": round(waited * scale, 2),
        "wall_without_budget_wait_s": round((wall - waited) * scale, 2),
        "in_run_s": round(in_run * scale, 2),
        "peak_rss_mb": max(x.peak_rss_mb for x in launches),
        "measured_requests": requests,
        "requests": round(requests * scale),
        "requests_per_day": round(requests / runs, 3),
    }
