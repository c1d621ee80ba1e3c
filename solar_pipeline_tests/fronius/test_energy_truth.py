"""Daily energy parsed from the Fronius simulator equals its truth, DST days included.

Datamanager: the 5-minute archive (and its DailySum). GEN24/Tauro: no archive and no E_Day,
so the day is rebuilt from E_Total deltas between realtime polls through the shared
counter_intervals, exactly as the Envoy counters are.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from solar_pipeline.energy.model import daily_figure, expected_intervals, local_day_bounds
from solar_pipeline.simulator.fronius import FroniusSimulator
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.sources.fronius.parse import (
    SOURCE_ARCHIVE,
    SOURCE_ETOTAL,
    archive_daily,
    archive_intervals,
    e_day_totals,
    etotal_intervals,
    parse_power_flow,
)
from solar_pipeline_tests.fronius.conftest import Clock, make_client

DAYS = [
    ("Europe/Amsterdam", 52.4, date(2026, 3, 29), 23),  # spring forward
    ("Europe/Amsterdam", 52.4, date(2026, 10, 25), 25),  # fall back
    ("Europe/Amsterdam", 52.4, date(2026, 6, 21), 24),
    ("Australia/Sydney", -33.9, date(2026, 10, 4), 23),  # southern spring forward, midsummer sun
]
IDS = [f"{tz}-{day}" for tz, _, day, _ in DAYS]


def _spec(tz: str, latitude: float) -> SystemSpec:
    return SystemSpec(
        system_id=880, timezone=tz, latitude=latitude, operational_date=date(2026, 1, 1)
    )


def _close(value: float, truth: float) -> bool:
    return truth > 0 and abs(value - truth) <= 0.001 * truth


@pytest.mark.parametrize(("tz", "lat", "day", "hours"), DAYS, ids=IDS)
def test_datamanager_archive_day_matches_truth(tz, lat, day, hours, records):
    start, end = local_day_bounds(day, tz)
    assert (end - start).total_seconds() == hours * 3600
    clock = Clock((end + timedelta(hours=2)).timestamp())
    with FroniusSimulator(_spec(tz, lat), model_name="datamanager", clock=clock) as sim:
        client = make_client(sim, records)
        [detail] = client.archive(day, day)
        [daily] = client.archive(day - timedelta(days=1), day + timedelta(days=1), "DailySum")
        truth = sim.truth_wh(day)

    intervals = archive_intervals(detail.body, tz)
    assert len(intervals) == expected_intervals(day, tz, 300)
    assert intervals[0].start_at == start and intervals[-1].end_at == end
    figure = daily_figure(intervals, day, tz, "produced_wh", [SOURCE_ARCHIVE])
    assert figure.status == "complete" and figure.coverage == 1.0
    assert _close(figure.value, truth)
    # DailySum keys straddle the DST switch; the next day is not over yet, so it is absent.
    assert archive_daily(daily.body, tz) == {
        day - timedelta(days=1): sim.truth_wh(day - timedelta(days=1)),
        day: truth,
    }


@pytest.mark.parametrize("model_name", ["gen24", "datamanager"])
@pytest.mark.parametrize(("tz", "lat", "day", "hours"), DAYS, ids=IDS)
def test_realtime_e_total_deltas_match_truth(model_name, tz, lat, day, hours, records):
    start, end = local_day_bounds(day, tz)
    spec = _spec(tz, lat)
    # Polls a few seconds after each 5-minute boundary, as a scheduler would, from just before
    # the local midnight to just after the next: the straddling intervals are split by time.
    first = start.timestamp() - 300 + 7
    clock = Clock(first)
    flows = []
    with FroniusSimulator(spec, model_name=model_name, clock=clock) as sim:
        client = make_client(sim, records)
        while clock.now <= end.timestamp() + 300:
            flows.append(parse_power_flow(client.power_flow().body, tz))
            clock.now += 300
        truth = sim.truth_wh(day)

    intervals = etotal_intervals(flows, max_power_w=spec.size_w)
    assert not [iv for iv in intervals if iv.flags]
    figure = daily_figure(intervals, day, tz, "produced_wh", [SOURCE_ETOTAL])
    assert figure.status == "complete"
    assert _close(figure.value, truth)
    if model_name == "gen24":
        assert e_day_totals(flows, tz) == {}
    else:
        # The Datamanager's own E_Day agrees at the day's last poll (the night adds nothing).
        assert _close(e_day_totals(flows, tz)[day], truth)


def _poll(sim: FroniusSimulator, clock: Clock, times: list[float], records) -> list:
    client = make_client(sim, records)
    flows = []
    for at in times:
        clock.now = at
        flows.append(parse_power_flow(client.power_flow().body, sim.spec.timezone))
    return flows


def test_gen24_polled_off_the_five_minute_grid_still_sums_to_truth(records):
    """E_Total moves only every 5 minutes; 97-second polls see steps and zeros, same total."""
    tz, day = "Europe/Amsterdam", date(2026, 10, 25)
    start, end = local_day_bounds(day, tz)
    clock = Clock(0.0)
    times = [start.timestamp() - 150 + 97 * i for i in range(935)]
    assert times[-1] > end.timestamp() + 60  # past the 25-hour day's end
    with FroniusSimulator(_spec(tz, 52.4), model_name="gen24", clock=clock) as sim:
        flows = _poll(sim, clock, times, records)
        truth = sim.truth_wh(day)
    assert all(f.is_gen24 for f in flows)
    intervals = etotal_intervals(flows, max_power_w=6400)
    assert any(iv.produced_wh == 0 for iv in intervals) and not any(iv.flags for iv in intervals)
    figure = daily_figure(intervals, day, tz, "produced_wh", [SOURCE_ETOTAL])
    assert figure.status == "complete" and _close(figure.value, truth)


def test_gen24_outage_keeps_the_energy_but_says_estimated(records):
    """Three hours without polls at midday: the counter delta is exact, its timing is not."""
    tz, day = "Australia/Sydney", date(2026, 10, 4)
    start, end = local_day_bounds(day, tz)
    clock = Clock(0.0)
    every_5 = [start.timestamp() - 293 + 300 * i for i in range(278)]
    assert every_5[-1] > end.timestamp()  # past the 23-hour day's end
    lo, hi = start.timestamp() + 10 * 3600, start.timestamp() + 13 * 3600
    times = [t for t in every_5 if not lo < t < hi]
    with FroniusSimulator(_spec(tz, -33.9), model_name="gen24", clock=clock) as sim:
        flows = _poll(sim, clock, times, records)
        truth = sim.truth_wh(day)
    intervals = etotal_intervals(flows, max_power_w=6400)
    [gap] = [iv for iv in intervals if iv.flags]
    assert gap.flags == ("gap",) and gap.produced_wh > 0
    figure = daily_figure(intervals, day, tz, "produced_wh", [SOURCE_ETOTAL])
    assert figure.status == "estimated" and figure.coverage < 0.95
    assert _close(figure.value, truth)
