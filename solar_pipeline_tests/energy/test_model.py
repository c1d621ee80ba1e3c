"""Pure tests of the energy model: DST days, counter anomalies, source choice, inverters."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from solar_pipeline.energy.fill import fill_anomalies
from solar_pipeline.energy.model import (
    COMPLETE_COVERAGE,
    CONSUMPTION_PREFERENCE,
    FIGURES,
    PRODUCTION_PREFERENCE,
    WRAP_WH,
    DailyFigure,
    Interval,
    checked,
    counter_intervals,
    daily_figure,
    expected_intervals,
    implausible,
    inverter_daily,
    local_day_bounds,
    one_value,
    peak_w,
    self_consumed,
    split_by_day,
)

LA = "America/Los_Angeles"
BERLIN = "Europe/Berlin"
DST_DAYS = [
    (LA, date(2025, 3, 9), 23),
    (LA, date(2025, 11, 2), 25),
    (BERLIN, date(2025, 3, 30), 23),
    (BERLIN, date(2025, 10, 26), 25),
]
ALL_DAYS = [*DST_DAYS, (LA, date(2025, 6, 21), 24), (BERLIN, date(2025, 6, 21), 24)]
DAY = date(2025, 6, 21)
NEXT = DAY + timedelta(days=1)
PREV = DAY - timedelta(days=1)
FIVE_MIN = timedelta(minutes=5)


def local(tz: str, day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(tz))


def steady(
    start: datetime, end: datetime, step: timedelta, wh_per_step: float, source: str
) -> list[Interval]:
    """Back-to-back intervals of equal energy (stepping in UTC, so DST cannot bend them)."""
    out, t = [], start.astimezone(UTC)
    end = end.astimezone(UTC)
    while t < end:
        nxt = min(t + step, end)
        share = wh_per_step * (nxt - t) / step
        out.append(Interval(t, nxt, source, produced_wh=share, consumed_wh=share))
        t = nxt
    return out


def whole_day(tz: str, day: date, source: str, wh_per_5min: float) -> list[Interval]:
    start, end = local_day_bounds(day, tz)
    return steady(start, end, FIVE_MIN, wh_per_5min, source)


def interpolate(readings: list[tuple[datetime, float]], at: datetime) -> float:
    for (t0, v0), (t1, v1) in pairwise(readings):
        if t0 <= at <= t1:
            return v0 + (v1 - v0) * (at - t0) / (t1 - t0)
    raise AssertionError(f"{at} outside the readings")


# --- day bounds -----------------------------------------------------------------------------


@pytest.mark.parametrize(("tz", "day", "hours"), ALL_DAYS)
def test_local_day_bounds_follow_dst(tz: str, day: date, hours: int) -> None:
    start, end = local_day_bounds(day, tz)
    assert start.utcoffset() == timedelta(0) and end.utcoffset() == timedelta(0)
    assert end - start == timedelta(hours=hours)
    assert start == local(tz, day) and end == local(tz, day + timedelta(days=1))
    assert start.astimezone(ZoneInfo(tz)).hour == 0 and end.astimezone(ZoneInfo(tz)).hour == 0


def test_local_day_bounds_exact_instants() -> None:
    assert local_day_bounds(date(2025, 3, 9), LA) == (
        datetime(2025, 3, 9, 8, tzinfo=UTC),
        datetime(2025, 3, 10, 7, tzinfo=UTC),
    )
    assert local_day_bounds(date(2025, 10, 26), BERLIN) == (
        datetime(2025, 10, 25, 22, tzinfo=UTC),
        datetime(2025, 10, 26, 23, tzinfo=UTC),
    )


def test_skipped_midnight_starts_the_day_at_the_jump() -> None:
    # America/Santiago jumps from 00:00 to 01:00: the day starts at the jump and lasts 23 h.
    start, end = local_day_bounds(date(2024, 9, 8), "America/Santiago")
    assert start == datetime(2024, 9, 8, 4, tzinfo=UTC)
    assert end - start == timedelta(hours=23)


@pytest.mark.parametrize(("tz", "day", "hours"), ALL_DAYS)
def test_expected_intervals(tz: str, day: date, hours: int) -> None:
    assert expected_intervals(day, tz, 300) == {23: 276, 24: 288, 25: 300}[hours]
    assert expected_intervals(day, tz, 900) == hours * 4


def test_expected_intervals_rejects_bad_step() -> None:
    with pytest.raises(ValueError):
        expected_intervals(DAY, LA, 0)


# --- counter intervals ----------------------------------------------------------------------


def at(minutes: float) -> datetime:
    return datetime(2025, 6, 21, 12, tzinfo=UTC) + timedelta(minutes=minutes)


def no_negative_energy(intervals: list[Interval]) -> bool:
    return all(getattr(i, f) is None or getattr(i, f) >= 0 for i in intervals for f in FIGURES)


def test_monotone_counter_gives_exact_deltas() -> None:
    readings = [(at(0), 1000.0), (at(5), 1010.5), (at(10), 1010.5), (at(15), 1300.25)]
    out = counter_intervals(readings, source="envoy_meter", figure="produced_wh", max_power_w=6400)
    assert [i.produced_wh for i in out] == [10.5, 0.0, 289.75]
    assert [(i.start_at, i.end_at) for i in out] == list(
        zip([at(0), at(5), at(10)], [at(5), at(10), at(15)], strict=True)
    )
    assert all(i.flags == () and i.source == "envoy_meter" for i in out)
    assert all(i.consumed_wh is None and i.exported_wh is None for i in out)
    assert all(i.seconds == 300 for i in out)


def test_counter_readings_are_sorted_deduplicated_and_none_skipped() -> None:
    readings = [
        (at(10), 130.0),
        (at(0), 100.0),
        (at(5), 999.0),
        (at(5).astimezone(ZoneInfo(LA)), 110.0),  # same instant, later: wins
        (at(7), None),
    ]
    out = counter_intervals(readings, source="s", figure="consumed_wh", max_power_w=6400)
    assert [(i.start_at, i.end_at, i.consumed_wh) for i in out] == [
        (at(0), at(5), 10.0),
        (at(5), at(10), 20.0),
    ]
    assert all(i.start_at.tzinfo == UTC for i in out)


def test_too_few_readings_give_no_intervals() -> None:
    assert counter_intervals([], source="s", figure="produced_wh", max_power_w=1) == []
    assert counter_intervals([(at(0), 5.0)], source="s", figure="produced_wh", max_power_w=1) == []


@pytest.mark.parametrize("wraps", [1, 2, 3])
def test_wrap_step_down_is_flagged_not_negative(wraps: int) -> None:
    before = 5_000_000.0
    after = before - wraps * WRAP_WH + 40  # 40 Wh produced while one or more inverters wrapped
    readings = [(at(0), before - 30), (at(5), before), (at(10), after), (at(15), after + 25)]
    out = counter_intervals(
        readings, source="envoy_inverters", figure="produced_wh", max_power_w=6400
    )
    assert [i.produced_wh for i in out] == [30.0, None, 25.0]
    assert out[1].flags == ("counter_wrap",)
    assert no_negative_energy(out)


def test_reset_to_zero_is_flagged() -> None:
    readings = [(at(0), 5_000_000.0), (at(5), 12.0), (at(10), 40.0)]
    out = counter_intervals(readings, source="s", figure="produced_wh", max_power_w=6400)
    assert out[0].produced_wh is None and out[0].flags == ("counter_reset",)
    assert out[1].produced_wh == 28.0
    assert no_negative_energy(out)


def test_small_step_down_is_a_decrease() -> None:
    readings = [(at(0), 5_000_000.0), (at(5), 4_990_000.0)]
    out = counter_intervals(readings, source="s", figure="imported_wh", max_power_w=6400)
    assert out[0].imported_wh is None and out[0].flags == ("counter_decrease",)


def test_giant_jump_is_a_spike() -> None:
    # HA #169978: +6.78 MWh after a reconnect, on a 6.4 kW system, in 5 minutes.
    readings = [(at(0), 1_000_000.0), (at(5), 1_000_500.0), (at(10), 7_780_500.0)]
    out = counter_intervals(readings, source="s", figure="produced_wh", max_power_w=6400)
    assert out[0].produced_wh == 500.0 and out[0].flags == ()  # 6 kW for 5 min is plausible
    assert out[1].produced_wh is None and out[1].flags == ("spike",)


def test_long_gap_keeps_exact_energy_and_is_flagged() -> None:
    readings = [(at(0), 1000.0), (at(180), 10_000.5)]
    out = counter_intervals(readings, source="s", figure="produced_wh", max_power_w=6400)
    assert out[0].produced_wh == 9000.5 and out[0].flags == ("gap",)
    assert out[0].seconds == 3 * 3600


def test_counter_intervals_reject_naive_times_and_unknown_figures() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        counter_intervals(
            [(datetime(2025, 1, 1), 1.0), (datetime(2025, 1, 2), 2.0)],
            source="s",
            figure="produced_wh",
            max_power_w=1,
        )
    with pytest.raises(ValueError, match="unknown figure"):
        counter_intervals([], source="s", figure="wh", max_power_w=1)


def test_interval_rejects_end_before_start() -> None:
    with pytest.raises(ValueError):
        Interval(at(5), at(0), "s")


# --- split by day ---------------------------------------------------------------------------


def test_split_straddling_midnight() -> None:
    iv = Interval(local(LA, DAY, 23, 50), local(LA, NEXT, 0, 10), "s", produced_wh=20)
    assert split_by_day(iv, LA) == [(DAY, 0.5), (NEXT, 0.5)]


def test_split_inside_one_day_and_ending_at_midnight() -> None:
    assert split_by_day(Interval(local(LA, DAY, 3), local(LA, DAY, 4), "s"), LA) == [(DAY, 1.0)]
    assert split_by_day(Interval(local(LA, DAY, 23), local(LA, NEXT), "s"), LA) == [(DAY, 1.0)]
    assert split_by_day(Interval(local(LA, DAY, 3), local(LA, DAY, 3), "s"), LA) == [(DAY, 1.0)]


def test_split_over_a_short_day_uses_real_hours() -> None:
    # 2025-03-08 (24 h) and 2025-03-09 (23 h) in Los Angeles: 47 hours in all.
    d1, d2 = date(2025, 3, 8), date(2025, 3, 9)
    parts = split_by_day(Interval(local(LA, d1), local(LA, date(2025, 3, 10)), "s"), LA)
    assert [d for d, _ in parts] == [d1, d2]
    assert parts[0][1] == pytest.approx(24 / 47) and parts[1][1] == pytest.approx(23 / 47)
    assert math.fsum(f for _, f in parts) == pytest.approx(1.0)


# --- daily figure ---------------------------------------------------------------------------


def test_interval_straddling_midnight_is_split_in_proportion() -> None:
    iv = Interval(local(LA, DAY, 23, 50), local(LA, NEXT, 0, 10), "envoy_meter", produced_wh=20)
    first = daily_figure([iv], DAY, LA, "produced_wh", PRODUCTION_PREFERENCE)
    second = daily_figure([iv], NEXT, LA, "produced_wh", PRODUCTION_PREFERENCE)
    assert first.value == pytest.approx(10.0) and second.value == pytest.approx(10.0)
    assert first.status == "partial" and first.source == "envoy_meter"
    assert first.coverage == pytest.approx(600 / 86400)


@pytest.mark.parametrize(("tz", "day", "hours"), DST_DAYS)
def test_dst_day_total_equals_counter_between_local_midnights(
    tz: str, day: date, hours: int
) -> None:
    start, end = local_day_bounds(day, tz)
    # Readings every 7 minutes from an hour before to an hour after, not aligned to midnight.
    t, value, readings = start - timedelta(minutes=61), 1_234_567.0, []
    while t <= end + timedelta(hours=1):
        readings.append((t, value))
        value += 3.0 + (t.minute % 11) * 1.7
        t += timedelta(minutes=7)
    intervals = counter_intervals(
        readings, source="envoy_meter", figure="produced_wh", max_power_w=6400
    )
    fig = daily_figure(intervals, day, tz, "produced_wh", PRODUCTION_PREFERENCE)
    expected = interpolate(readings, end) - interpolate(readings, start)
    assert fig.value == pytest.approx(expected, abs=1e-6)
    assert (fig.status, fig.source, fig.coverage) == ("complete", "envoy_meter", 1.0)
    assert fig.disagreement_pct is None


@pytest.mark.parametrize(("tz", "day", "hours"), DST_DAYS)
def test_dst_day_with_readings_on_the_midnights(tz: str, day: date, hours: int) -> None:
    start, _ = local_day_bounds(day, tz)
    steps = hours * 12
    readings = [(start + i * FIVE_MIN, 100.0 + 2.5 * i) for i in range(steps + 1)]
    intervals = counter_intervals(
        readings, source="envoy_meter", figure="consumed_wh", max_power_w=1e4
    )
    assert len(intervals) == expected_intervals(day, tz, 300)
    fig = daily_figure(intervals, day, tz, "consumed_wh", CONSUMPTION_PREFERENCE)
    assert fig.value == pytest.approx(readings[-1][1] - readings[0][1])
    assert fig.status == "complete" and fig.coverage == 1.0


def test_preference_picks_envoy_meter_and_reports_disagreement() -> None:
    intervals = whole_day(LA, DAY, "enphase_meter", 10.5) + whole_day(LA, DAY, "envoy_meter", 10.0)
    fig = daily_figure(intervals, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE)
    assert (fig.source, fig.status, fig.coverage) == ("envoy_meter", "complete", 1.0)
    assert fig.value == pytest.approx(2880.0)
    assert fig.disagreement_pct == pytest.approx(5.0)
    assert fig.per_source == pytest.approx({"envoy_meter": 2880.0, "enphase_meter": 3024.0})


def test_disagreement_is_the_largest_over_complete_sources_only() -> None:
    half_start, _ = local_day_bounds(DAY, LA)
    intervals = (
        whole_day(LA, DAY, "envoy_meter", 10.0)
        + whole_day(LA, DAY, "enphase_micro", 9.0)  # -10 %
        + whole_day(LA, DAY, "enphase_meter", 10.2)  # +2 %
        + steady(half_start, half_start + timedelta(hours=6), FIVE_MIN, 50.0, "envoy_inverters")
    )
    fig = daily_figure(intervals, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE)
    assert fig.source == "envoy_meter"
    assert fig.disagreement_pct == pytest.approx(10.0)


def test_falls_back_when_envoy_meter_has_a_two_day_gap() -> None:
    envoy = counter_intervals(
        [(local(LA, PREV, 12), 1000.0), (local(LA, NEXT, 12), 9000.0)],
        source="envoy_meter",
        figure="produced_wh",
        max_power_w=6400,
    )
    assert envoy[0].flags == ("gap",)
    cloud = steady(*local_day_bounds(DAY, LA), timedelta(minutes=15), 30.0, "enphase_meter")
    fig = daily_figure(envoy + cloud, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE)
    assert (fig.source, fig.status, fig.coverage) == ("enphase_meter", "complete", 1.0)
    assert fig.value == pytest.approx(96 * 30.0)
    assert fig.disagreement_pct is None  # the gap-only envoy_meter is no fair comparison
    assert fig.per_source["envoy_meter"] == pytest.approx(4000.0)


def test_only_gap_data_gives_an_estimate() -> None:
    envoy = counter_intervals(
        [(local(LA, PREV, 12), 1000.0), (local(LA, NEXT, 12), 9000.0)],
        source="envoy_meter",
        figure="produced_wh",
        max_power_w=6400,
    )
    fig = daily_figure(envoy, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE)
    assert (fig.source, fig.status, fig.coverage) == ("envoy_meter", "estimated", 0.0)
    assert fig.value == pytest.approx(4000.0)  # 24 of the gap's 48 hours


def test_complete_day_with_some_gap_energy_is_estimated() -> None:
    start, end = local_day_bounds(DAY, LA)
    hole_start, hole_end = start + timedelta(hours=10), start + timedelta(hours=11, minutes=5)
    hole = Interval(hole_start, hole_end, "envoy_meter", produced_wh=130.0, flags=("gap",))
    intervals = [
        *steady(start, hole_start, FIVE_MIN, 10.0, "envoy_meter"),
        hole,
        *steady(hole_end, end, FIVE_MIN, 10.0, "envoy_meter"),
    ]
    fig = daily_figure(intervals, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE)
    assert fig.coverage == pytest.approx(1 - 65 / 1440) and fig.coverage >= COMPLETE_COVERAGE
    assert (fig.source, fig.status) == ("envoy_meter", "estimated")
    assert fig.value == pytest.approx(2880.0)


def test_daily_totals_fallback() -> None:
    start, _ = local_day_bounds(DAY, LA)
    half = steady(start, start + timedelta(hours=12), FIVE_MIN, 10.0, "envoy_meter")
    fig = daily_figure(
        half, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE, {"enphase_lifetime": 12345.0}
    )
    assert (fig.value, fig.source, fig.status) == (12345.0, "enphase_lifetime", "estimated")
    assert fig.coverage == pytest.approx(0.5)
    assert fig.per_source == pytest.approx({"envoy_meter": 1440.0, "enphase_lifetime": 12345.0})
    # Nothing to fall back to: the partial source itself.
    fig = daily_figure(half, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE, {"x": None})
    assert (fig.value, fig.source, fig.status) == (pytest.approx(1440.0), "envoy_meter", "partial")


def test_daily_totals_are_not_used_when_a_source_is_complete() -> None:
    intervals = whole_day(LA, DAY, "envoy_meter", 10.0)
    fig = daily_figure(
        intervals, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE, {"enphase_lifetime": 1.0}
    )
    assert (fig.source, fig.status) == ("envoy_meter", "complete")


def test_partial_choice_takes_highest_coverage_then_preference() -> None:
    start, _ = local_day_bounds(DAY, LA)
    six = steady(start, start + timedelta(hours=6), FIVE_MIN, 10.0, "enphase_micro")
    twelve = steady(start, start + timedelta(hours=12), FIVE_MIN, 10.0, "envoy_inverters")
    fig = daily_figure(six + twelve, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE)
    assert (fig.source, fig.status, fig.coverage) == ("envoy_inverters", "partial", 0.5)
    other = steady(start, start + timedelta(hours=6), FIVE_MIN, 20.0, "envoy_inverters")
    fig = daily_figure(other + six, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE)
    assert (fig.source, fig.status, fig.coverage) == ("enphase_micro", "partial", 0.25)


def test_sources_outside_the_preference_are_reported_but_not_chosen() -> None:
    micro = whole_day(LA, DAY, "enphase_micro", 10.0)
    fig = daily_figure(micro, DAY, LA, "consumed_wh", CONSUMPTION_PREFERENCE)
    assert (fig.value, fig.source, fig.status) == (None, None, "partial")
    assert fig.per_source == pytest.approx({"enphase_micro": 2880.0})


def test_no_data_at_all() -> None:
    fig = daily_figure([], DAY, LA, "exported_wh", CONSUMPTION_PREFERENCE)
    assert fig == DailyFigure(None, None, 0.0, "partial", None, {})
    # Data on other days only, or intervals without this figure, are no data either.
    other_day = whole_day(LA, NEXT, "envoy_meter", 10.0)
    fig = daily_figure(other_day, DAY, LA, "exported_wh", CONSUMPTION_PREFERENCE)
    assert (fig.value, fig.status, fig.coverage) == (None, "partial", 0.0)


def test_a_wrap_loses_one_interval_not_the_day() -> None:
    start, _ = local_day_bounds(DAY, LA)
    readings, value = [], 3_000_000.0
    for i in range(289):
        readings.append((start + i * FIVE_MIN, value))
        value += 10.0
        if i == 100:
            value -= WRAP_WH
    out = counter_intervals(
        readings, source="envoy_inverters", figure="produced_wh", max_power_w=6400
    )
    assert no_negative_energy(out)
    fig = daily_figure(out, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE)
    assert fig.value == pytest.approx(287 * 10.0)
    assert fig.coverage == pytest.approx(287 / 288) and fig.status == "complete"


def test_an_anomaly_left_out_keeps_the_day_from_being_complete() -> None:
    start, _ = local_day_bounds(DAY, LA)
    readings, value = [], 3_000_000.0
    for i in range(289):
        readings.append((start + i * FIVE_MIN, value))
        value += 10.0
        if i == 100:
            value -= WRAP_WH
    out = counter_intervals(
        readings, source="envoy_inverters", figure="produced_wh", max_power_w=6400
    )
    # No other source covers the wrapped interval: it is left out, and the day says so.
    filled = fill_anomalies(out, "produced_wh", PRODUCTION_PREFERENCE)
    [hole] = [i for i in filled if i.produced_wh is None]
    assert hole.flags == ("counter_wrap", "left_out:produced_wh")
    fig = daily_figure(filled, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE)
    assert (fig.value, fig.status) == (pytest.approx(287 * 10.0), "partial")
    # A vendor's daily total, which saw the whole day, is the better figure then.
    fig = daily_figure(filled, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE, {"x": 2900.0})
    assert (fig.value, fig.source, fig.status) == (2900.0, "x", "estimated")
    # A complete source without a hole wins over the preferred one with a hole.
    micro = whole_day(LA, DAY, "enphase_micro", 11.0)
    fig = daily_figure(filled + micro, DAY, LA, "produced_wh", ("envoy_inverters", "x"))
    assert (fig.source, fig.status) == ("envoy_inverters", "partial")
    fig = daily_figure(filled + micro, DAY, LA, "produced_wh", PRODUCTION_PREFERENCE)
    assert (fig.source, fig.status) == ("enphase_micro", "complete")
    # The hole of one figure is not a hole of another.
    fig = daily_figure(filled, DAY, LA, "consumed_wh", ("envoy_inverters",))
    assert fig.status == "partial" and fig.value is None


@pytest.mark.parametrize(
    ("wh", "seconds", "flag"),
    [
        (-0.001, 300, "negative"),
        (-249_828, 86_400, "negative"),
        (0.0, 300, None),
        (6400 * 1.2 / 12 + 10, 300, None),  # the most 6.4 kW make in 5 minutes, with headroom
        (6400 * 1.2 / 12 + 10.01, 300, "spike"),
        (1e9, 900, "spike"),
        (6400 * 1.2 * 25 + 10, 25 * 3600, None),  # a 25-hour day at full power
        (10**400, 300, "spike"),  # beyond any float, still compared exactly
        (math.nan, 300, "bad_value"),
        (math.inf, 300, "bad_value"),
        (-math.inf, 300, "bad_value"),
    ],
)
def test_implausible_energy(wh: float, seconds: float, flag: str | None) -> None:
    assert implausible(wh, seconds, 6400) == flag


def test_checked_removes_and_flags_only_the_implausible_figure() -> None:
    start = local(LA, DAY, 12)
    iv = Interval(start, start + FIVE_MIN, "x", produced_wh=-5.0, consumed_wh=40.0, flags=("a",))
    out = checked(iv, "produced_wh", 6400)
    assert (out.produced_wh, out.consumed_wh, out.flags) == (None, 40.0, ("a", "negative"))
    assert checked(iv, "consumed_wh", 6400) is iv
    assert checked(Interval(start, start, "x"), "produced_wh", 6400).flags == ()


def test_one_value_of_a_duplicated_interval() -> None:
    assert one_value([12.0]) == (12.0, ())
    assert one_value([12.0, 12.0, 12]) == (12.0, ())  # identical copies are harmless
    assert one_value([12.0, None]) == (12.0, ())  # a copy without data adds nothing
    assert one_value([None]) == (None, ())
    assert one_value([12.0, 13.0]) == (None, ("duplicate_conflict",))  # neither is believed


def test_duplicated_intervals_do_not_push_coverage_above_one() -> None:
    intervals = whole_day(LA, DAY, "envoy_meter", 10.0)
    fig = daily_figure(intervals + intervals[:10], DAY, LA, "produced_wh", PRODUCTION_PREFERENCE)
    assert fig.coverage == 1.0


def test_disagreement_against_a_zero_day() -> None:
    zero = whole_day(LA, DAY, "envoy_meter", 0.0)
    same = daily_figure(
        zero + whole_day(LA, DAY, "enphase_meter", 0.0), DAY, LA, "produced_wh", ("envoy_meter",)
    )
    assert same.value == 0.0 and same.disagreement_pct == 0.0
    differs = daily_figure(
        zero + whole_day(LA, DAY, "enphase_meter", 1.0), DAY, LA, "produced_wh", ("envoy_meter",)
    )
    assert differs.disagreement_pct == math.inf


def test_daily_figure_rejects_unknown_figure() -> None:
    with pytest.raises(ValueError):
        daily_figure([], DAY, LA, "power_w", PRODUCTION_PREFERENCE)


# --- peak, self-consumption -----------------------------------------------------------------


def test_peak_w_uses_non_gap_intervals_of_the_source() -> None:
    start, _ = local_day_bounds(DAY, LA)
    noon = start + timedelta(hours=12)
    intervals = [
        Interval(noon, noon + FIVE_MIN, "envoy_meter", produced_wh=400.0),  # 4800 W
        Interval(noon + FIVE_MIN, noon + 2 * FIVE_MIN, "envoy_meter", produced_wh=500.0),  # 6 kW
        Interval(noon, noon + FIVE_MIN, "enphase_meter", produced_wh=900.0),  # other source
        Interval(noon, noon + timedelta(hours=2), "envoy_meter", produced_wh=20_000.0),  # gap
        Interval(noon, noon + FIVE_MIN, "envoy_meter", flags=("spike",)),  # no value
        Interval(start - FIVE_MIN, start, "envoy_meter", produced_wh=900.0),  # previous day
    ]
    assert peak_w(intervals, DAY, LA, "envoy_meter") == pytest.approx(6000.0)
    assert peak_w(intervals, DAY, LA, "enphase_micro") is None
    assert peak_w([], DAY, LA, "envoy_meter") is None


def test_self_consumed() -> None:
    assert self_consumed(10_000.0, 4_000.0) == 6_000.0
    assert self_consumed(4_000.0, 4_100.0) == 0.0
    assert self_consumed(0.0, 0.0) == 0.0
    assert self_consumed(None, 4_000.0) is None
    assert self_consumed(10_000.0, None) is None
    assert self_consumed(None, None) is None


# --- inverters ------------------------------------------------------------------------------


def test_inverter_daily_splits_midnight_and_shows_silent_inverters() -> None:
    reports = [
        ("A", local(LA, DAY, 23, 50), 600.0),  # first report: 15 min assumed, all on DAY
        ("A", local(LA, NEXT, 0, 5), 600.0),  # 23:50-00:05: 10 min on DAY, 5 on NEXT
        ("A", local(LA, NEXT, 0, 5), 600.0),  # repeated poll of the same report
        ("B", local(LA, DAY, 12), 200.0),  # first report
        ("B", local(LA, DAY, 15), 200.0),  # 3 h of silence: capped at 15 min
        ("C", local(LA, DAY, 12), 100.0),  # not in `known`, still reported
    ]
    day = inverter_daily(reports, DAY, LA, known=["A", "B", "DEAD"])
    assert day["A"] == (pytest.approx(150.0 + 100.0), 1)
    assert day["B"] == (pytest.approx(50.0 + 50.0), 2)
    assert day["C"] == (pytest.approx(25.0), 1)
    assert day["DEAD"] == (0.0, 0)
    nxt = inverter_daily(reports, NEXT, LA, known=["A", "B", "DEAD"])
    assert nxt["A"] == (pytest.approx(50.0), 1)
    assert nxt["B"] == (0.0, 0) and nxt["DEAD"] == (0.0, 0)


def test_inverter_daily_custom_period_and_night_noise() -> None:
    reports = [
        ("A", local(BERLIN, DAY, 10), 300.0),
        ("A", local(BERLIN, DAY, 10, 5), 300.0),
        ("A", local(BERLIN, DAY, 23), -1.5),  # standby noise is not negative energy
    ]
    day = inverter_daily(reports, DAY, BERLIN, known=[], max_period_s=300)
    assert day == {"A": (pytest.approx(50.0), 3)}


def test_inverter_daily_rejects_naive_times() -> None:
    with pytest.raises(ValueError):
        inverter_daily([("A", datetime(2025, 6, 21, 12), 1.0)], DAY, LA, known=[])


# --- property: the days add up to the counter -----------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tz", [LA, BERLIN])
def test_daily_values_add_up_to_the_counter(seed: int, tz: str) -> None:
    rng = random.Random(seed)
    # Start a few days before a DST switch so the sum crosses 23- or 25-hour days.
    switch = {
        LA: [date(2025, 3, 9), date(2025, 11, 2)],
        BERLIN: [date(2025, 3, 30), date(2025, 10, 26)],
    }
    first_day = rng.choice(switch[tz]) - timedelta(days=rng.randint(0, 3))
    t = local(tz, first_day, rng.randint(0, 23), rng.randint(0, 59)).astimezone(UTC)
    end = t + timedelta(days=rng.uniform(3.0, 5.0))
    value = rng.uniform(0, 5e6)
    readings = []
    while t < end:
        readings.append((t, value))
        # Mostly irregular polls under an hour, sometimes outages of up to three hours.
        dt = rng.uniform(1, 900) if rng.random() < 0.85 else rng.uniform(900, 3 * 3600)
        value += rng.uniform(0, 6000) * dt / 3600  # never above 6 kW: no spikes
        t += timedelta(seconds=dt, microseconds=rng.randint(0, 999_999))
    intervals = counter_intervals(
        readings, source="envoy_meter", figure="produced_wh", max_power_w=6400
    )
    assert all(not {"spike", "counter_wrap", "counter_reset"} & set(i.flags) for i in intervals)

    tzinfo = ZoneInfo(tz)
    day, last_day = (
        readings[0][0].astimezone(tzinfo).date(),
        readings[-1][0].astimezone(tzinfo).date(),
    )
    total = 0.0
    while day <= last_day:
        fig = daily_figure(intervals, day, tz, "produced_wh", PRODUCTION_PREFERENCE)
        assert fig.value is not None and fig.value >= 0
        total += fig.value
        day += timedelta(days=1)
    assert total == pytest.approx(readings[-1][1] - readings[0][1], abs=1e-6)
    # split_by_day agrees: every interval's fractions add up to one.
    for iv in intervals[:50]:
        assert math.fsum(f for _, f in split_by_day(iv, tz)) == pytest.approx(1.0, abs=1e-12)
