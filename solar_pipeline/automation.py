"""Schedules: the plan-sized cloud tick for today, and the nightly completion of yesterday."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from solar_pipeline.constants import ENPHASE_GROUP, RAW_ENPHASE_RESPONSES
from solar_pipeline.partitions import DAILY
from solar_pipeline.settings import Settings, env
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
def enphase_cloud_tick(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
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


schedules = [enphase_cloud_tick, enphase_daily_completion]
jobs = [enphase_cloud_job, enphase_daily_job]
