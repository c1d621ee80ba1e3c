"""SMA measurement-set bodies -> vendor-neutral Intervals and daily totals. Pure: no HTTP, no SQL.

Body shape (SolarNetwork's SMA integration and other integrators' code; SMA's Swagger is not in
our references, so every point here is inferred, not documented):
    {"plant": {"plantId", "name", "timezone"}, "setType": "EnergyAndPowerPv",
     "resolution": "FiveMinutes" | "OneDay" | ..., "set": [{"time": "2026-06-01T12:05:00",
     "pvGeneration": 41.0}, ...]}
- `time` is a naive wall-clock time of the plant's zone (the `plant.timezone` of the body). A
  time that carries an offset is honoured as such.
- Day sets label the *end* of each 5-minute period: a day runs 00:05 ... next day 00:00. So on
  the 25-hour day the labels 02:00-02:55 come twice, in time order (summer time first), and on
  the 23-hour day 02:05-02:55 never occur (03:00 follows 01:55). Each label is read as the
  earliest of its possible instants after the previous one; a label that cannot exist (in the
  skipped hour) or goes back in time is flagged.
- Month sets carry one value per local day, labelled with that day's midnight.
- Values are Wh with `ReturnEnergyValues=true` (what SmaClient sends); null means no data.

Figures per set (SolarNetwork's set catalogue): EnergyAndPowerPv has only `pvGeneration`
(-> produced_wh); feed-in `gridFeedIn` (-> exported_wh) and purchase `gridConsumption`
(-> imported_wh) come in EnergyAndPowerInOut, `consumption` (-> consumed_wh) in
EnergyAndPowerConsumption. The parser reads whichever of these a set carries.

A body of the wrong shape raises ParseError; a bad single value is left out, listed in
`problems` and flagged on its interval, so one odd period never loses the rest.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from solar_pipeline.energy.model import Interval, local_day_bounds
from solar_pipeline.sources.parsing import in_datetime_range, loads, nonnegative_number, shown
from solar_pipeline.sources.sma.errors import ParseError

FIGURES = {
    "pvGeneration": "produced_wh",
    "consumption": "consumed_wh",
    "gridConsumption": "imported_wh",
    "gridFeedIn": "exported_wh",
}
# set type -> (source of its 5-minute series, source of its whole-day values)
SOURCES = {
    "EnergyAndPowerPv": ("sma_pv", "sma_daily"),
    "EnergyAndPowerInOut": ("sma_grid", "sma_grid_daily"),
    "EnergyAndPowerConsumption": ("sma_consumption", "sma_consumption_daily"),
}
SOURCE_PV = "sma_pv"
SOURCE_DAILY = "sma_daily"
STEPS = {
    "OneMinute": timedelta(minutes=1),
    "FiveMinutes": timedelta(minutes=5),
    "FifteenMinutes": timedelta(minutes=15),
    "OneHour": timedelta(hours=1),
}
_SPIKE_FACTOR = 1.2  # headroom over nameplate power


@dataclass(frozen=True)
class ParsedSet:
    intervals: list[Interval] = field(default_factory=list)
    daily_wh: dict[date, float] = field(default_factory=dict)  # production per local day
    problems: tuple[str, ...] = ()
    plant_timezone: str | None = None  # as the body states it


# ---- shared pieces -------------------------------------------------------------------------


def _load(body: str | bytes | None, what: str) -> dict[str, Any]:
    if body is None or body == "" or body == b"":
        raise ParseError(f"{what}: empty body")
    try:
        data = loads(body)
    except ValueError as exc:
        msg = getattr(exc, "msg", str(exc))
        raise ParseError(f"{what}: body is not JSON ({msg})") from None
    if not isinstance(data, dict):
        raise ParseError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _sources(data: dict[str, Any], what: str) -> tuple[str, str]:
    set_type = data.get("setType", "EnergyAndPowerPv")
    if not isinstance(set_type, str) or set_type not in SOURCES:
        raise ParseError(f"{what}: set type {shown(set_type)} is not parsed ({', '.join(SOURCES)})")
    return SOURCES[set_type]


def _items(data: dict[str, Any], what: str) -> list[Any]:
    items = data.get("set")
    if items is None:
        raise ParseError(f"{what}: 'set' is missing")
    if not isinstance(items, list):
        raise ParseError(f"{what}: 'set' is not a list")
    return items


def _plant_zone(data: dict[str, Any], timezone: str, what: str, problems: list[str]) -> str | None:
    plant = data.get("plant")
    stated = plant.get("timezone") if isinstance(plant, dict) else None
    if isinstance(stated, str) and stated and stated != timezone:
        problems.append(
            f"{what}: the plant's time zone is {shown(stated)}, the site's {timezone!r}; "
            f"times were read in {timezone!r}"
        )
    return stated if isinstance(stated, str) else None


def _time(raw: Any) -> datetime | None:
    """An ISO time; None when it is not one, or lies where no UTC offset can move it."""
    if not isinstance(raw, str):
        return None
    try:
        stamp = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return stamp if in_datetime_range(stamp) else None


def _figures(item: dict[str, Any], label: str, problems: list[str]) -> tuple[dict, bool, bool]:
    """(figure -> Wh or None, any value present, any bad value) of one set item."""
    out: dict[str, float | None] = {}
    present = bad = False
    for key, figure in FIGURES.items():
        if key not in item:
            continue
        raw = item[key]
        if raw is None:  # no data for that period
            out[figure] = None
            continue
        wh = nonnegative_number(raw)
        if wh is None:
            problems.append(f"{label}: bad {key} {shown(raw)}")
            bad = True
        else:
            present = True
        out[figure] = wh
    return out, present, bad


class _EndLocaliser:
    """Naive local end labels of one series -> UTC instants, in time order."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.last: datetime | None = None

    def __call__(self, label: datetime) -> tuple[datetime | None, tuple[str, ...]]:
        if label.tzinfo is not None:
            candidates = [label.astimezone(UTC)]
        else:
            early = label.replace(tzinfo=self.zone, fold=0)
            late = label.replace(tzinfo=self.zone, fold=1)
            if early.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != label:
                # In the skipped hour of the 23-hour day: no such wall-clock time exists.
                return early.astimezone(UTC), ("nonexistent_local_time",)
            candidates = sorted({early.astimezone(UTC), late.astimezone(UTC)})
        for instant in candidates:
            if self.last is None or instant > self.last:
                self.last = instant
                return instant, ()
        return None, ("out_of_order_time",)


# ---- sets ----------------------------------------------------------------------------------


def parse_day(
    body: str | bytes | None, timezone: str, max_power_w: float | None = None
) -> ParsedSet:
    """`.../measurements/sets/{set}/Day` -> one Interval per period (source `sma_pv` for
    EnergyAndPowerPv). With `max_power_w` (nameplate), a period holding more energy than that
    power could make (x1.2) is flagged `spike` and given no energy: integrators report a bogus
    first value from newly added devices."""
    what = "Day"
    zone = ZoneInfo(timezone)
    data = _load(body, what)
    source, _ = _sources(data, what)
    problems: list[str] = []
    stated = _plant_zone(data, timezone, what, problems)
    resolution = data.get("resolution", "FiveMinutes")
    if not isinstance(resolution, str) or resolution not in STEPS:
        raise ParseError(
            f"{what}: resolution {shown(resolution)} is not a series ({', '.join(STEPS)})"
        )
    step = STEPS[resolution]
    localise = _EndLocaliser(zone)
    intervals: list[Interval] = []
    daily: dict[date, float] = defaultdict(float)
    for i, item in enumerate(_items(data, what)):
        label = f"{what}.set[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{label}: not an object")
            continue
        stamp = _time(item.get("time"))
        if stamp is None:
            problems.append(f"{label}: bad time {shown(item.get('time'))}")
            continue
        end, flags = localise(stamp)
        label = f"{label} {item['time']}"
        if end is None or flags:
            problems.extend(f"{label}: {f}" for f in flags)
            continue
        figures, present, bad = _figures(item, label, problems)
        flags = ("bad_value",) if bad else ()
        produced = figures.get("produced_wh")
        limit = max_power_w * step.total_seconds() / 3600 * _SPIKE_FACTOR if max_power_w else None
        if produced is not None and limit is not None and produced > limit:
            problems.append(f"{label}: spike {produced} Wh over {limit:.0f} Wh")
            figures["produced_wh"], flags = None, (*flags, "spike")
            present = any(v is not None for v in figures.values())
        if not present and not flags:
            continue  # no data for that period: unknown, not zero
        start = end - step
        if figures.get("produced_wh") is not None:
            daily[start.astimezone(zone).date()] += figures["produced_wh"]
        intervals.append(Interval(start, end, source, **figures, flags=flags))
    return ParsedSet(intervals, dict(daily), tuple(problems), stated)


def parse_month(body: str | bytes | None, timezone: str) -> ParsedSet:
    """`.../measurements/sets/{set}/Month` -> Wh per local day in `daily_wh` (production) and
    an Interval over each whole local day (23, 24 or 25 hours; source `sma_daily`)."""
    what = "Month"
    zone = ZoneInfo(timezone)
    data = _load(body, what)
    _, source = _sources(data, what)
    problems: list[str] = []
    stated = _plant_zone(data, timezone, what, problems)
    resolution = data.get("resolution", "OneDay")
    if resolution != "OneDay":
        raise ParseError(f"{what}: resolution {shown(resolution)}, expected 'OneDay'")
    intervals: list[Interval] = []
    daily: dict[date, float] = {}
    seen: set[date] = set()
    for i, item in enumerate(_items(data, what)):
        label = f"{what}.set[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{label}: not an object")
            continue
        stamp = _time(item.get("time"))
        if stamp is None:
            problems.append(f"{label}: bad time {shown(item.get('time'))}")
            continue
        local = stamp.astimezone(zone).replace(tzinfo=None) if stamp.tzinfo else stamp
        label = f"{label} {item['time']}"
        if local.time() != datetime.min.time():
            problems.append(f"{label}: daily value not at midnight")
            continue
        day = local.date()
        if day in seen:
            problems.append(f"{label}: day appears twice")
            continue
        seen.add(day)
        figures, present, bad = _figures(item, label, problems)
        if not present and not bad:
            continue
        if figures.get("produced_wh") is not None:
            daily[day] = figures["produced_wh"]
        intervals.append(
            Interval(
                *local_day_bounds(day, zone.key),
                source,
                **figures,
                flags=("bad_value",) if bad else (),
            )
        )
    return ParsedSet(intervals, daily, tuple(problems), stated)
