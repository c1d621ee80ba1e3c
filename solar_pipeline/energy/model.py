"""Daily energy from lifetime counters and intervals, per source, on DST-correct local days.

Vendor "energy today" values reset late, at UTC midnight or to an offset (field notes §4.3,
§4.6), so daily figures are rebuilt from lifetime-counter deltas instead. Those counters wrap
(~1.19 MWh = 2^32 J), reset and spike (envoy-local-api §4): every such step is flagged and
given no energy, never a negative or giant value. Energy a vendor states per interval or per
day gets the same rules (`implausible`): a negative value or more than the array can make is
flagged and given no energy, and so is an interval one answer lists twice with two values.
Gaps after outages keep their energy (the counter delta is exact) but not its timing, so they
never count as coverage.

All datetimes are timezone-aware instants; intervals are stored in UTC and a "day" is a
local calendar day of an IANA zone (23, 24 or 25 hours long).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

FIGURES = ("produced_wh", "consumed_wh", "imported_wh", "exported_wh")
PRODUCTION_PREFERENCE = ("envoy_meter", "enphase_meter", "enphase_micro", "envoy_inverters")
# Inverters cannot see the house, so only meters can give consumption, import and export.
CONSUMPTION_PREFERENCE = ("envoy_meter", "enphase_meter")
# Longer intervals are gaps: their energy is known (a counter delta) but not when it happened,
# so they do not count as coverage.
MAX_COVERED_INTERVAL_S = 3600
COMPLETE_COVERAGE = 0.95
# A 32-bit joule counter wrapping: 2^32 J / 3600 = 1,193,046.47 Wh (envoy-local-api §4.5).
WRAP_WH = 2**32 / 3600

# The power ceiling when nothing is known of the array: a 3 x 63 A main fuse at 230 V is about
# 43 kW, so no home moves more; real production and consumption are never flagged by it, the
# GWh glitches always are.
DEFAULT_MAX_POWER_W = 50_000.0
# Flags of an interval whose own energy is unusable: the energy comes from another source
# (`filled_from:<source>`) or the interval is left out (`left_out:<figure>`).
ANOMALIES = (
    "counter_wrap",
    "counter_reset",
    "counter_decrease",
    "spike",
    "negative",
    "duplicate_conflict",
    "bad_value",
)
LEFT_OUT = "left_out:"

_WRAP_TOLERANCE = 0.02  # relative to the wrap multiple
_MAX_WRAPS = 3  # several inverters can wrap between two polls
_SPIKE_FACTOR = 1.2  # headroom over nameplate power (cold, bright days exceed it a little)
_SPIKE_SLACK_WH = 10.0  # counter rounding on very short intervals


@dataclass(frozen=True)
class Interval:
    """Energy of one source over [start_at, end_at); a None figure means unknown, not zero."""

    start_at: datetime
    end_at: datetime
    source: str
    produced_wh: float | None = None
    consumed_wh: float | None = None
    imported_wh: float | None = None
    exported_wh: float | None = None
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_aware(self.start_at, "start_at")
        _require_aware(self.end_at, "end_at")
        # Python subtracts and compares datetimes sharing one tzinfo by wall clock, which is
        # wrong across a DST switch; UTC makes every later calculation use real elapsed time.
        object.__setattr__(self, "start_at", self.start_at.astimezone(UTC))
        object.__setattr__(self, "end_at", self.end_at.astimezone(UTC))
        if self.end_at < self.start_at:
            raise ValueError(f"interval ends before it starts: {self.start_at} > {self.end_at}")

    @property
    def seconds(self) -> float:
        return (self.end_at - self.start_at).total_seconds()


@dataclass(frozen=True)
class DailyFigure:
    """One figure for one local day, with where it came from and how much of the day it saw."""

    value: float | None
    source: str | None
    coverage: float
    status: str  # complete | partial | estimated
    disagreement_pct: float | None
    per_source: dict[str, float] = field(default_factory=dict)


def local_day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """UTC instants of the local midnight starting `day` and the next one (23, 24 or 25 h)."""
    zone = ZoneInfo(tz)
    return _local_midnight(day, zone), _local_midnight(day + timedelta(days=1), zone)


def counter_intervals(
    readings: Sequence[tuple[datetime, float | None]],
    *,
    source: str,
    figure: str,
    max_power_w: float,
) -> list[Interval]:
    """Intervals between consecutive readings of one lifetime counter (Wh), sorted by time.

    Readings with the same timestamp: keep the last; a reading with a None value is skipped.
    delta = next - prev over dt seconds:
      - delta < 0: the counter stepped down -> figure None, flag "counter_wrap" (|delta| within
        2% of WRAP_WH or a multiple up to 3x), "counter_reset" (new value < 1% of the old one
        or < 1000 Wh) or "counter_decrease". Never a negative energy.
      - delta > max_power_w * dt/3600 * 1.2 + 10: implausible -> figure None, flag "spike".
      - otherwise figure = delta (0 allowed); flag "gap" if dt > MAX_COVERED_INTERVAL_S.
    """
    _check_figure(figure)
    latest: dict[datetime, float] = {}
    for at, value in readings:
        # NaN is how some parsers spell "missing"; it must not poison a delta.
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        _require_aware(at, "reading time")
        # Equal instants compare equal across tzinfos, so a later duplicate replaces the earlier.
        latest[at.astimezone(UTC)] = float(value)

    out: list[Interval] = []
    for (t0, v0), (t1, v1) in pairwise(sorted(latest.items())):
        dt = (t1 - t0).total_seconds()
        delta = v1 - v0
        energy: float | None = None
        if delta < 0:
            flags: tuple[str, ...] = (_classify_drop(v0, v1),)
        elif delta > spike_limit_wh(max_power_w, dt):
            flags = ("spike",)
        else:
            energy = delta
            flags = ("gap",) if dt > MAX_COVERED_INTERVAL_S else ()
        out.append(Interval(t0, t1, source, flags=flags, **{figure: energy}))
    return out


def spike_limit_wh(max_power_w: float, seconds: float) -> float:
    """The most energy an array of `max_power_w` can make in `seconds`, with headroom."""
    return max_power_w * seconds / 3600 * _SPIKE_FACTOR + _SPIKE_SLACK_WH


def implausible(wh: float, seconds: float, max_power_w: float) -> str | None:
    """The flag of energy no meter of this array can report over `seconds`: "negative",
    "spike" (above spike_limit_wh) or "bad_value" (NaN, infinity); None if it can be true.
    A vendor's interval or daily value must pass it before it counts, as a counter delta
    must."""
    if isinstance(wh, float) and not math.isfinite(wh):
        return "bad_value"  # NaN compares false with everything: it would pass the rest
    if wh < 0:
        return "negative"
    if wh > spike_limit_wh(max_power_w, seconds):
        return "spike"
    return None


def checked(interval: Interval, figure: str, max_power_w: float) -> Interval:
    """The interval with its `figure` removed and flagged if `implausible`."""
    _check_figure(figure)
    value = getattr(interval, figure)
    flag = None if value is None else implausible(value, interval.seconds, max_power_w)
    if flag is None:
        return interval
    removed: dict[str, Any] = {figure: None}
    return replace(interval, **removed, flags=(*interval.flags, flag))


def one_value(values: Sequence[float | None]) -> tuple[float | None, tuple[str, ...]]:
    """The value of an interval one answer lists `len(values)` times, and its flags.

    Identical copies are one value. Copies that disagree give none, flagged
    "duplicate_conflict": nothing says which copy is right (not their order either), so the
    interval is filled from another source or left out, like any anomaly."""
    distinct = {v for v in values if v is not None}
    if len(distinct) > 1:
        return None, ("duplicate_conflict",)
    return (distinct.pop() if distinct else None), ()


def split_by_day(interval: Interval, tz: str) -> list[tuple[date, float]]:
    """(local day, fraction of the interval in it) for each day it touches; fractions sum to 1.

    Splitting in proportion to time is linear interpolation of the counter to the midnight.
    """
    zone = ZoneInfo(tz)
    day = interval.start_at.astimezone(zone).date()
    total = interval.seconds
    if total <= 0:
        return [(day, 1.0)]
    parts: list[tuple[date, float]] = []
    while True:
        start, end = _local_midnight(day, zone), _local_midnight(day + timedelta(days=1), zone)
        if start >= interval.end_at:
            return parts
        seconds = _overlap_s(interval.start_at, interval.end_at, start, end)
        if seconds > 0:
            parts.append((day, seconds / total))
        day += timedelta(days=1)


def daily_figure(
    intervals: Iterable[Interval],
    day: date,
    tz: str,
    figure: str,
    preference: Sequence[str],
    daily_totals: Mapping[str, float | None] | None = None,
) -> DailyFigure:
    """The day's energy for one figure, from the best source that saw the day.

    Per source: energy = sum of figure * (fraction of the interval inside the local day);
    coverage = union of the day's seconds covered by non-gap intervals with a value / day seconds.
    A source whose day holds an anomaly that was left out (flag `left_out:<figure>`) is known
    to miss energy, so it is never complete, whatever its coverage.
    Choice, among the sources in `preference` (the list of sources trusted for this figure):
      1. the first with coverage >= COMPLETE_COVERAGE, no gap interval and nothing left out in
         its day: "complete"; failing that, the first with that coverage and nothing left
         out: "estimated";
      2. else the first non-None value in `daily_totals` (e.g. a cloud daily total): "estimated",
         coverage = the best interval coverage;
      3. else the highest coverage (ties: preference order) among sources with coverage > 0 or
         gap energy: "estimated" if a gap contributed and nothing was left out, else "partial";
      4. else value None, source None, coverage 0.0, "partial".
    disagreement_pct: max |other - chosen| / chosen * 100 over the other interval sources with
    complete coverage (None if there are none; inf if chosen is 0 and another is not).
    """
    _check_figure(figure)
    day_start, day_end = local_day_bounds(day, tz)
    day_s = (day_end - day_start).total_seconds()
    stats = _source_stats(intervals, figure, day_start, day_end)
    coverage = {src: _union_seconds(s.covered) / day_s for src, s in stats.items()}
    per_source = {src: s.energy for src, s in stats.items()}
    for name, total in (daily_totals or {}).items():
        if total is not None:
            per_source.setdefault(name, float(total))

    def result(value: float | None, source: str | None, cover: float, status: str) -> DailyFigure:
        pct = None
        if value is not None:
            # Only sources that saw (nearly) the whole day are a fair comparison.
            others = [
                stats[s].energy for s in stats if s != source and coverage[s] >= COMPLETE_COVERAGE
            ]
            pct = max((_pct_diff(o, value) for o in others), default=None)
        return DailyFigure(value, source, cover, status, pct, per_source)

    ranked = [s for s in preference if s in stats]
    complete = [s for s in ranked if coverage[s] >= COMPLETE_COVERAGE and not stats[s].has_hole]
    # A counter interval across an outage spreads its (exact) energy evenly over the outage,
    # so the day it touches gets a wrong share: a complete source without such an interval
    # that day is better, even if it comes later in the preference order.
    for src in [s for s in complete if not stats[s].has_gap] + complete:
        status = "estimated" if stats[src].has_gap else "complete"
        return result(stats[src].energy, src, coverage[src], status)

    best_coverage = max((coverage[s] for s in ranked), default=0.0)
    for name, total in (daily_totals or {}).items():
        if total is not None:
            return result(float(total), name, best_coverage, "estimated")

    candidates = [s for s in ranked if coverage[s] > 0 or stats[s].has_gap]
    if candidates:
        # max() keeps the first of equal keys, so ties go to the earlier preference.
        src = max(candidates, key=lambda s: coverage[s])
        status = "estimated" if stats[src].has_gap and not stats[src].has_hole else "partial"
        return result(stats[src].energy, src, coverage[src], status)
    return result(None, None, 0.0, "partial")


def peak_w(intervals: Iterable[Interval], day: date, tz: str, source: str) -> float | None:
    """Highest mean power (W) of the source's non-gap production intervals touching the day."""
    day_start, day_end = local_day_bounds(day, tz)
    best: float | None = None
    for iv in intervals:
        # A gap's mean power says nothing about the peak; a zero-length interval has no power.
        if iv.source != source or iv.produced_wh is None or _is_gap(iv) or iv.seconds <= 0:
            continue
        if _overlap_s(iv.start_at, iv.end_at, day_start, day_end) <= 0:
            continue
        watts = iv.produced_wh / (iv.seconds / 3600)
        best = watts if best is None else max(best, watts)
    return best


def self_consumed(produced: float | None, exported: float | None) -> float | None:
    """Produced energy used on site; None if either input is unknown (never a made-up zero)."""
    if produced is None or exported is None:
        return None
    # Meters disagree slightly; export above production is noise, not negative self-use.
    return max(produced - exported, 0.0)


def inverter_daily(
    reports: Sequence[tuple[str, datetime, float]],
    day: date,
    tz: str,
    known: Iterable[str],
    max_period_s: float = 900.0,
) -> dict[str, tuple[float, int]]:
    """serial -> (Wh, reports that day) from (serial, report time, watts) reports.

    Each report's watts hold for the period since that inverter's previous report (capped at
    max_period_s, which is also assumed for an inverter's first report), split by day in
    proportion. Every serial in `known` gets an entry, (0.0, 0) if it did not report, because
    a dead panel must show rather than vanish.
    """
    day_start, day_end = local_day_bounds(day, tz)
    by_serial: dict[str, dict[datetime, float]] = defaultdict(dict)
    for serial, at, watts in reports:
        if watts is None:
            continue
        _require_aware(at, "report time")
        # The Envoy repeats an unchanged report on every poll: one report per report time.
        by_serial[serial][at.astimezone(UTC)] = float(watts)

    result = {serial: (0.0, 0) for serial in known}
    for serial, points in by_serial.items():
        wh, count, previous = 0.0, 0, None
        for at, watts in sorted(points.items()):
            period = max_period_s
            if previous is not None:
                period = min((at - previous).total_seconds(), max_period_s)
            previous = at
            seconds = _overlap_s(at - timedelta(seconds=period), at, day_start, day_end)
            # Slightly negative night readings are standby noise, not energy taken back.
            wh += max(watts, 0.0) * seconds / 3600
            if day_start <= at < day_end:
                count += 1
        result[serial] = (wh, count)
    return result


def expected_intervals(day: date, tz: str, step_s: int) -> int:
    """How many step_s intervals fit in the local day: 276 / 288 / 300 for 5 minutes."""
    if step_s <= 0:
        raise ValueError(f"step_s must be positive, got {step_s}")
    start, end = local_day_bounds(day, tz)
    return int((end - start).total_seconds() // step_s)


# --- helpers ---------------------------------------------------------------------------------


@dataclass
class _SourceDay:
    energy: float = 0.0
    has_gap: bool = False
    has_hole: bool = False  # an anomaly of the day was left out: energy known to be missing
    covered: list[tuple[datetime, datetime]] = field(default_factory=list)


def _source_stats(
    intervals: Iterable[Interval], figure: str, day_start: datetime, day_end: datetime
) -> dict[str, _SourceDay]:
    stats: dict[str, _SourceDay] = {}
    left_out, holes = f"{LEFT_OUT}{figure}", set()
    for iv in intervals:
        value = getattr(iv, figure)
        if (
            value is None
            and left_out in iv.flags
            and _overlap_s(iv.start_at, iv.end_at, day_start, day_end)
        ):
            holes.add(iv.source)
        if value is None or iv.seconds <= 0:
            continue
        seconds = _overlap_s(iv.start_at, iv.end_at, day_start, day_end)
        if seconds <= 0:
            continue
        s = stats.setdefault(iv.source, _SourceDay())
        s.energy += value * seconds / iv.seconds
        if _is_gap(iv):
            s.has_gap = True
        else:
            s.covered.append((max(iv.start_at, day_start), min(iv.end_at, day_end)))
    for source in holes & stats.keys():  # a source with no energy that day is no candidate
        stats[source].has_hole = True
    return stats


def _union_seconds(spans: list[tuple[datetime, datetime]]) -> float:
    # Union, not sum: overlapping or duplicated intervals must not push coverage above 1.
    total = 0.0
    current: tuple[datetime, datetime] | None = None
    for start, end in sorted(spans):
        if current is None or start > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total


def _is_gap(iv: Interval) -> bool:
    return iv.seconds > MAX_COVERED_INTERVAL_S or "gap" in iv.flags


def _classify_drop(old: float, new: float) -> str:
    drop = old - new
    for k in range(1, _MAX_WRAPS + 1):
        if abs(drop - k * WRAP_WH) <= _WRAP_TOLERANCE * k * WRAP_WH:
            return "counter_wrap"
    if new < 0.01 * old or new < 1000:
        return "counter_reset"
    return "counter_decrease"


def _pct_diff(other: float, chosen: float) -> float:
    if chosen == 0:
        # Undefined as a percentage; inf makes any threshold check fire, as it should.
        return 0.0 if other == 0 else math.inf
    return abs(other - chosen) / abs(chosen) * 100


def _overlap_s(start: datetime, end: datetime, lo: datetime, hi: datetime) -> float:
    return max((min(end, hi) - max(start, lo)).total_seconds(), 0.0)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # fold=0 picks the first of two midnights (clocks set back to 00:00) and, for a skipped
    # midnight (clocks jump at 00:00), the pre-jump offset, which is exactly the jump instant.
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _require_aware(at: datetime, what: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {at!r}")


def _check_figure(figure: str) -> None:
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; expected one of {FIGURES}")
