"""Deterministic synthetic production, consumption and events for the simulators.

Every value is derived from a per-(system, local day) seeded generator, so the same interval has
the same numbers whatever window asked for it and in whatever process: a pipeline that re-reads a
day must see exactly what it saw before.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

MICRO_STEP = 300
METER_STEP = 900
# An AC meter sits after wiring losses, so it reads slightly under the microinverters.
METER_FACTOR = 0.98
GATEWAY_SERIAL = "202241095486"
EVENT_TYPE_NO_REPORT = 28


@dataclass(frozen=True)
class SystemSpec:
    system_id: int = 4021157
    timezone: str = "Europe/Amsterdam"
    size_w: int = 6400
    modules: int = 16
    latitude: float = 52.0
    has_production_meter: bool = True
    has_consumption_meter: bool = True
    operational_date: date = date(2023, 1, 1)
    name: str = "Demo Home"


@dataclass(frozen=True)
class _Series:
    """Values of one local day at a fixed step; `first_end` is the first interval's end_at."""

    first_end: int
    step: int
    values: tuple[int, ...]

    def window(self, start_at: int, end_at: int) -> list[tuple[int, int]]:
        lo = max(0, (start_at - self.first_end) // self.step + 1)
        hi = min(len(self.values), (end_at - self.first_end) // self.step + 1)
        return [(self.first_end + i * self.step, self.values[i]) for i in range(lo, hi)]

    def at(self, end_at: int) -> int:
        return self.values[(end_at - self.first_end) // self.step]


def _tz(spec: SystemSpec) -> ZoneInfo:
    return ZoneInfo(spec.timezone)


def local_day_bounds(spec: SystemSpec, day: date) -> tuple[int, int]:
    tz = _tz(spec)
    nxt = day + timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return int(start.timestamp()), int(end.timestamp())


def local_date(spec: SystemSpec, epoch: float) -> date:
    return datetime.fromtimestamp(epoch, _tz(spec)).date()


def interval_day(spec: SystemSpec, end_at: int) -> date:
    """The local day an interval belongs to: the one containing its last second."""
    return local_date(spec, end_at - 1)


def _rng(spec: SystemSpec, day: date, purpose: str) -> random.Random:
    # A string seed is hashed with SHA-512 by random, so it is stable across processes.
    return random.Random(f"{spec.system_id}:{day.isoformat()}:{purpose}")


def _first_end(start: int, step: int) -> int:
    return (start // step + 1) * step


def weather_factor(spec: SystemSpec, day: date) -> float:
    return _rng(spec, day, "weather").uniform(0.25, 1.0)


def _solar_noon(spec: SystemSpec, day: date) -> float:
    # Noon of local *standard* time: the sun ignores DST, and without a longitude this is the
    # best estimate the time zone gives.
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=_tz(spec))
    return noon.timestamp() + (noon.dst() or timedelta()).total_seconds()


def _sun_terms(spec: SystemSpec, day: date) -> tuple[float, float]:
    """(a, b) with sin(solar altitude) = a + b * cos(hour angle) for the day."""
    doy = day.timetuple().tm_yday
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365)
    lat = math.radians(spec.latitude)
    return math.sin(lat) * math.sin(decl), math.cos(lat) * math.cos(decl)


@lru_cache(maxsize=2048)
def _micro_day(spec: SystemSpec, day: date) -> _Series:
    start, end = local_day_bounds(spec, day)
    first = _first_end(start, MICRO_STEP)
    count = end // MICRO_STEP - start // MICRO_STEP
    weather = weather_factor(spec, day)
    noise_rng = _rng(spec, day, "micro")
    # Cloudier days are also more variable.
    amp = 0.04 + 0.4 * (1.0 - weather)
    noon = _solar_noon(spec, day)
    a, b = _sun_terms(spec, day)
    # 0.82 covers inverter, wiring and soiling losses, so peak AC stays well under the DC size.
    peak, cap = 0.82 * spec.size_w * weather, 0.95 * spec.size_w
    values = []
    for i in range(count):
        mid = first + i * MICRO_STEP - MICRO_STEP / 2
        noise = 1.0 + noise_rng.uniform(-amp, amp / 3)
        sin_alt = a + b * math.cos(2 * math.pi * (mid - noon) / 86400)
        # The exponent > 1 mimics the longer air mass at low sun.
        watts = peak * sin_alt**1.15 * noise if sin_alt > 0 else 0.0
        values.append(round(min(cap, watts)))
    return _Series(first, MICRO_STEP, tuple(values))


def _micro_enwh(powr: int) -> int:
    return round(powr / 12)


def _household_w(hour: float) -> float:
    def bump(mu: float, sigma: float) -> float:
        return math.exp(-0.5 * ((hour - mu) / sigma) ** 2)

    return 250 + 900 * bump(7.5, 0.8) + 150 * bump(13.0, 2.0) + 1400 * bump(19.0, 1.5)


@lru_cache(maxsize=2048)
def _consumption_day(spec: SystemSpec, day: date) -> _Series:
    start, end = local_day_bounds(spec, day)
    first = _first_end(start, METER_STEP)
    count = end // METER_STEP - start // METER_STEP
    rng = _rng(spec, day, "consumption")
    tz = _tz(spec)
    values = []
    for i in range(count):
        mid = datetime.fromtimestamp(first + i * METER_STEP - METER_STEP / 2, tz)
        watts = _household_w(mid.hour + mid.minute / 60) * rng.uniform(0.8, 1.25)
        if rng.random() < 0.05:  # kettle, oven, washing machine
            watts += rng.uniform(500, 2000)
        values.append(round(watts / 4))
    return _Series(first, METER_STEP, tuple(values))


def _micro_at(spec: SystemSpec, end_at: int) -> int:
    return _micro_day(spec, interval_day(spec, end_at)).at(end_at)


@lru_cache(maxsize=2048)
def _meter_day(spec: SystemSpec, day: date) -> _Series:
    start, end = local_day_bounds(spec, day)
    micro = _micro_day(spec, day)
    last = micro.first_end + (len(micro.values) - 1) * MICRO_STEP

    def enwh(end_at: int) -> int:
        # A quarter hour can straddle local midnight only in zones off the 15-minute grid.
        inside = micro.first_end <= end_at <= last
        return _micro_enwh(micro.at(end_at) if inside else _micro_at(spec, end_at))

    first = _first_end(start, METER_STEP)
    count = end // METER_STEP - start // METER_STEP
    values = []
    for i in range(count):
        q_end = first + i * METER_STEP
        values.append(round(METER_FACTOR * sum(enwh(q_end - k * MICRO_STEP) for k in range(3))))
    return _Series(first, METER_STEP, tuple(values))


def _days(spec: SystemSpec, start_at: int, end_at: int, step: int) -> list[date]:
    first = _first_end(start_at, step)
    if first > end_at:
        return []
    day, last = interval_day(spec, first), interval_day(spec, end_at)
    out = []
    while day <= last:
        out.append(day)
        day += timedelta(days=1)
    return out


def micro_intervals(spec: SystemSpec, start_at: int, end_at: int) -> list[dict]:
    out = []
    for day in _days(spec, start_at, end_at, MICRO_STEP):
        for end, powr in _micro_day(spec, day).window(start_at, end_at):
            out.append(
                {
                    "end_at": end,
                    "devices_reporting": spec.modules,
                    "powr": powr,
                    "enwh": _micro_enwh(powr),
                }
            )
    return out


def meter_production_intervals(spec: SystemSpec, start_at: int, end_at: int) -> list[dict]:
    out = []
    for day in _days(spec, start_at, end_at, METER_STEP):
        for end, wh in _meter_day(spec, day).window(start_at, end_at):
            out.append({"end_at": end, "devices_reporting": 1, "wh_del": wh})
    return out


def consumption_intervals(spec: SystemSpec, start_at: int, end_at: int) -> list[dict]:
    out = []
    for day in _days(spec, start_at, end_at, METER_STEP):
        for end, wh in _consumption_day(spec, day).window(start_at, end_at):
            out.append({"end_at": end, "devices_reporting": 1, "enwh": wh})
    return out


def totals_until(spec: SystemSpec, day: date, cutoff: int) -> dict[str, int]:
    """Sums of the day's intervals that ended at or before `cutoff` (what has been uploaded)."""
    start, end = local_day_bounds(spec, day)
    if cutoff >= end:
        return daily_totals(spec, day)
    upto = min(end, cutoff)
    micro = sum(i["enwh"] for i in micro_intervals(spec, start, upto))
    meter = sum(i["wh_del"] for i in meter_production_intervals(spec, start, upto))
    cons = sum(i["enwh"] for i in consumption_intervals(spec, start, upto))
    return _totals(spec, micro, meter, cons)


def _totals(spec: SystemSpec, micro: int, meter: int, cons: int) -> dict[str, int]:
    return {
        "micro_wh": micro,
        "meter_wh": meter,
        "consumption_wh": cons,
        "production_wh": meter if spec.has_production_meter else micro,
    }


@lru_cache(maxsize=16384)
def _daily_totals(spec: SystemSpec, day: date) -> tuple[int, int, int]:
    micro = sum(_micro_enwh(v) for v in _micro_day(spec, day).values)
    return micro, sum(_meter_day(spec, day).values), sum(_consumption_day(spec, day).values)


def daily_totals(spec: SystemSpec, day: date) -> dict[str, int]:
    return _totals(spec, *_daily_totals(spec, day))


def _day_incident(spec: SystemSpec, day: date) -> tuple[int, int]:
    """Start and end of the day's nightly 'gateway not reporting' spell."""
    rng = _rng(spec, day, "event")
    minute, second = rng.randrange(10), rng.randrange(60)
    duration = rng.randint(5 * 60, 20 * 60)
    start = datetime(day.year, day.month, day.day, 23, minute, second, tzinfo=_tz(spec))
    return int(start.timestamp()), int(start.timestamp()) + duration


def _incidents(spec: SystemSpec, start: int, end: int, now: int) -> list[tuple[date, int, int]]:
    if end <= start:
        return []
    day = max(local_date(spec, start) - timedelta(days=1), spec.operational_date)
    last = local_date(spec, end)
    out = []
    while day <= last:
        ev_start, ev_end = _day_incident(spec, day)
        if start <= ev_start < end and ev_start <= now:
            out.append((day, ev_start, ev_end))
        day += timedelta(days=1)
    return out


def events_between(spec: SystemSpec, start: int, end: int, now: int) -> list[dict]:
    return [
        {
            "status": "Closed" if ev_end <= now else "Open",
            "event_type_id": EVENT_TYPE_NO_REPORT,
            "event_start_time": ev_start,
            "event_end_time": ev_end if ev_end <= now else None,
            "serial_number": GATEWAY_SERIAL,
        }
        for _, ev_start, ev_end in _incidents(spec, start, end, now)
    ]


def _is_alarm_day(spec: SystemSpec, day: date) -> bool:
    return (day.toordinal() + spec.system_id) % 7 == 0


def alarms_between(spec: SystemSpec, start: int, end: int, now: int) -> list[dict]:
    """Alarms (cleared or not) starting in [start, end); one incident in seven escalates."""
    out = []
    for day, ev_start, ev_end in _incidents(spec, start, end, now):
        if not _is_alarm_day(spec, day):
            continue
        ended = ev_end <= now
        out.append(
            {
                "id": f"{spec.system_id}.{EVENT_TYPE_NO_REPORT}.{ev_start}",
                "cleared": ended,
                "severity": 3,
                "event_type_id": EVENT_TYPE_NO_REPORT,
                "alarm_start_time": ev_start,
                "alarm_end_time": ev_end if ended else None,
                "events": [
                    {
                        "serial_number": GATEWAY_SERIAL,
                        "start_date": ev_start,
                        "end_date": ev_end if ended else None,
                    }
                ],
            }
        )
    return out
