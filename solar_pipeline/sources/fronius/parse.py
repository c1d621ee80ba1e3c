"""Fronius Solar API v1 bodies -> readings and vendor-neutral `Interval`s.

Every answer is the documented envelope `{"Head": {"Status": {"Code", "Reason"}, "Timestamp"},
"Body": {"Data": ...}}`. Timestamps are RFC 3339 with an offset (local on a Datamanager, UTC on
GEN24/Tauro); a date/time without one is site-local by the documentation, so it is localised
with the site's IANA zone. Energies are Wh, powers W.

Sources produced here:
  - `fronius_archive`: 5-minute `EnergyReal_WAC_Sum_Produced` Detail values (Datamanager only);
  - `fronius_etotal`: deltas of the lifetime `E_Total` between realtime polls (every model; the
    only way on GEN24/Tauro, whose `E_Day`/`E_Year` are always null and who have no archive);
  - `fronius_meter`: grid import/export from the primary smart meter's lifetime counters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from solar_pipeline.energy.model import Interval, counter_intervals
from solar_pipeline.sources.fronius.errors import FroniusApiError, FroniusParseError
from solar_pipeline.sources.parsing import LARGEST, in_datetime_range, loads, number, shown

PRODUCED_CHANNEL = "EnergyReal_WAC_Sum_Produced"
ARCHIVE_STEP_S = 300
SOURCE_ARCHIVE = "fronius_archive"
SOURCE_ETOTAL = "fronius_etotal"
SOURCE_METER = "fronius_meter"
# Meter_Location_Current of a primary meter at the feed-in point (the documentation's example
# for location 0 has Sum_Consumed = import and Sum_Produced = export, with negative P = export).
GRID_LOCATION = 0
GEN24_DEVICE_TYPE = 1


@dataclass(frozen=True)
class Envelope:
    endpoint: str
    timestamp: datetime | None
    code: int
    reason: str
    data: Any


@dataclass(frozen=True)
class PowerFlow:
    """Site node of GetPowerFlowRealtimeData; None where the device reports null."""

    at: datetime
    e_day_wh: float | None
    e_year_wh: float | None
    e_total_wh: float | None
    p_pv_w: float | None
    p_grid_w: float | None  # + import, - feed-in
    p_load_w: float | None  # - consumption (generator sign convention)
    mode: str | None
    device_types: tuple[int, ...] = ()  # DT of each inverter node; 1 = GEN24/Tauro/Verto

    @property
    def is_gen24(self) -> bool:
        """GEN24/Tauro/Verto (documented DT 1): no E_Day/E_Year, no archive."""
        return GEN24_DEVICE_TYPE in self.device_types


@dataclass(frozen=True)
class InverterSystem:
    """GetInverterRealtimeData Scope=System, summed over the inverters that report each value."""

    at: datetime
    pac_w: float | None
    day_wh: float | None
    year_wh: float | None
    total_wh: float | None


@dataclass(frozen=True)
class MeterReading:
    device_id: str
    at: datetime
    location: int | None
    power_w: float | None  # + drawn from the grid at location 0
    consumed_wh: float | None  # lifetime; at location 0: imported from the grid
    produced_wh: float | None  # lifetime; at location 0: fed into the grid


# --- envelope ---------------------------------------------------------------------------------


def parse_envelope(body: str | None, endpoint: str, tz: str) -> Envelope:
    """The common response header and the Data node; raises FroniusParseError if not there."""
    if body is None:
        raise FroniusParseError(f"Fronius {endpoint}: no body")
    try:
        doc = loads(body)
    except ValueError as exc:
        raise FroniusParseError(f"Fronius {endpoint}: not JSON ({exc})") from None
    head = _obj(doc, "Head", endpoint)
    status = _obj(head, "Status", endpoint, "Head.")
    code = status.get("Code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise FroniusParseError(f"Fronius {endpoint}: Head.Status.Code missing or not an integer")
    raw_ts = head.get("Timestamp")
    timestamp = parse_time(raw_ts, tz, endpoint) if raw_ts else None
    body_node = doc.get("Body")
    data = body_node.get("Data") if isinstance(body_node, dict) else None
    return Envelope(endpoint, timestamp, code, str(status.get("Reason") or ""), data)


def checked_data(body: str | None, endpoint: str, tz: str) -> Envelope:
    """parse_envelope, then FroniusApiError unless Status.Code is 0 (OKAY) and Data is there."""
    env = parse_envelope(body, endpoint, tz)
    if env.code != 0:
        raise FroniusApiError(endpoint, env.code, env.reason)
    if not isinstance(env.data, dict):
        raise FroniusParseError(f"Fronius {endpoint}: Body.Data missing or not an object")
    return env


def parse_time(raw: Any, tz: str, what: str = "timestamp") -> datetime:
    """RFC 3339 (offset or Z) as is; a naive date/time is site-local per the documentation."""
    if not isinstance(raw, str):
        raise FroniusParseError(f"Fronius {what}: time {shown(raw)} is not a string")
    try:
        at = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise FroniusParseError(f"Fronius {what}: time {shown(raw)} is not RFC 3339") from None
    if not in_datetime_range(at):
        raise FroniusParseError(f"Fronius {what}: time {shown(raw)} is not a time of any day")
    if at.tzinfo is None:
        # fold=0: an ambiguous wall time (the repeated autumn hour) is taken as the first one.
        at = at.replace(tzinfo=ZoneInfo(tz))
    return at


# --- realtime ---------------------------------------------------------------------------------


def parse_power_flow(body: str | None, tz: str) -> PowerFlow:
    endpoint = "GetPowerFlowRealtimeData.fcgi"
    env = checked_data(body, endpoint, tz)
    site = _obj(env.data, "Site", endpoint, "Body.Data.")
    if env.timestamp is None:
        raise FroniusParseError(f"Fronius {endpoint}: Head.Timestamp missing")
    mode = site.get("Mode")
    inverters = env.data.get("Inverters")
    types = []
    for device_id, node in sorted((inverters if isinstance(inverters, dict) else {}).items()):
        dt = (
            _num(node, "DT", endpoint, f"Inverters.{device_id}.")
            if isinstance(node, dict)
            else None
        )
        if dt is not None:
            types.append(int(dt))
    return PowerFlow(
        at=env.timestamp,
        e_day_wh=_num(site, "E_Day", endpoint),
        e_year_wh=_num(site, "E_Year", endpoint),
        e_total_wh=_num(site, "E_Total", endpoint),
        p_pv_w=_num(site, "P_PV", endpoint),
        p_grid_w=_num(site, "P_Grid", endpoint),
        p_load_w=_num(site, "P_Load", endpoint),
        mode=mode if isinstance(mode, str) else None,
        device_types=tuple(types),
    )


def parse_inverter_system(body: str | None, tz: str) -> InverterSystem:
    endpoint = "GetInverterRealtimeData.cgi"
    env = checked_data(body, endpoint, tz)
    if env.timestamp is None:
        raise FroniusParseError(f"Fronius {endpoint}: Head.Timestamp missing")

    def total(name: str) -> float | None:
        node = env.data.get(name)
        if node is None:
            return None  # documented: values a device cannot provide are omitted
        values = node.get("Values") if isinstance(node, dict) else None
        if not isinstance(values, dict):
            raise FroniusParseError(f"Fronius {endpoint}: {name}.Values missing")
        nums = [_num(values, k, endpoint, f"{name}.Values.") for k in values]
        present = [v for v in nums if v is not None]
        return _finite(sum(present), f"Fronius {endpoint}: {name} total") if present else None

    return InverterSystem(
        env.timestamp,
        total("PAC"),
        total("DAY_ENERGY"),
        total("YEAR_ENERGY"),
        total("TOTAL_ENERGY"),
    )


def parse_meter_system(body: str | None, tz: str) -> list[MeterReading]:
    """One reading per meter; TimeStamp is epoch seconds (the meter's last refresh)."""
    endpoint = "GetMeterRealtimeData.cgi"
    env = checked_data(body, endpoint, tz)
    out = []
    for device_id, node in sorted(env.data.items()):
        if not isinstance(node, dict):
            raise FroniusParseError(f"Fronius {endpoint}: meter {device_id} is not an object")
        stamp = _num(node, "TimeStamp", endpoint, f"meter {device_id} ")
        if stamp is not None:
            at = _epoch(stamp, f"Fronius {endpoint}: meter {device_id} TimeStamp")
        elif env.timestamp is not None:
            at = env.timestamp
        else:
            raise FroniusParseError(f"Fronius {endpoint}: meter {device_id} has no time")
        loc = _num(node, "Meter_Location_Current", endpoint, f"meter {device_id} ")
        out.append(
            MeterReading(
                device_id=str(device_id),
                at=at,
                location=int(loc) if loc is not None else None,
                power_w=_num(node, "PowerReal_P_Sum", endpoint, f"meter {device_id} "),
                consumed_wh=_num(node, "EnergyReal_WAC_Sum_Consumed", endpoint, ""),
                produced_wh=_num(node, "EnergyReal_WAC_Sum_Produced", endpoint, ""),
            )
        )
    return out


def etotal_intervals(flows: Iterable[PowerFlow], max_power_w: float) -> list[Interval]:
    """Production between consecutive polls from the lifetime E_Total (null readings skipped).

    GEN24/Tauro refresh E_Total only every 5 minutes, so polls closer than that give zero-energy
    intervals followed by a larger one; the sum is exact either way. Drops and spikes are
    flagged by the shared counter rules, never turned into negative or giant energy.
    """
    readings = [(f.at, f.e_total_wh) for f in flows if f.e_total_wh is not None]
    return counter_intervals(
        readings, source=SOURCE_ETOTAL, figure="produced_wh", max_power_w=max_power_w
    )


def meter_intervals(
    readings: Iterable[MeterReading], max_power_w: float, location: int = GRID_LOCATION
) -> list[Interval]:
    """Grid import and export between polls of the feed-in point meter's lifetime counters."""
    at_grid = [r for r in readings if r.location == location]
    imported = counter_intervals(
        [(r.at, r.consumed_wh) for r in at_grid if r.consumed_wh is not None],
        source=SOURCE_METER,
        figure="imported_wh",
        max_power_w=max_power_w,
    )
    exported = counter_intervals(
        [(r.at, r.produced_wh) for r in at_grid if r.produced_wh is not None],
        source=SOURCE_METER,
        figure="exported_wh",
        max_power_w=max_power_w,
    )
    return imported + exported


def e_day_totals(flows: Iterable[PowerFlow], tz: str) -> dict[date, float]:
    """The Datamanager's own E_Day: its last reading of each local day (None readings skipped).

    A cross-check only: "energy today" counters reset late or at the wrong midnight on many
    devices (field notes §4.3/§4.6), so the interval sums stay the primary figure.
    """
    zone = ZoneInfo(tz)
    last: dict[date, tuple[datetime, float]] = {}
    for f in flows:
        if f.e_day_wh is None:
            continue
        day = f.at.astimezone(zone).date()
        if day not in last or f.at >= last[day][0]:
            last[day] = (f.at, f.e_day_wh)
    return {day: wh for day, (_, wh) in sorted(last.items())}


# --- archive ----------------------------------------------------------------------------------


def archive_intervals(
    body: str | None, tz: str, channel: str = PRODUCED_CHANNEL, step_s: int = ARCHIVE_STEP_S
) -> list[Interval]:
    """Detail series -> one Interval per logged 5-minute value, summed over devices.

    Values are keyed by seconds after the node's Start (documented); a key is taken as the
    interval's start (inferred: a full day has keys 0 .. 86100). Seconds are real elapsed
    time, so Start + key lands on the right instant on 23- and 25-hour days.
    """
    totals: dict[datetime, float] = {}
    for start, values in _archive_nodes(body, tz, channel):
        for key, value in values:
            at = start + timedelta(seconds=key)
            totals[at] = totals.get(at, 0.0) + value
    return [
        Interval(at, at + timedelta(seconds=step_s), SOURCE_ARCHIVE, produced_wh=wh)
        for at, wh in sorted(totals.items())
    ]


def archive_daily(body: str | None, tz: str, channel: str = PRODUCED_CHANNEL) -> dict[date, float]:
    """DailySum series -> {local date: Wh}, summed over devices."""
    zone = ZoneInfo(tz)
    out: dict[date, float] = {}
    for start, values in _archive_nodes(body, tz, channel):
        for key, value in values:
            # Half a day of slack: whether a logger counts a day as 86,400 s or as the real
            # 23/25 hours, Start + key + 12 h falls inside the right local day (DST quirks are
            # admitted in Fronius' own documentation).
            day = (start + timedelta(seconds=key + 43200)).astimezone(zone).date()
            out[day] = out.get(day, 0.0) + value
    return dict(sorted(out.items()))


def _archive_nodes(
    body: str | None, tz: str, channel: str
) -> list[tuple[datetime, list[tuple[int, float]]]]:
    endpoint = "GetArchiveData.cgi"
    env = checked_data(body, endpoint, tz)
    nodes = []
    for name, node in sorted(env.data.items()):
        if not isinstance(node, dict):
            raise FroniusParseError(f"Fronius {endpoint}: node {name} is not an object")
        # In UTC: adding seconds to a datetime with a ZoneInfo adds wall-clock time, an hour
        # off after a DST switch; the keys are real elapsed seconds.
        start = parse_time(node.get("Start"), tz, f"{endpoint} {name}.Start").astimezone(UTC)
        series = _obj(node, "Data", endpoint, f"{name}.").get(channel)
        if series is None:
            continue  # a device without this channel (e.g. a meter node) has nothing to add
        values = series.get("Values") if isinstance(series, dict) else None
        if not isinstance(values, dict):
            raise FroniusParseError(f"Fronius {endpoint}: {name}.{channel}.Values missing")
        pairs = []
        for key in values:
            try:
                seconds = int(str(key).strip())
            except ValueError:
                raise FroniusParseError(
                    f"Fronius {endpoint}: {name}.{channel} key {shown(key)} is not seconds"
                ) from None
            num = _num(values, key, endpoint, f"{name}.{channel}.")
            if num is not None:
                # Start + key (and the half day archive_daily adds) must be a real time.
                for shift in (0, 43200):
                    try:
                        later = start + timedelta(seconds=seconds + shift)
                    except OverflowError:
                        later = datetime.max
                    if not in_datetime_range(later):
                        raise FroniusParseError(
                            f"Fronius {endpoint}: {name}.{channel} key {shown(key)} "
                            "is beyond any day"
                        )
                pairs.append((seconds, num))
        nodes.append((start, sorted(pairs)))
    return nodes


# --- helpers ----------------------------------------------------------------------------------


def _obj(parent: Any, key: str, endpoint: str, path: str = "") -> dict:
    node = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(node, dict):
        raise FroniusParseError(f"Fronius {endpoint}: {path}{key} missing or not an object")
    return node


def _num(node: dict, key: str, endpoint: str, path: str = "") -> float | None:
    """A number, or None for null/absent; FroniusParseError for anything else (text, bool,
    NaN, Infinity, 1e400, a number beyond any meter)."""
    return number(node.get(key), f"Fronius {endpoint}: {path}{key}", FroniusParseError)


def _finite(total: float, what: str) -> float:
    """A sum of readings, which must stay a number."""
    if not math.isfinite(total) or abs(total) > LARGEST:
        raise FroniusParseError(f"{what} = {shown(total)} is too large to be a reading")
    return total


def _epoch(stamp: float, what: str) -> datetime:
    try:
        at = datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        raise FroniusParseError(f"{what} = {shown(stamp)} is not a time") from None
    if not in_datetime_range(at):
        raise FroniusParseError(f"{what} = {shown(stamp)} is not a time of any day")
    return at


__all__ = [
    "Envelope",
    "InverterSystem",
    "MeterReading",
    "PowerFlow",
    "archive_daily",
    "archive_intervals",
    "checked_data",
    "e_day_totals",
    "etotal_intervals",
    "meter_intervals",
    "parse_envelope",
    "parse_inverter_system",
    "parse_meter_system",
    "parse_power_flow",
    "parse_time",
]
