"""Parsed SEMS figures add up to the simulator's truth per local day, DST days included.

Daily energy is fetched with its neighbours in one call, so a day put on the wrong date fails
the comparison. The intraday series is fetched per day; its samples must start at the local
midnight, stay inside the local day and step evenly through a repeated or skipped hour, which
times read as UTC, or localised twice, would break.

Tolerances: the daily endpoint is SEMS's own per-day total, so it must match within 0.1%.
The power samples are integrated with the trapezoid rule; the simulator rounds each 5-minute
energy to a whole Wh while the samples carry the unrounded mean watts, so the integral may
differ by up to 0.5 Wh per daylight sample: PAC_TOLERANCE (0.5% + 5 Wh) covers that with room,
and a unit or time-zone mistake is far outside it.
"""

import itertools
from datetime import date, timedelta

import pytest

from solar_pipeline.energy.model import daily_figure, local_day_bounds
from solar_pipeline.simulator.goodwe import SemsSimulator
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.sources.goodwe.parse import (
    SOURCE_DAILY,
    SOURCE_PAC,
    parse_daily_energy,
    parse_day_power,
)
from solar_pipeline_tests.goodwe.conftest import NOW, Clock, Recorder, make_client

STATION = "5e0d1c2b-3a49-4f58-9d6e-7c8b9a0f1e2d"


def _close_daily(got: float, want: float) -> bool:
    return abs(got - want) <= max(0.001 * want, 0.5)


def _close_pac(got: float, want: float) -> bool:
    return abs(got - want) <= 0.005 * want + 5.0


@pytest.mark.parametrize(
    ("timezone", "day", "samples"),
    [
        ("Europe/Amsterdam", date(2026, 3, 29), 276),  # spring forward: 23 hours
        ("Europe/Amsterdam", date(2026, 10, 25), 300),  # fall back: 25 hours
        ("Europe/Amsterdam", date(2026, 6, 21), 288),
        ("America/New_York", date(2026, 3, 8), 276),
        ("America/New_York", date(2026, 11, 1), 300),
        ("Australia/Adelaide", date(2026, 4, 5), 300),  # +10:30 -> +09:30
    ],
)
def test_daily_and_intraday_figures_match_truth(timezone, day, samples):
    spec = SystemSpec(system_id=6150001, timezone=timezone, operational_date=date(2026, 1, 1))
    with SemsSimulator({STATION: spec}, clock=Clock(NOW)) as sim:
        client = make_client(sim, Recorder(), station_id=STATION)
        first, last = day - timedelta(days=1), day + timedelta(days=1)
        [daily] = client.days_energy(first, last)
        parsed = parse_daily_energy(daily.body, timezone)
        assert parsed.problems == ()
        assert sorted(parsed.daily_wh) == [first, day, last]
        for d in (first, day, last):
            truth = sim.true_energy(STATION, d)["produced_wh"]
            assert _close_daily(parsed.daily_wh[d], truth), (d, parsed.daily_wh[d], truth)

            power = parse_day_power(client.day_power(d).body, timezone, d)
            assert power.problems == ()
            assert _close_pac(power.produced_wh, truth), (d, power.produced_wh, truth)

            lo, hi = local_day_bounds(d, timezone)
            [whole] = [i for i in parsed.intervals if i.start_at == lo]
            assert whole.end_at == hi
            assert power.samples[0][0] == lo
            assert all(lo <= i.start_at and i.end_at <= hi for i in power.intervals)
            assert all(b.start_at == a.end_at for a, b in itertools.pairwise(power.intervals))

            # Both feed the energy layer as they are. A whole-day interval counts as a gap
            # there (longer than an hour), so the day's figure from it alone is "estimated";
            # the 5-minute series covers the day.
            alone = daily_figure([whole], d, timezone, "produced_wh", [SOURCE_DAILY])
            assert alone.value == parsed.daily_wh[d] and alone.source == SOURCE_DAILY
            fig = daily_figure(
                power.intervals,
                d,
                timezone,
                "produced_wh",
                [SOURCE_PAC],
                daily_totals={SOURCE_DAILY: parsed.daily_wh[d]},
            )
            assert fig.source == SOURCE_PAC and fig.status == "complete"
            assert fig.coverage > 0.99
            assert fig.per_source[SOURCE_DAILY] == parsed.daily_wh[d]

        power = parse_day_power(client.day_power(day).body, timezone, day)
        assert len(power.samples) == samples
        lo, hi = local_day_bounds(day, timezone)
        assert (hi - lo).total_seconds() == samples * 300
        assert [i.seconds for i in parsed.intervals if i.start_at == lo] == [samples * 300]


def test_a_month_across_the_spring_switch_matches_truth_every_day():
    spec = SystemSpec(system_id=6150002, timezone="Europe/Amsterdam")
    with SemsSimulator({STATION: spec}, clock=Clock(NOW)) as sim:
        client = make_client(sim, Recorder(), station_id=STATION)
        first, last = date(2026, 3, 10), date(2026, 4, 9)
        [answer] = client.days_energy(first, last)
        daily = parse_daily_energy(answer.body, spec.timezone).daily_wh
        assert len(daily) == 31
        d = first
        while d <= last:
            assert _close_daily(daily[d], sim.true_energy(STATION, d)["produced_wh"]), d
            d += timedelta(days=1)


def test_today_is_partial_and_future_days_are_absent():
    spec = SystemSpec(system_id=6150003, timezone="Europe/Amsterdam")
    today = date(2026, 11, 25)  # NOW is 12:00:30 CET
    with SemsSimulator({STATION: spec}, clock=Clock(NOW)) as sim:
        client = make_client(sim, Recorder(), station_id=STATION)
        [answer] = client.days_energy(today - timedelta(days=1), today + timedelta(days=2))
        daily = parse_daily_energy(answer.body, spec.timezone).daily_wh
        assert sorted(daily) == [today - timedelta(days=1), today]
        assert 0 < daily[today] < sim.true_energy(STATION, today)["produced_wh"]
        power = parse_day_power(client.day_power(today).body, spec.timezone, today)
        # Samples up to the upload lag (10 minutes): 11:45 CET is the last whole 5 minutes.
        assert len(power.samples) == 12 * 11 + 10
        # The integral stops at the last reading, so it misses at most that reading's 5 minutes.
        last_w = power.samples[-1][1]
        missing = daily[today] - power.produced_wh
        assert 0 < missing <= last_w * 300 / 3600 + 5.0
