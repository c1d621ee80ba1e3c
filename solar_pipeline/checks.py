"""Freshness: is data still arriving? Freshness policies, evaluated by Dagster's freshness
daemon from materialization records (so they never open DuckDB) and shown on each asset.
The other checks live with the assets they check (check_specs)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from solar_pipeline.automation import ENPHASE_PLAN
from solar_pipeline.sources.enphase.cadence import tick_minutes

# The gateway is polled every minute in runs of ten: a quarter of an hour without a new
# materialization means the poller stopped (warn at the first missed run).
ENVOY_POLICY = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(minutes=15), warn_window=timedelta(minutes=11)
)
# The cloud summary arrives once per tick of the plan's cadence; two missed ticks fail.
_tick = timedelta(minutes=tick_minutes(ENPHASE_PLAN))
CLOUD_POLICY = dg.FreshnessPolicy.time_window(fail_window=2 * _tick, warn_window=_tick * 1.2)
