"""The gap-filling sensor: days whose energy is missing or incomplete get refetched from the
cloud and rebuilt, as one single-run backfill, without anyone clicking anything."""

from __future__ import annotations

import json
import math
import time
from datetime import date, timedelta

import dagster as dg
import duckdb

from solar_pipeline.automation import ENPHASE_PLAN
from solar_pipeline.constants import (
    ENERGY_GROUP,
    ENPHASE_CONSUMPTION_INTERVALS,
    ENPHASE_DAILY_ENERGY,
    ENPHASE_PRODUCTION_INTERVALS,
    RAW_ENPHASE_RESPONSES,
)
from solar_pipeline.partitions import DAILY
from solar_pipeline.settings import Settings, env
from solar_pipeline.sources.enphase.plan import DAY_S, WEEK_S

LOOKBACK_DAYS = 14
# A day just requested is left alone this long: the run may be queued, or the cloud may not
# have the day's data yet (cellular gateways upload every 6 hours).
RETRY_AFTER_S = 6 * 3600
# A gap fill may use at most half of what the month has left.
BUDGET_SHARE = 0.5

gap_fill_job = dg.define_asset_job(
    "energy_gap_fill_job",
    selection=dg.AssetSelection.assets(
        RAW_ENPHASE_RESPONSES,
        ENPHASE_PRODUCTION_INTERVALS,
        ENPHASE_CONSUMPTION_INTERVALS,
        ENPHASE_DAILY_ENERGY,
    )
    | dg.AssetSelection.groups(ENERGY_GROUP),
    partitions_def=DAILY,
    description="Refetch days from the Enphase cloud and rebuild their energy (gap filling).",
)


def requests_for(days: int) -> int:
    """Cloud requests a backfill of `days` consecutive days costs (see sources/enphase/plan)."""
    weeks = math.ceil(days * DAY_S / WEEK_S)
    return days + 2 * weeks + 2  # micro per day, two meters per week, lifetime, devices


def _read(path: str, first: date, last: date) -> tuple[dict[date, str], int]:
    """Day statuses and this month's cloud requests, read-only: a sensor never writes DuckDB,
    and gives up quietly when a writer holds the file."""
    con = duckdb.connect(path, read_only=True)
    try:
        statuses = dict(
            con.execute(
                "SELECT day, status FROM energy.daily_energy WHERE day BETWEEN ? AND ?",
                [first, last],
            ).fetchall()
        )
        used = con.execute(
            "SELECT count(*) FROM ops.api_requests WHERE api = 'enphase' AND kind = 'data' "
            "AND status IS NOT NULL AND requested_at >= date_trunc('month', now())"
        ).fetchone()[0]
        return statuses, int(used)
    finally:
        con.close()


@dg.sensor(
    name="energy_gap_fill",
    job=gap_fill_job,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING
    if Settings.from_env().schedules_running
    else dg.DefaultSensorStatus.STOPPED,
)
def energy_gap_fill(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    if not env("ENPHASE_API_KEY"):
        return dg.SkipReason("ENPHASE_API_KEY is not set: there is no cloud source to fill from")
    settings = Settings.from_env()
    now = time.time()
    yesterday = date.fromisoformat(DAILY.get_partition_key_for_timestamp(now)) - timedelta(1)
    first = max(settings.start_date, yesterday - timedelta(days=LOOKBACK_DAYS - 1))
    try:
        statuses, used = _read(str(settings.duckdb_path), first, yesterday)
    except duckdb.Error as exc:  # the pipeline is writing, or no database yet
        return dg.SkipReason(f"energy tables not readable now ({type(exc).__name__})")
    requested = json.loads(context.cursor or "{}")
    days = [first + timedelta(n) for n in range((yesterday - first).days + 1)]
    gaps = [
        d
        for d in days
        if statuses.get(d) != "complete" and now - requested.get(d.isoformat(), 0) > RETRY_AFTER_S
    ]
    if not gaps:
        return dg.SkipReason("every day of the last two weeks is complete")
    allowance = (ENPHASE_PLAN.per_month - used) * BUDGET_SHARE
    while gaps and requests_for((gaps[-1] - gaps[0]).days + 1) > allowance:
        gaps.pop(0)  # the most recent days matter most; older ones wait for budget
    if not gaps:
        return dg.SkipReason(f"gap filling would exceed the budget ({used} requests used)")
    start, end = gaps[0].isoformat(), gaps[-1].isoformat()
    for day in gaps:
        requested[day.isoformat()] = now
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"gap-fill-{start}-{end}-{int(now)}",
                tags={
                    "dagster/asset_partition_range_start": start,
                    "dagster/asset_partition_range_end": end,
                    "solar/gap_days": ",".join(d.isoformat() for d in gaps),
                },
            )
        ],
        cursor=json.dumps(requested),
    )
