"""Schedules pick the right local day, and the cloud cadence fits the plan's monthly budget."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from solar_pipeline.automation import (
    energy_refresh,
    enphase_cloud_tick,
    enphase_daily_completion,
    envoy_poll,
)
from solar_pipeline.definitions import defs
from solar_pipeline.sources.enphase.budget import PLANS
from solar_pipeline.sources.enphase.cadence import (
    CALLS_PER_TICK,
    cron_for,
    monthly_calls,
    tick_minutes,
)

AMS = ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize(
    ("plan", "minutes", "cron"),
    [("watt", 480, "0 */8 * * *"), ("kilowatt", 10, "*/10 * * * *")],
)
def test_cadence_fits_the_plan_with_headroom(plan, minutes, cron):
    assert tick_minutes(PLANS[plan]) == minutes
    assert cron_for(minutes) == cron
    assert monthly_calls(minutes) <= 0.8 * PLANS[plan].per_month
    # The tick must also fit in one minute's allowance.
    assert PLANS[plan].per_minute >= CALLS_PER_TICK


def test_watt_every_10_minutes_would_burn_the_month():
    assert monthly_calls(10) > 13 * PLANS["watt"].per_month


def _tick(schedule, at: datetime):
    context = dg.build_schedule_context(
        scheduled_execution_time=at, repository_def=defs().get_repository_def()
    )
    return schedule.evaluate_tick(context)


def _evaluate(schedule, at: datetime) -> dg.RunRequest:
    requests = _tick(schedule, at).run_requests
    assert len(requests) == 1
    return requests[0]


@pytest.fixture(autouse=True)
def _sources_configured(monkeypatch):
    monkeypatch.setenv("ENPHASE_API_KEY", "configured")
    monkeypatch.setenv("ENVOY_URL", "https://envoy.local")


@pytest.mark.parametrize(
    ("schedule", "variable"), [(enphase_cloud_tick, "ENPHASE_API_KEY"), (envoy_poll, "ENVOY_URL")]
)
def test_schedules_of_unconfigured_sources_skip_and_say_why(monkeypatch, schedule, variable):
    monkeypatch.delenv(variable)
    tick = _tick(schedule, datetime(2025, 6, 1, 12, 0, tzinfo=AMS))
    assert not tick.run_requests and variable in tick.skip_message


def test_envoy_poll_groups_a_minute_cadence_into_ten_minute_runs():
    request = _evaluate(envoy_poll, datetime(2025, 6, 1, 12, 10, tzinfo=AMS))
    config = request.run_config["ops"]["raw__envoy_responses"]["config"]
    assert config == {"polls": 10, "interval_s": 60.0}
    assert envoy_poll.cron_schedule == "*/10 * * * *"


def test_tick_targets_the_local_day_just_after_midnight():
    # 00:05 local is still 23:05 UTC of the day before: the partition is the local day.
    request = _evaluate(enphase_cloud_tick, datetime(2025, 10, 26, 0, 5, tzinfo=AMS))
    assert request.partition_key == "2025-10-26"


def test_daily_completion_targets_yesterday_without_snapshots():
    request = _evaluate(enphase_daily_completion, datetime(2025, 3, 31, 4, 30, tzinfo=AMS))
    assert request.partition_key == "2025-03-30"
    assert request.run_config["ops"]["raw__enphase_responses"]["config"]["snapshots"] == "never"


@pytest.mark.parametrize(
    ("at", "partition"),
    [
        (datetime(2025, 6, 1, 0, 10, tzinfo=AMS), "2025-05-31"),
        (datetime(2025, 6, 1, 14, 30, tzinfo=AMS), "2025-06-01"),
    ],
)
def test_energy_refresh_finishes_yesterday_just_after_midnight(at, partition):
    assert _evaluate(energy_refresh, at).partition_key == partition
