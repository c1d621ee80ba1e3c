"""Freshness checks: is data still arriving? Evaluated by their own sensor, from Dagster's
materialization records, so they never open DuckDB."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from solar_pipeline.automation import ENPHASE_PLAN
from solar_pipeline.constants import ENPHASE_SYSTEM_SUMMARY, RAW_ENVOY_RESPONSES
from solar_pipeline.settings import Settings
from solar_pipeline.sources.enphase.cadence import tick_minutes

# The gateway is polled every minute in runs of ten: a quarter of an hour without a new
# materialization means the poller stopped.
ENVOY_FRESH = timedelta(minutes=15)
# The cloud summary arrives once per tick; two missed ticks is news.
CLOUD_FRESH = timedelta(minutes=2 * tick_minutes(ENPHASE_PLAN))

freshness_checks = [
    *dg.build_last_update_freshness_checks(
        assets=[RAW_ENVOY_RESPONSES], lower_bound_delta=ENVOY_FRESH
    ),
    *dg.build_last_update_freshness_checks(
        assets=[ENPHASE_SYSTEM_SUMMARY], lower_bound_delta=CLOUD_FRESH
    ),
]

freshness_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=freshness_checks,
    name="freshness_checks_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING
    if Settings.from_env().schedules_running
    else dg.DefaultSensorStatus.STOPPED,
)
