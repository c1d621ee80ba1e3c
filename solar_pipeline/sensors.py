"""The gap-filling sensor: days whose energy is missing or incomplete get refetched from the
cloud and rebuilt, one single-run backfill per stretch of such days, without anyone clicking
anything. The gateway cannot be asked about the past, so the cloud is what fills a gap."""

from __future__ import annotations

import json
import math
import time
from datetime import date, timedelta

import dagster as dg
import duckdb

from solar_pipeline.assets.energy.fleet import energy_sites
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
from solar_pipeline.warehouse.damage import damage_error
from solar_pipeline.warehouse.db import one_row

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


def _read(settings: Settings, first: date, last: date) -> tuple[dict[date, str], int]:
    """The Enphase site's day statuses and this month's cloud requests, read-only: a sensor
    never writes DuckDB, and gives up quietly when a writer holds the file. Other vendors'
    sites are not the cloud's to fill."""
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        site = next(
            (s.site_id for s in energy_sites(con, settings) if "enphase" in s.site.vendor), None
        )
        statuses = dict(
            con.execute(
                "SELECT day, status FROM energy.daily_energy "
                "WHERE site_id = ? AND day BETWEEN ? AND ?",
                [site, first, last],
            ).fetchall()
        )
        used = one_row(
            con,
            "SELECT count(*) FROM ops.api_requests WHERE api = 'enphase' AND kind = 'data' "
            "AND status IS NOT NULL AND requested_at >= date_trunc('month', now())",
        )[0]
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
        statuses, used = _read(settings, first, yesterday)
    except duckdb.Error as exc:  # the pipeline is writing, or no database yet
        damaged = damage_error(settings.duckdb_path, exc)  # ... or it will never be readable
        if damaged is not None:
            return dg.SkipReason(str(damaged))
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
    requests, ranges = [], []
    # Most recent gaps first: they matter most, and older ones can wait for budget.
    for run in reversed(_contiguous(gaps)):
        cost = requests_for(len(run))
        if cost > allowance:
            break
        allowance -= cost
        ranges.append(run)
    if not ranges:
        return dg.SkipReason(f"gap filling would exceed the budget ({used} requests used)")
    for run in ranges:
        start, end = run[0].isoformat(), run[-1].isoformat()
        for day in run:
            requested[day.isoformat()] = now
        requests.append(
            dg.RunRequest(
                run_key=f"gap-fill-{start}-{end}-{int(now)}",
                tags={
                    "dagster/asset_partition_range_start": start,
                    "dagster/asset_partition_range_end": end,
                },
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(requested))


def _contiguous(days: list[date]) -> list[list[date]]:
    """[d1, d2, d3, d7, d8] -> [[d1, d2, d3], [d7, d8]]: one single-run backfill per stretch."""
    runs: list[list[date]] = []
    for day in days:
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs
