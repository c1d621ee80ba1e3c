"""GoodWe SEMS JSON bodies -> daily totals and vendor-neutral Intervals. Pure: no HTTP, no SQL.

Shapes (community clients, see client.py for the URLs; the SEMS API is unofficial):
- every answer: `{"hasError": ..., "code": 0, "msg": ..., "data": ...}`; a non-zero code is an
  error answer, whatever the HTTP status (gw2pvo, TimSoethout/goodwe-sems-home-assistant);
- GetPowerStationPowerAndIncomeByDay: `data: [{"d": "MM/DD/YYYY", "p": kWh, ...}]` (gw2pvo);
- GetPowerStationPacByDayForApp: `data: {"pacs": [{"date": "MM/DD/YYYY HH:MM:SS", "pac": W}]}`
  (gw2pvo). Times are the site's naive wall clock; they are localised with the site's IANA
  zone. Inferred: on the 25-hour day the repeated hour's labels come twice in time order (the
  first is summer time, fold 0), and the skipped hour of the 23-hour day has no labels; a
  label in the skipped hour is kept and flagged `nonexistent_local_time`. If SEMS keys samples
  by label and drops the repeat instead, the result is a flagged gap over that hour.

Daily energy from the daily endpoint is the authoritative figure (source `goodwe_daily`): it
is SEMS's own per-local-day total, one Interval per whole local day (23, 24 or 25 hours).

The intraday series are *power samples*, not energies, so `goodwe_pac` Intervals are an
estimate: each pair of consecutive samples gives one Interval whose energy is the trapezoid
(p0 + p1) / 2 * dt. Why trapezoid rather than a left Riemann sum (p0 * dt): a sample is a
reading at an instant, not the mean of the following step, and the trapezoid is the unbiased
choice for a smooth curve sampled at instants; across a missing sample it interpolates
linearly instead of holding a stale value for the whole gap. Over a whole day that starts and
ends at night (0 W) both rules give the same total on an even grid; they differ in where
energy lands between intervals and across gaps. Steps longer than GAP_S are flagged `gap`.
The samples miss what happens between readings (gw2pvo scales its integral to the daily
figure for that reason), so daily totals come from `goodwe_daily`; `goodwe_pac` is for shape
and peak power.

A body of the wrong shape raises ParseError (the caller keeps its raw text); a bad single item
is left out and listed in `problems`, so one odd sample never loses the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import pairwise
from json import JSONDecodeError
from typing import Any
from zoneinfo import ZoneInfo

from solar_pipeline.energy.model import Interval, local_day_bounds
from solar_pipeline.sources.goodwe.errors import ParseError
from solar_pipeline.sources.parsing import (
    NaiveLocaliser,
    in_datetime_range,
    loads,
    nonnegative_number,
    shown,
)

SOURCE_DAILY = "goodwe_daily"
SOURCE_PAC = "goodwe_pac"
# gw2pvo reads "MM/DD/YYYY"; ISO dates are accepted too in case an app version switches.
DAY_FORMATS = ("%m/%d/%Y", "%Y-%m-%d")
TIME_FORMATS = ("%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M", "%Y-%m-%d %H:%M")
# Samples come every 5 minutes (inferred from the app chart and the simulator); a step longer
# than three of them means readings are missing.
GAP_S = 900
SUCCESS_CODES = frozenset({"0", "00000"})


@dataclass(frozen=True)
class ParsedDaily:
    daily_wh: dict[date, float] = field(default_factory=dict)  # production per local day
    intervals: list[Interval] = field(default_factory=list)  # one per local day
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedPower:
    samples: list[tuple[datetime, float]] = field(default_factory=list)  # (UTC instant, W)
    intervals: list[Interval] = field(default_factory=list)
    problems: tuple[str, ...] = ()

    @property
    def produced_wh(self) -> float:
        """The trapezoid estimate of the samples' energy (not the authoritative daily figure)."""
        return sum(i.produced_wh or 0.0 for i in self.intervals)


# ---- shared pieces -------------------------------------------------------------------------


def _payload(body: str | bytes | None, what: str) -> Any:
    """The `data` of a successful SEMS answer; ParseError for anything else."""
    if body is None or body == "" or body == b"":
        raise ParseError(f"{what}: empty body")
    try:
        answer = loads(body)
    except JSONDecodeError as exc:
        raise ParseError(f"{what}: body is not JSON ({exc.msg} at {exc.pos})") from None
    except ValueError as exc:  # an int of over 4300 digits, bytes in no UTF encoding
        raise ParseError(f"{what}: body is not JSON ({exc})") from None
    if not isinstance(answer, dict):
        raise ParseError(f"{what}: expected a JSON object, got {type(answer).__name__}")
    code = answer.get("code")
    if code is None:
        raise ParseError(f"{what}: the answer has no 'code'")
    if not isinstance(code, str | int) or str(code) not in SUCCESS_CODES:
        said = str(code)[:40] if isinstance(code, str | int) else shown(code)
        raise ParseError(f"{what}: error answer, code {said}: {shown(answer.get('msg'))}")
    return answer.get("data")


def _strptime(raw: Any, formats: tuple[str, ...]) -> datetime | None:
    """The first format that reads `raw`; None when none does, or when the time lies where
    no UTC offset can move it (years 1 and 9999)."""
    if not isinstance(raw, str):
        return None
    for fmt in formats:
        try:
            parsed = datetime.strptime(raw.strip(), fmt)
        except ValueError:
            continue
        return parsed if in_datetime_range(parsed) else None
    return None


# ---- endpoints -----------------------------------------------------------------------------


def parse_daily_energy(body: str | bytes | None, timezone: str) -> ParsedDaily:
    """GetPowerStationPowerAndIncomeByDay -> Wh per local day and whole-day Intervals.

    `p` is kWh (gw2pvo reads it as the day's kWh). A day listed twice keeps its first value
    and is reported; a missing or bad `p` is left out (unknown, not zero) and reported.
    """
    what = "GetPowerStationPowerAndIncomeByDay"
    data = _payload(body, what)
    if data is None:
        data = []
    if not isinstance(data, list):
        raise ParseError(f"{what}: 'data' is not a list of days")
    problems: list[str] = []
    daily: dict[date, float] = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            problems.append(f"{what}[{i}]: not an object")
            continue
        parsed = _strptime(item.get("d"), DAY_FORMATS)
        if parsed is None:
            problems.append(f"{what}[{i}]: bad day {shown(item.get('d'))}")
            continue
        day = parsed.date()
        kwh = nonnegative_number(item.get("p"), strings=True)
        if kwh is None:
            problems.append(f"{what}[{i}] {day}: bad energy {shown(item.get('p'))}")
            continue
        if day in daily:
            problems.append(f"{what}[{i}] {day}: listed twice, the first value is kept")
            continue
        daily[day] = kwh * 1000.0
    intervals = [
        Interval(
            *local_day_bounds(day, timezone),
            SOURCE_DAILY,
            produced_wh=wh,
        )
        for day, wh in sorted(daily.items())
    ]
    return ParsedDaily(daily, intervals, tuple(problems))


def parse_day_power(
    body: str | bytes | None, timezone: str, day: date | None = None
) -> ParsedPower:
    """GetPowerStationPacByDayForApp -> power samples and trapezoid `goodwe_pac` Intervals.

    With `day`, samples whose local date is another day are left out and reported (one call
    asks for one day, so they do not belong to its partition).
    """
    what = "GetPowerStationPac"
    zone = ZoneInfo(timezone)
    data = _payload(body, what)
    if data is None:
        return ParsedPower()
    if not isinstance(data, dict):
        raise ParseError(f"{what}: 'data' is not an object")
    pacs = data.get("pacs")
    if pacs is None:
        raise ParseError(f"{what}: 'data.pacs' is missing")
    if not isinstance(pacs, list):
        raise ParseError(f"{what}: 'data.pacs' is not a list")
    problems: list[str] = []
    localise = NaiveLocaliser(zone)
    points: list[tuple[datetime, float, tuple[str, ...]]] = []
    for i, item in enumerate(pacs):
        if not isinstance(item, dict):
            problems.append(f"{what}[{i}]: not an object")
            continue
        naive = _strptime(item.get("date"), TIME_FORMATS)
        if naive is None:
            problems.append(f"{what}[{i}]: bad time {shown(item.get('date'))}")
            continue
        label = f"{what}[{i}] {naive:%Y-%m-%d %H:%M:%S}"
        if day is not None and naive.date() != day:
            problems.append(f"{label}: not on {day.isoformat()}, left out")
            continue
        instant, flags = localise(naive)
        if instant is None:
            problems.append(f"{label}: appears more often than the clock allows, left out")
            continue
        problems.extend(f"{label}: {f}" for f in flags)
        watts = nonnegative_number(item.get("pac"), strings=True)
        if watts is None:
            problems.append(f"{label}: bad power {shown(item.get('pac'))}")
            continue
        points.append((instant, watts, flags))
    points.sort(key=lambda p: p[0])
    intervals = []
    for (t0, p0, f0), (t1, p1, f1) in pairwise(points):
        dt = (t1 - t0).total_seconds()
        pair_flags = set(f0) | set(f1)
        if dt > GAP_S:
            pair_flags.add("gap")
        wh = (p0 + p1) / 2 * dt / 3600
        intervals.append(
            Interval(t0, t1, SOURCE_PAC, produced_wh=wh, flags=tuple(sorted(pair_flags)))
        )
    samples = [(t, p) for t, p, _ in points]
    return ParsedPower(samples, intervals, tuple(problems))
