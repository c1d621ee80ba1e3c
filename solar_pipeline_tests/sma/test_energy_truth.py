"""Parsed SMA intervals add up to the simulator's truth per local day, DST days included.

Each day is fetched with its neighbours, and the month set too, so a period put on the wrong
side of a local midnight (naive times read as UTC, start and end labels confused, a repeated
hour dropped) moves energy to another day and fails the comparison; interval count and
spacing catch a repeated or skipped DST hour that a plain sum would hide.
"""

import itertools
from datetime import date, timedelta

import pytest

from solar_pipeline.energy.model import local_day_bounds
from solar_pipeline.simulator.sma import SmaSimulator
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.sources.sma.parse import SOURCE_DAILY, SOURCE_PV, parse_day, parse_month
from solar_pipeline_tests.sma.conftest import consented


def _close(got: float, want: float) -> bool:
    return abs(got - want) <= max(0.001 * abs(want), 0.5)


@pytest.mark.parametrize(
    ("timezone", "day", "hours"),
    [
        ("Europe/Amsterdam", date(2026, 3, 29), 23),  # spring forward
        ("Europe/Amsterdam", date(2026, 10, 25), 25),  # fall back
        ("Europe/Amsterdam", date(2026, 6, 21), 24),
        ("America/New_York", date(2026, 3, 8), 23),
        ("America/New_York", date(2026, 11, 1), 25),
        ("Australia/Adelaide", date(2026, 4, 5), 25),  # +10:30 -> +09:30
    ],
)
def test_daily_sums_match_truth(timezone, day, hours, clock, tmp_path):
    spec = SystemSpec(system_id=5150001, timezone=timezone, operational_date=date(2026, 1, 1))
    with SmaSimulator([spec], clock=clock) as sim:
        setup = consented(sim, tmp_path, clock, plant_id=spec.system_id)
        first, last = day - timedelta(days=1), day + timedelta(days=1)
        intervals = []
        d = first
        while d <= last:
            parsed = parse_day(setup.client.day_series(d).body, timezone)
            assert parsed.problems == () and parsed.plant_timezone == timezone
            # A day's own answer covers exactly its local day (labels are period ends).
            lo, hi = local_day_bounds(d, timezone)
            assert parsed.intervals[0].start_at == lo and parsed.intervals[-1].end_at == hi
            assert list(parsed.daily_wh) == [d]
            intervals += parsed.intervals
            d += timedelta(days=1)
        month = parse_month(setup.client.month_days(day).body, timezone)
        assert month.problems == ()
        d = first
        while d <= last:
            truth = sim.true_energy(spec.system_id, d)["produced_wh"]
            lo, hi = local_day_bounds(d, timezone)
            mine = [i for i in intervals if lo <= i.start_at and i.end_at <= hi]
            assert _close(sum(i.produced_wh for i in mine), truth), (d, truth)
            if d.month == day.month:
                assert _close(month.daily_wh[d], truth), (d, month.daily_wh[d], truth)
            d += timedelta(days=1)
        lo, hi = local_day_bounds(day, timezone)
        mine = sorted((i for i in intervals if lo <= i.start_at < hi), key=lambda i: i.start_at)
        assert len(mine) == hours * 12
        assert all(i.source == SOURCE_PV and i.seconds == 300 for i in mine)
        assert mine[0].start_at == lo and mine[-1].end_at == hi
        assert all(b.start_at == a.end_at for a, b in itertools.pairwise(mine))
        [whole] = [i for i in month.intervals if i.start_at == lo]
        assert whole.end_at == hi and whole.seconds == hours * 3600
        assert whole.source == SOURCE_DAILY


def test_a_month_across_the_fall_back_switch_matches_truth_every_day(clock, tmp_path):
    spec = SystemSpec(system_id=5150002, timezone="Europe/Amsterdam")
    with SmaSimulator([spec], clock=clock) as sim:
        setup = consented(sim, tmp_path, clock, plant_id=spec.system_id)
        month = parse_month(setup.client.month_days(date(2026, 10, 1)).body, spec.timezone)
        assert sorted(month.daily_wh) == [date(2026, 10, d) for d in range(1, 32)]
        for d, wh in month.daily_wh.items():
            assert _close(wh, sim.true_energy(spec.system_id, d)["produced_wh"]), d
        assert sum(i.seconds for i in month.intervals) == (31 * 24 + 1) * 3600
