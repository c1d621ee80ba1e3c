"""Schedules: the plan-sized cloud tick for today, the nightly completion of yesterday, the
Envoy poll, the energy rebuild, and the nightly housekeeping (export, raw archive, run purge)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from solar_pipeline.constants import (
    ENERGY_GROUP,
    ENPHASE_GROUP,
    ENVOY_GROUP,
    EXPORTS_PARQUET,
    RAW_ARCHIVE,
    RAW_ENPHASE_RESPONSES,
    RAW_ENVOY_RESPONSES,
    REPORTS_GROUP,
)
from solar_pipeline.partitions import DAILY
from solar_pipeline.run_retention import run_retention_job
from solar_pipeline.settings import Settings, env
from solar_pipeline.sites import FLEET_VENDORS
from solar_pipeline.sources.enphase.budget import plan_named
from solar_pipeline.sources.enphase.cadence import cron_for, tick_minutes

_settings = Settings.from_env()
DEFAULT_STATUS = (
    dg.DefaultScheduleStatus.RUNNING
    if _settings.schedules_running
    else dg.DefaultScheduleStatus.STOPPED
)
ENPHASE_PLAN = plan_named(env("ENPHASE_PLAN", "watt") or "watt")
ENPHASE_POLL_CRON = env("ENPHASE_POLL_CRON") or cron_for(tick_minutes(ENPHASE_PLAN))

enphase_cloud_job = dg.define_asset_job(
    "enphase_cloud_job",
    selection=dg.AssetSelection.groups(ENPHASE_GROUP),
    partitions_def=DAILY,
    description="Fetch the Enphase cloud for the selected days and rebuild its tables.",
)

# The nightly run completes days: no summary/events/alarms (the tick keeps those current).
_daily_selection = dg.AssetSelection.groups(ENPHASE_GROUP) - dg.AssetSelection.assets(
    ["enphase", "system_summary"], ["enphase", "events"], ["enphase", "alarms"]
)
enphase_daily_job = dg.define_asset_job(
    "enphase_daily_job",
    selection=_daily_selection,
    partitions_def=DAILY,
    description="Re-fetch a completed day once the cloud has all of its data.",
)


@dg.schedule(
    name="enphase_cloud_tick",
    cron_schedule=ENPHASE_POLL_CRON,
    job=enphase_cloud_job,
    execution_timezone=DAILY.timezone,
    default_status=DEFAULT_STATUS,
    description=(
        f"Summary, events, alarms and today's telemetry; cadence {ENPHASE_POLL_CRON} fits "
        f"ENPHASE_PLAN={ENPHASE_PLAN.name} (override with ENPHASE_POLL_CRON)."
    ),
)
def enphase_cloud_tick(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    if not env("ENPHASE_API_KEY"):
        return dg.SkipReason(
            "ENPHASE_API_KEY is not set: the Enphase cloud source is not configured"
        )
    at = context.scheduled_execution_time
    return dg.RunRequest(partition_key=DAILY.get_partition_key_for_timestamp(at.timestamp()))


@dg.schedule(
    name="enphase_daily_completion",
    # 04:30 local: late enough for Wi-Fi gateways to have uploaded the evening.
    cron_schedule="30 4 * * *",
    job=enphase_daily_job,
    execution_timezone=DAILY.timezone,
    default_status=DEFAULT_STATUS,
)
def enphase_daily_completion(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Yesterday's partition, fetched again once the cloud has the whole day."""
    yesterday = context.scheduled_execution_time - timedelta(days=1)
    return dg.RunRequest(
        partition_key=DAILY.get_partition_key_for_timestamp(yesterday.timestamp()),
        run_config={"ops": {_op_name(RAW_ENPHASE_RESPONSES): {"config": {"snapshots": "never"}}}},
    )


def _op_name(key: dg.AssetKey) -> str:
    return "__".join(key.path)


# The gateway is polled every ENVOY_POLL_INTERVAL_S (default: every minute), but one run makes
# ENVOY_POLLS_PER_RUN polls (default 10) and parses once: 144 runs a day in the run list
# instead of 1,440, each showing ten minutes of polls.
ENVOY_POLL_INTERVAL_S = float(env("ENVOY_POLL_INTERVAL_S", "60") or 60)
ENVOY_POLLS_PER_RUN = int(env("ENVOY_POLLS_PER_RUN", "10") or 10)
ENVOY_POLL_CRON = env("ENVOY_POLL_CRON") or cron_for(
    max(1, round(ENVOY_POLL_INTERVAL_S * ENVOY_POLLS_PER_RUN / 60))
)

envoy_job = dg.define_asset_job(
    "envoy_job",
    selection=dg.AssetSelection.groups(ENVOY_GROUP),
    description="Poll the local gateway and parse what it answered.",
)


@dg.schedule(
    name="envoy_poll",
    cron_schedule=ENVOY_POLL_CRON,
    job=envoy_job,
    execution_timezone=DAILY.timezone,
    default_status=DEFAULT_STATUS,
    description=(
        f"Every run polls the gateway {ENVOY_POLLS_PER_RUN} times, {ENVOY_POLL_INTERVAL_S:.0f} s "
        "apart, then parses the answers."
    ),
)
def envoy_poll(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    if not env("ENVOY_URL"):
        return dg.SkipReason("ENVOY_URL is not set: the local gateway source is not configured")
    return dg.RunRequest(
        run_config={
            "ops": {
                _op_name(RAW_ENVOY_RESPONSES): {
                    "config": {"polls": ENVOY_POLLS_PER_RUN, "interval_s": ENVOY_POLL_INTERVAL_S}
                }
            }
        },
    )


energy_job = dg.define_asset_job(
    "energy_job",
    selection=dg.AssetSelection.groups(ENERGY_GROUP),
    partitions_def=DAILY,
    description="Rebuild the vendor-neutral energy tables from the sources' tables.",
)


@dg.schedule(
    name="energy_refresh",
    cron_schedule="*/30 * * * *",
    job=energy_job,
    execution_timezone=DAILY.timezone,
    default_status=DEFAULT_STATUS,
)
def energy_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Today's energy from whatever the sources have so far; just after midnight, yesterday's
    final figures (the readings straddling midnight have arrived by then)."""
    at = context.scheduled_execution_time
    if at.hour == 0 and at.minute < 30:
        at = at - timedelta(days=1)
    return dg.RunRequest(partition_key=DAILY.get_partition_key_for_timestamp(at.timestamp()))


# SolarEdge, SMA, GoodWe and Fronius sites from SOLAR_SITES, each vendor's assets in a group
# named after it. Every 15 minutes keeps a SolarEdge key at 2 x 96 = 192 of its 300 daily
# requests, with room for a backfill.
fleet_job = dg.define_asset_job(
    "fleet_job",
    selection=dg.AssetSelection.groups(*FLEET_VENDORS),
    partitions_def=DAILY,
    description="Fetch every SolarEdge, SMA, GoodWe and Fronius site for the selected days.",
)


def _fleet_request(day_at: float) -> dg.RunRequest | dg.SkipReason:
    if not env("SOLAR_SITES"):
        return dg.SkipReason("SOLAR_SITES is not set: no SolarEdge/SMA/GoodWe/Fronius sites")
    return dg.RunRequest(partition_key=DAILY.get_partition_key_for_timestamp(day_at))


@dg.schedule(
    name="fleet_tick",
    cron_schedule=env("SOLAR_FLEET_CRON") or "*/15 * * * *",
    job=fleet_job,
    execution_timezone=DAILY.timezone,
    default_status=DEFAULT_STATUS,
)
def fleet_tick(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Today's data of every fleet site (override the cadence with SOLAR_FLEET_CRON)."""
    return _fleet_request(context.scheduled_execution_time.timestamp())


@dg.schedule(
    name="fleet_daily_completion",
    cron_schedule="45 4 * * *",
    job=fleet_job,
    execution_timezone=DAILY.timezone,
    default_status=DEFAULT_STATUS,
)
def fleet_daily_completion(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    """Yesterday once more, when the vendors' clouds have the whole day."""
    return _fleet_request((context.scheduled_execution_time - timedelta(days=1)).timestamp())


raw_archive_job = dg.define_asset_job(
    "raw_archive_job",
    selection=dg.AssetSelection.assets(RAW_ARCHIVE),
    description="Move raw answers older than SOLAR_RAW_RETENTION_DAYS to Parquet.",
)
parquet_export_job = dg.define_asset_job(
    "parquet_export_job",
    selection=dg.AssetSelection.assets(EXPORTS_PARQUET),
    description="Refresh the Parquet export (only changed months are rewritten).",
)
# Housekeeping in the quiet hours: after the 00:00 energy rebuild has finalised yesterday, and
# before the 04:30 cloud completion run.


def _nightly(
    name: str, cron: str, job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition
) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=name,
        cron_schedule=cron,
        job=job,
        execution_timezone=DAILY.timezone,
        default_status=DEFAULT_STATUS,
    )


parquet_export_nightly = _nightly("parquet_export_nightly", "50 0 * * *", parquet_export_job)
raw_archive_nightly = _nightly("raw_archive_nightly", "15 3 * * *", raw_archive_job)
run_retention_nightly = _nightly("run_retention_nightly", "45 3 * * *", run_retention_job)

# Declarative automation of the reports (the dashboard refreshes after the energy tables).
reports_automation = dg.AutomationConditionSensorDefinition(
    "reports_automation",
    target=dg.AssetSelection.groups(REPORTS_GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING
    if _settings.schedules_running
    else dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
)

schedules = [
    enphase_cloud_tick,
    enphase_daily_completion,
    envoy_poll,
    energy_refresh,
    fleet_tick,
    fleet_daily_completion,
    parquet_export_nightly,
    raw_archive_nightly,
    run_retention_nightly,
]
jobs: list[dg.JobDefinition | dg.UnresolvedAssetJobDefinition] = [
    enphase_cloud_job,
    enphase_daily_job,
    envoy_job,
    energy_job,
    fleet_job,
    raw_archive_job,
    parquet_export_job,
    run_retention_job,
]
