"""Enphase v4 JSON bodies -> rows. Pure functions: no HTTP, no SQL.

Every parser raises ParseError when the shape is not what the API documents, so the caller can
count and flag the response while its raw text stays in raw.enphase_responses. That includes a
value of the wrong type (text, a list or object, a boolean where a number belongs), NaN or
Infinity (Python's json reads both, and 1e400 as Infinity) and times no datetime holds: each
row holds only None, bool, int, str, a finite float or a datetime. Whether an int fits its
column (INTEGER, BIGINT) is the caller's check (warehouse/fit.py), against the table itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict

from solar_pipeline.sources.enphase.errors import ParseError
from solar_pipeline.sources.parsing import loads as _loads
from solar_pipeline.sources.parsing import number, shown


def loads(body: str | bytes) -> Any:
    """A stored answer's text -> JSON; ParseError when it is not JSON or nested too deeply."""
    try:
        return _loads(body)
    except (ValueError, TypeError) as exc:
        raise ParseError(f"not JSON: {getattr(exc, 'msg', exc)}") from None


def _int(value: Any, what: str) -> int | None:
    """A JSON number as an int (a float is rounded); None for null; ParseError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    result = number(value, what, ParseError)
    return None if result is None else round(result)


def _required_int(value: Any, what: str) -> int:
    result = _int(value, what)
    if result is None:
        raise ParseError(f"{what} is missing")
    return result


def _text(value: Any, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ParseError(f"{what} = {shown(value)} is not text")
    return value


def _label(value: Any, what: str) -> str:
    """An id or serial: text, or a number spelled as one."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ParseError(f"{what} = {shown(value)} is not an id")
    return str(value)


def _bool(value: Any, what: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ParseError(f"{what} = {shown(value)} is not true or false")
    return value


def ts(value: Any) -> datetime | None:
    """Epoch seconds (UTC) -> aware datetime; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParseError(f"expected epoch seconds, got {shown(value)}")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        # Beyond what a datetime holds (year 1..9999), NaN, Infinity: a malformed answer.
        raise ParseError(f"epoch seconds out of range: {shown(value)}") from None


def _dict(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ParseError(f"{what}: expected a JSON object, got {type(body).__name__}")
    return body


def _list(body: dict[str, Any], key: str, what: str) -> list[Any]:
    value = body.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"{what}: '{key}' is not a list")
    return value


def parse_summary(body: Any) -> dict[str, Any]:
    b = _dict(body, "summary")
    try:
        return {
            "system_id": _required_int(b.get("system_id"), "summary system_id"),
            "status": _text(b.get("status"), "summary status"),
            "current_power_w": _int(b.get("current_power"), "summary current_power"),
            "energy_today_wh": _int(b.get("energy_today"), "summary energy_today"),
            "energy_lifetime_wh": _int(b.get("energy_lifetime"), "summary energy_lifetime"),
            "last_report_at": ts(b.get("last_report_at")),
            "last_interval_end_at": ts(b.get("last_interval_end_at")),
            "summary_date": date.fromisoformat(b["summary_date"])
            if b.get("summary_date")
            else None,
            "source": _text(b.get("source"), "summary source"),
            "size_w": _int(b.get("size_w"), "summary size_w"),
            "modules": _int(b.get("modules"), "summary modules"),
        }
    except (KeyError, ValueError, TypeError) as exc:
        raise ParseError(f"summary: {exc!r}") from None


def parse_events(body: Any) -> list[dict[str, Any]]:
    b = _dict(body, "events")
    rows = []
    for n, e in enumerate(_list(b, "events", "events")):
        what = f"events[{n}]"
        try:
            rows.append(
                {
                    "system_id": _required_int(b.get("system_id"), "events system_id"),
                    "event_type_id": _required_int(e["event_type_id"], f"{what} event_type_id"),
                    # `events` says "Closed"/"Info", `open_events` says "open": one spelling.
                    "status": _label(e["status"], f"{what} status").lower(),
                    "serial_number": _label(e.get("serial_number") or "", f"{what} serial"),
                    "started_at": ts(e["event_start_time"]),
                    "ended_at": ts(e.get("event_end_time")),
                }
            )
        except (KeyError, ValueError, TypeError, OverflowError) as exc:  # int(1e400)
            raise ParseError(f"events: {exc!r}") from None
    return rows


def parse_alarms(body: Any) -> list[dict[str, Any]]:
    b = _dict(body, "alarms")
    rows = []
    for n, a in enumerate(_list(b, "alarms", "alarms")):
        what = f"alarms[{n}]"
        try:
            rows.append(
                {
                    "system_id": _required_int(b.get("system_id"), "alarms system_id"),
                    "alarm_id": _label(a["id"], f"{what} id"),  # ids are strings, sometimes dotted
                    "severity": _int(a.get("severity"), f"{what} severity"),
                    "event_type_id": _required_int(a["event_type_id"], f"{what} event_type_id"),
                    "cleared": bool(_bool(a.get("cleared", False), f"{what} cleared")),
                    "started_at": ts(a["alarm_start_time"]),
                    "ended_at": ts(a.get("alarm_end_time")),
                }
            )
        except (KeyError, ValueError, TypeError, OverflowError) as exc:  # int(1e400)
            raise ParseError(f"alarms: {exc!r}") from None
    return rows


def parse_open_alarms(body: Any) -> list[dict[str, Any]]:
    """`open_alarms` lists every alarm open now, without `cleared` and `alarm_end_time`
    (reference §3.13): each row is an open alarm."""
    return [{**row, "cleared": False, "ended_at": None} for row in parse_alarms(body)]


def open_alarm_events(body: Any) -> set[tuple[int, str, int]]:
    """(event_type_id, serial_number, start) of the events still open inside open alarms.

    An alarm lists the events it covers with their own `end_date` (§3.13), so an event of an
    open alarm whose `end_date` is null is known to be open without asking open_events.
    """
    b = _dict(body, "open_alarms")
    found = set()
    for a in _list(b, "alarms", "open_alarms"):
        try:
            for e in _list(a, "events", "open_alarms events"):
                if e.get("end_date") is None:
                    found.add(
                        (int(a["event_type_id"]), str(e["serial_number"]), int(e["start_date"]))
                    )
        except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise ParseError(f"open_alarms events: {exc!r}") from None
    return found


# Each telemetry endpoint names its energy field differently.
INTERVAL_ENERGY_FIELD = {
    "telemetry/production_micro": "enwh",
    "telemetry/production_meter": "wh_del",
    "telemetry/consumption_meter": "enwh",
}


def parse_intervals(endpoint: str, body: Any) -> list[dict[str, Any]]:
    field = INTERVAL_ENERGY_FIELD[endpoint]
    b = _dict(body, endpoint)
    rows = []
    for n, i in enumerate(_list(b, "intervals", endpoint)):
        what = f"{endpoint} intervals[{n}]"
        try:
            end_at = _required_int(i["end_at"], f"{what} end_at")
            ts(end_at)  # a time a datetime holds, or ParseError
            rows.append(
                {
                    "end_at": end_at,
                    "wh": _int(i[field], f"{what} {field}"),
                    "devices_reporting": _int(
                        i.get("devices_reporting"), f"{what} devices_reporting"
                    ),
                    "powr_w": _int(i.get("powr"), f"{what} powr"),
                }
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ParseError(f"{endpoint} interval: {exc!r}") from None
    return rows


def parse_energy_lifetime(body: Any) -> list[dict[str, Any]]:
    """One row per day from `start_date`; micro/meter series when asked with production=all."""
    b = _dict(body, "energy_lifetime")
    if b.get("start_date") is None:
        return []  # the system never produced
    try:
        start = date.fromisoformat(str(b["start_date"]))
        produced = _list(b, "production", "energy_lifetime")
        micro = _list(b, "micro_production", "energy_lifetime")
        meter = _list(b, "meter_production", "energy_lifetime")
        return [
            {
                "day": start + timedelta(days=n),
                "produced_wh": _required_int(wh, f"energy_lifetime production[{n}]"),
                "micro_wh": _required_int(micro[n], f"energy_lifetime micro_production[{n}]")
                if n < len(micro)
                else None,
                "meter_wh": _required_int(meter[n], f"energy_lifetime meter_production[{n}]")
                if n < len(meter)
                else None,
            }
            for n, wh in enumerate(produced)
        ]
    except (KeyError, ValueError, TypeError, OverflowError) as exc:
        raise ParseError(f"energy_lifetime: {exc!r}") from None


class Devices(TypedDict):
    has_production_meter: bool
    has_consumption_meter: bool
    micros: int


def parse_devices(body: Any) -> Devices:
    """Which meters the system has: decides which telemetry endpoints are worth a request."""
    b = _dict(body, "devices")
    devices = b.get("devices") or {}
    if not isinstance(devices, dict):
        raise ParseError("devices: 'devices' is not an object")
    meters = [m for m in _list(devices, "meters", "devices") if isinstance(m, dict)]

    def active(m: dict[str, Any]) -> bool:
        return m.get("active", True) is not False and m.get("state", "enabled") == "enabled"

    config = [str(m.get("config_type") or m.get("name") or "").lower() for m in meters if active(m)]
    return {
        "has_production_meter": "production" in config,
        "has_consumption_meter": any(c in ("net", "total", "consumption") for c in config),
        "micros": len(_list(devices, "micros", "devices")),
    }
