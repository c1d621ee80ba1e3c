"""SolarEdge JSON bodies -> vendor-neutral Intervals and daily totals. Pure: no HTTP, no SQL.

SolarEdge dates are naive site-local wall-clock strings labelling the start of a period, so
each is localised with the site's IANA zone (never read as UTC, never converted twice: field
notes §4.6). On the 25-hour day the repeated hour's labels come twice, in time order: the
first is the summer-time one (fold 0), the second the winter-time one (fold 1). A label in the
skipped hour of the 23-hour day cannot be a real time; it is flagged.

A body of the wrong shape raises ParseError; a bad single value is left out and listed in
`problems` (and flagged on its interval), so one odd quarter never loses the rest.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from json import JSONDecodeError
from typing import Any
from zoneinfo import ZoneInfo

from solar_pipeline.energy.model import Interval
from solar_pipeline.sources.parsing import (
    NaiveLocaliser,
    in_datetime_range,
    loads,
    nonnegative_number,
    shown,
)
from solar_pipeline.sources.solaredge.errors import ParseError

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
UNITS = {"Wh": 1.0, "kWh": 1_000.0, "MWh": 1_000_000.0}
STEPS = {"QUARTER_OF_AN_HOUR": timedelta(minutes=15), "HOUR": timedelta(hours=1)}
# Meter -> Interval figure; SelfConsumption has no Interval field (it is produced - exported).
FIGURES = {
    "Production": "produced_wh",
    "Consumption": "consumed_wh",
    "Purchased": "imported_wh",
    "FeedIn": "exported_wh",
}
SOURCE_DETAILS = "solaredge_details"
SOURCE_ENERGY = "solaredge_energy"
# SelfConsumption vs Production - FeedIn: SolarEdge rounds each meter on its own.
_SELF_TOLERANCE_WH = 1.0


@dataclass(frozen=True)
class ParsedEnergy:
    intervals: list[Interval] = field(default_factory=list)
    daily_wh: dict[date, float] = field(default_factory=dict)  # production per local day
    self_consumed_wh: dict[datetime, float] = field(default_factory=dict)  # by start (UTC)
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Overview:
    last_update_at: datetime | None
    lifetime_wh: float | None
    last_year_wh: float | None
    last_month_wh: float | None
    last_day_wh: float | None
    current_power_w: float | None
    measured_by: str | None


# ---- shared pieces -------------------------------------------------------------------------


def _load(body: str | bytes | None, what: str) -> dict[str, Any]:
    if body is None or body == "" or body == b"":
        raise ParseError(f"{what}: empty body")
    try:
        data = loads(body)
    except JSONDecodeError as exc:
        raise ParseError(f"{what}: body is not JSON ({exc.msg} at {exc.pos})") from None
    except ValueError as exc:  # an int of over 4300 digits, bytes in no UTF encoding
        raise ParseError(f"{what}: body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ParseError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _obj(parent: dict[str, Any], key: str, what: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise ParseError(f"{what}: '{key}' is missing or not an object")
    return value


def _list(parent: dict[str, Any], key: str, what: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"{what}: '{key}' is not a list")
    return value


def _scale(block: dict[str, Any], what: str) -> float:
    unit = block.get("unit", "Wh")
    if not isinstance(unit, str) or unit not in UNITS:
        raise ParseError(f"{what}: unknown unit {shown(unit)} (expected one of {', '.join(UNITS)})")
    return UNITS[unit]


def _time_unit(block: dict[str, Any], what: str) -> str | None:
    unit = block.get("timeUnit")
    if unit is not None and not isinstance(unit, str):
        raise ParseError(f"{what}: timeUnit {shown(unit)} is not text")
    return unit


def _naive(raw: Any) -> datetime | None:
    """A label as a naive time; None when it is not one (or lies where no UTC offset can
    move it: years 1 and 9999)."""
    if not isinstance(raw, str):
        return None
    try:
        naive = datetime.strptime(raw, TIME_FORMAT)
    except ValueError:
        return None
    return naive if in_datetime_range(naive) else None


def _series(
    values: list[Any], zone: ZoneInfo, scale: float, what: str, problems: list[str]
) -> list[tuple[datetime, float | None, tuple[str, ...]]]:
    """(start UTC, Wh or None, flags) per value, in the order given."""
    localise = NaiveLocaliser(zone)
    out = []
    for i, item in enumerate(values):
        if not isinstance(item, dict):
            problems.append(f"{what}[{i}]: not an object")
            continue
        naive = _naive(item.get("date"))
        if naive is None:
            problems.append(f"{what}[{i}]: bad date {shown(item.get('date'))}")
            continue
        start, flags = localise(naive)
        if start is None:
            problems.append(f"{what}[{i}]: {naive:%Y-%m-%d %H:%M:%S} appears more than expected")
            continue
        problems.extend(f"{what}[{i}] {naive:%Y-%m-%d %H:%M:%S}: {f}" for f in flags)
        raw = item.get("value")  # absent or null: no data for that period
        wh = nonnegative_number(raw)
        if raw is not None and wh is None:
            problems.append(f"{what}[{i}] {naive:%Y-%m-%d %H:%M:%S}: bad value {shown(raw)}")
            flags = (*flags, "bad_value")
        out.append((start, None if wh is None else wh * scale, flags))
    return out


def _day_end(start: datetime, zone: ZoneInfo) -> datetime:
    local = start.astimezone(zone)
    nxt = local.date() + timedelta(days=1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).astimezone(UTC)


def _step_end(start: datetime, unit: str, zone: ZoneInfo, what: str) -> datetime:
    if unit in STEPS:
        return start + STEPS[unit]
    if unit == "DAY":
        return _day_end(start, zone)
    raise ParseError(f"{what}: timeUnit {shown(unit)} is not parsed into intervals")


# ---- endpoints -----------------------------------------------------------------------------


def parse_energy_details(body: str | bytes | None, timezone: str) -> ParsedEnergy:
    """`/site/{id}/energyDetails` -> one Interval per period, meters merged.

    Production -> produced_wh, Consumption -> consumed_wh, Purchased -> imported_wh,
    FeedIn -> exported_wh; a meter the site lacks stays None (unknown, not zero). A period
    where no meter has a value is left out. SelfConsumption goes to `self_consumed_wh` and is
    checked against Production - FeedIn (flag `self_consumption_mismatch`).
    """
    what = "energyDetails"
    zone = ZoneInfo(timezone)
    block = _obj(_load(body, what), "energyDetails", what)
    unit = _time_unit(block, what)
    scale = _scale(block, what)
    problems: list[str] = []
    figures: dict[datetime, dict[str, float | None]] = defaultdict(dict)
    flags: dict[datetime, set[str]] = defaultdict(set)
    for m, meter in enumerate(_list(block, "meters", what)):
        if not isinstance(meter, dict) or not isinstance(meter.get("type"), str):
            raise ParseError(f"{what}: meters[{m}] has no type")
        name = meter["type"]
        label = f"{what}.{name}"
        for start, wh, f in _series(_list(meter, "values", label), zone, scale, label, problems):
            figures[start][name] = wh
            flags[start] |= set(f)
    intervals: list[Interval] = []
    self_consumed: dict[datetime, float] = {}
    daily: dict[date, float] = defaultdict(float)
    for start in sorted(figures):
        row = figures[start]
        if all(v is None for v in row.values()):
            continue
        end = _step_end(start, str(unit), zone, what)
        marks = flags[start]
        sc, prod, feed = row.get("SelfConsumption"), row.get("Production"), row.get("FeedIn")
        if sc is not None:
            self_consumed[start] = sc
            if (
                prod is not None
                and feed is not None
                and abs(prod - feed - sc) > max(_SELF_TOLERANCE_WH, 0.01 * sc)
            ):
                marks.add("self_consumption_mismatch")
                problems.append(f"{what} {start:%Y-%m-%dT%H:%MZ}: self_consumption_mismatch")
        if prod is not None:
            daily[start.astimezone(zone).date()] += prod
        intervals.append(
            Interval(
                start,
                end,
                SOURCE_DETAILS,
                **{fig: row.get(meter) for meter, fig in FIGURES.items()},
                flags=tuple(sorted(marks)),
            )
        )
    # Daily sums of details are only whole-day totals for timeUnit=DAY answers.
    return ParsedEnergy(
        intervals, dict(daily) if unit == "DAY" else {}, self_consumed, tuple(problems)
    )


def parse_site_energy(body: str | bytes | None, timezone: str) -> ParsedEnergy:
    """`/site/{id}/energy`: timeUnit=DAY -> production Wh per local day in `daily_wh`;
    QUARTER_OF_AN_HOUR or HOUR -> production Intervals (source `solaredge_energy`)."""
    what = "energy"
    zone = ZoneInfo(timezone)
    block = _obj(_load(body, what), "energy", what)
    unit = _time_unit(block, what)
    scale = _scale(block, what)
    problems: list[str] = []
    series = _series(_list(block, "values", what), zone, scale, what, problems)
    if unit == "DAY":
        daily: dict[date, float] = {}
        for start, wh, _ in series:
            local = start.astimezone(zone)
            if (local.hour, local.minute, local.second) != (0, 0, 0):
                problems.append(f"{what}: daily value not at midnight: {local.isoformat()}")
                continue
            if wh is not None:
                daily[local.date()] = wh
        return ParsedEnergy(daily_wh=daily, problems=tuple(problems))
    if unit not in STEPS:
        raise ParseError(
            f"{what}: timeUnit {shown(unit)} is not parsed (DAY, QUARTER_OF_AN_HOUR, HOUR)"
        )
    intervals = [
        Interval(start, start + STEPS[unit], SOURCE_ENERGY, produced_wh=wh, flags=f)
        for start, wh, f in series
        if wh is not None
    ]
    return ParsedEnergy(intervals=intervals, problems=tuple(problems))


def parse_overview(body: str | bytes | None, timezone: str) -> Overview:
    """`/site/{id}/overview` -> lifetime / year / month / day Wh and current W."""
    what = "overview"
    zone = ZoneInfo(timezone)
    block = _obj(_load(body, what), "overview", what)

    # The overview carries no unit: energies are Wh, power W.
    def figure(key: str, inner: str) -> float | None:
        part = block.get(key)
        return nonnegative_number(part.get(inner)) if isinstance(part, dict) else None

    naive = _naive(block.get("lastUpdateTime"))
    last_update = None
    if naive is not None:
        last_update, _ = NaiveLocaliser(zone)(naive)
    measured = block.get("measuredBy")
    return Overview(
        last_update_at=last_update,
        lifetime_wh=figure("lifeTimeData", "energy"),
        last_year_wh=figure("lastYearData", "energy"),
        last_month_wh=figure("lastMonthData", "energy"),
        last_day_wh=figure("lastDayData", "energy"),
        current_power_w=figure("currentPower", "power"),
        measured_by=measured if isinstance(measured, str) else None,
    )
