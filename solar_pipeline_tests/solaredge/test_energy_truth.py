"""Parsed SolarEdge intervals add up to the simulator's truth per local day, DST days included.

Each day is fetched with its neighbours in one call, so a quarter put on the wrong side of a
local midnight (naive times read as UTC, or localised twice) moves night-time consumption to
another day and fails the comparison; the interval count and spacing catch a repeated or
skipped DST hour that a plain sum would hide.
"""

import itertools
from datetime import date, timedelta

import pytest

from solar_pipeline.energy.model import local_day_bounds
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.simulator.solaredge import SolarEdgeSimulator
from solar_pipeline.sources.solaredge.parse import parse_energy_details, parse_site_energy
from solar_pipeline_tests.solaredge.conftest import NOW, Recorder, make_client

FIGURES = ("produced_wh", "consumed_wh", "imported_wh", "exported_wh")


def _close(got: float, want: float) -> bool:
    return abs(got - want) <= max(0.001 * abs(want), 0.5)


@pytest.mark.parametrize(
    ("timezone", "day", "quarters"),
    [
        ("Europe/Amsterdam", date(2026, 3, 29), 92),  # spring forward: 23 hours
        ("Europe/Amsterdam", date(2026, 10, 25), 100),  # fall back: 25 hours
        ("Europe/Amsterdam", date(2026, 6, 21), 96),
        ("America/New_York", date(2026, 3, 8), 92),
        ("America/New_York", date(2026, 11, 1), 100),
        ("Australia/Adelaide", date(2026, 4, 5), 100),  # +10:30 -> +09:30
    ],
)
def test_daily_sums_match_truth(timezone, day, quarters):
    spec = SystemSpec(system_id=5150001, timezone=timezone, operational_date=date(2026, 1, 1))
    with SolarEdgeSimulator([spec], clock=lambda: NOW) as sim:
        rec = Recorder()
        client = make_client(sim, rec, site_id=spec.system_id)
        first, last = day - timedelta(days=1), day + timedelta(days=1)
        [details] = client.energy_details(first, last)
        [daily] = client.site_energy_days(first, last)
        parsed = parse_energy_details(details.body, timezone)
        per_day = parse_site_energy(daily.body, timezone).daily_wh
        assert parsed.problems == ()
        d = first
        while d <= last:
            truth = sim.true_energy(spec.system_id, d)
            lo, hi = local_day_bounds(d, timezone)
            mine = [i for i in parsed.intervals if lo <= i.start_at and i.end_at <= hi]
            for figure in FIGURES:
                got = sum(getattr(i, figure) for i in mine)
                assert _close(got, truth[figure]), (d, figure, got, truth[figure])
            self_consumed = sum(parsed.self_consumed_wh[i.start_at] for i in mine)
            assert _close(self_consumed, truth["self_consumed_wh"])
            assert _close(per_day[d], truth["produced_wh"])
            d += timedelta(days=1)
        lo, hi = local_day_bounds(day, timezone)
        mine = sorted(
            (i for i in parsed.intervals if lo <= i.start_at < hi), key=lambda i: i.start_at
        )
        assert len(mine) == quarters
        assert mine[0].start_at == lo and mine[-1].end_at == hi
        assert all(b.start_at == a.end_at for a, b in itertools.pairwise(mine))


def test_a_month_window_across_the_spring_switch_matches_truth_every_day():
    spec = SystemSpec(system_id=5150002, timezone="Europe/Amsterdam")
    with SolarEdgeSimulator([spec], clock=lambda: NOW) as sim:
        client = make_client(sim, Recorder(), site_id=spec.system_id)
        first, last = date(2026, 3, 10), date(2026, 4, 9)
        [details] = client.energy_details(first, last)
        parsed = parse_energy_details(details.body, spec.timezone)
        assert len(parsed.intervals) == 31 * 96 - 4
        d = first
        while d <= last:
            lo, hi = local_day_bounds(d, spec.timezone)
            got = sum(i.produced_wh for i in parsed.intervals if lo <= i.start_at < hi)
            assert _close(got, sim.true_energy(spec.system_id, d)["produced_wh"]), d
            d += timedelta(days=1)
