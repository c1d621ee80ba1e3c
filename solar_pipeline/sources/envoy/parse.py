"""Local Envoy / IQ Gateway bodies -> rows. Pure functions: no HTTP, no SQL, no Dagster.

The gateway's schemas drift between firmware versions (fields appear, vanish, switch between int
and float), so every parser is tolerant per record: a record that lacks its key fields is
skipped and the rest of the batch is kept. A body whose top level is not the documented shape
(an HTML page, `Error: 401`, `{"error": "404 - Not Found"}`, empty text) raises
EnvoyParseError, so the caller keeps the raw body and flags it instead of storing a reading.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

# production.json / meter types that this module turns into rows; anything else (e.g. the
# documented but never-seen `rgms`/`pmus`) is skipped rather than guessed at.
MEASUREMENTS = ("production", "total-consumption", "net-consumption")
# Fields that are all zero on an unused phase (a zero-filled channel of /ivp/meters/readings).
_METER_ZERO_FIELDS = ("activePower", "actEnergyDlvd", "actEnergyRcvd", "voltage", "current")


class EnvoyParseError(ValueError):
    """A body that is not the JSON/XML shape we know (caller keeps it raw and flags it)."""


@dataclass(frozen=True)
class EnvoyInfo:
    serial: str
    firmware: str  # e.g. "D8.2.4345", as in <software>
    version: tuple[int, ...]  # (8, 2, 4345): the first letter dropped, non-digits ignored
    part_number: str | None
    imeter: bool | None
    web_tokens: bool


# --- small helpers ------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    """int/float -> float; anything else (None, bool, text) -> None."""
    # bool is an int subclass, but `true` is never a measurement.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    number = _num(value)
    return None if number is None else int(number)


# The epoch seconds a datetime can hold (years 1 to 9999): the readers turn these into
# timestamps, so a value outside is as unusable as a missing one.
_EPOCH_RANGE = (-62135596800, 253402300799)


def _time(value: Any) -> int | None:
    """Epoch seconds -> int, None when it is not a number a timestamp can hold."""
    number = _int(value)
    if number is None or not _EPOCH_RANGE[0] <= number <= _EPOCH_RANGE[1]:
        return None
    return number


def _epoch(value: Any) -> int | None:
    """Epoch seconds -> int; 0 means "no reading yet" (inverters at night), so it is None."""
    number = _time(value)
    if number is None or number <= 0:
        return None
    return number


def _div(value: Any, by: float) -> float | None:
    number = _num(value)
    return None if number is None else number / by


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _load_json(text: str, what: str) -> Any:
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str) or not text.strip():
        raise EnvoyParseError(f"{what}: empty body")
    try:
        body = json.loads(text)
    except ValueError:
        # HTML pages (R3.9 and older), `Error: 401`, truncated JSON: show where it went wrong.
        raise EnvoyParseError(f"{what}: not JSON ({text.strip()[:40]!r})") from None
    if isinstance(body, dict) and "error" in body:
        # `{ "error" : "404 - Not Found" }` (ivp) and `{"status":401,"error":"",...}` (R3.9).
        raise EnvoyParseError(f"{what}: error body {body.get('error')!r}")
    return body


def _json_object(text: str, what: str) -> dict[str, Any]:
    body = _load_json(text, what)
    if not isinstance(body, dict):
        raise EnvoyParseError(f"{what}: expected a JSON object, got {type(body).__name__}")
    return body


def _json_array(text: str, what: str) -> list[Any]:
    body = _load_json(text, what)
    if not isinstance(body, list):
        raise EnvoyParseError(f"{what}: expected a JSON array, got {type(body).__name__}")
    return body


# --- /info --------------------------------------------------------------------------------


def firmware_version(firmware: str) -> tuple[int, ...]:
    """Firmware text -> comparable tuple: D8.2.4345 -> (8, 2, 4345), R3.9.36 -> (3, 9, 36).

    As pyenphase does, the leading letter (D/R/M) is dropped; stray non-digits are ignored.
    """
    text = firmware.strip()
    if text[:1].isalpha():
        text = text[1:]
    parts = (re.sub(r"\D", "", part) for part in text.split("."))
    return tuple(int(part) for part in parts if part)


def _xml_bool(text: str | None) -> bool | None:
    if text is None:
        return None
    return text.strip().lower() == "true"


def parse_info(xml_text: str) -> EnvoyInfo:
    """/info XML (no auth on any firmware) -> EnvoyInfo; EnvoyParseError without a serial."""
    if isinstance(xml_text, bytes | bytearray):
        xml_text = xml_text.decode("utf-8", errors="replace")
    if not isinstance(xml_text, str) or not xml_text.strip():
        raise EnvoyParseError("info: empty body")
    try:
        # The XML declaration must be the very first thing, so leading whitespace goes.
        root = ET.fromstring(xml_text.strip())
    except ET.ParseError as exc:
        raise EnvoyParseError(f"info: not XML ({exc})") from None
    device = root if root.tag == "device" else root.find("device")
    if device is None:
        raise EnvoyParseError("info: no <device> element")
    serial = (device.findtext("sn") or "").strip()
    if not serial:
        raise EnvoyParseError("info: no <sn> serial")
    firmware = (device.findtext("software") or "").strip()
    part_number = (device.findtext("pn") or "").strip() or None
    return EnvoyInfo(
        serial=serial,
        firmware=firmware,
        version=firmware_version(firmware),
        part_number=part_number,
        # <imeter> is missing on old firmware: unknown, not False.
        imeter=_xml_bool(device.findtext("imeter")),
        # <web-tokens> sits beside <device>, and only on firmware 7+.
        web_tokens=bool(_xml_bool(root.findtext("web-tokens"))),
    )


# --- /production.json (?details=1) and /production ----------------------------------------


def _production_row(
    entry: dict[str, Any],
    *,
    measurement: str,
    source: str,
    phase: str | None,
    reading_at: int | None,
    active_count: int | None,
) -> dict[str, Any] | None:
    w_now = _num(entry.get("wNow"))
    wh_lifetime = _num(entry.get("whLifetime"))
    if w_now is None or wh_lifetime is None:
        return None  # no key fields: not a reading
    return {
        "reading_at": reading_at,
        "measurement": measurement,
        "source": source,
        "phase": phase,
        "w_now": w_now,
        "wh_lifetime": wh_lifetime,
        "wh_today": _num(entry.get("whToday")),
        "active_count": active_count,
    }


def _line_rows(entry: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    lines = entry.get("lines")
    if not isinstance(lines, list):
        return []
    rows = []
    for index, line in enumerate(lines, start=1):
        if not isinstance(line, dict):
            continue
        # Recent firmware pads unused phases with zeros; a real phase has power or a counter.
        if not _num(line.get("wNow")) and not _num(line.get("whLifetime")):
            continue
        # Phase names follow the position in lines[], even when an earlier line was skipped.
        row = _production_row(line, **{**base, "phase": f"L{index}"})
        if row is not None:
            rows.append(row)
    return rows


def _eim_rows(entry: dict[str, Any], measurement: str | None) -> list[dict[str, Any]]:
    active_count = _int(entry.get("activeCount"))
    # activeCount 0 = CT absent or disabled: the numbers beside it are garbage, not zero.
    if not active_count or measurement not in MEASUREMENTS:
        return []
    base = {
        "measurement": measurement,
        "source": "eim",
        "phase": None,
        "reading_at": _epoch(entry.get("readingTime")),
        "active_count": active_count,
    }
    row = _production_row(entry, **base)
    if row is None:
        return []
    return [row, *_line_rows(entry, base)]


def _inverters_row(entry: dict[str, Any]) -> dict[str, Any] | None:
    # Kept at night too (readingTime 0 -> reading_at None): whLifetime is still the counter.
    return _production_row(
        entry,
        measurement="production",
        source="inverters",
        phase=None,
        reading_at=_epoch(entry.get("readingTime")),
        active_count=_int(entry.get("activeCount")),
    )


def parse_production_json(text: str) -> list[dict[str, Any]]:
    """/production.json?details=1, /production.json and /production (7+) -> production rows.

    production[] inverters -> source "inverters"; eim entries with activeCount > 0 -> source
    "eim" plus one row per non-zero phase line. storage[] is not a production reading.
    """
    body = _json_object(text, "production.json")
    production = body.get("production")
    consumption = body.get("consumption", [])
    if not isinstance(production, list):
        raise EnvoyParseError("production.json: no production[] list")
    if not isinstance(consumption, list):
        raise EnvoyParseError("production.json: consumption is not a list")

    rows: list[dict[str, Any]] = []
    for entry in production:
        if not isinstance(entry, dict):
            continue
        if entry.get("type") == "inverters":
            row = _inverters_row(entry)
            rows.extend([row] if row is not None else [])
        elif entry.get("type") == "eim":
            # M4.2.33 has no measurementType on the production eim; it can only be production.
            rows.extend(_eim_rows(entry, entry.get("measurementType") or "production"))
    for entry in consumption:
        # Select by measurementType, never by position: the order is not a documented promise.
        if isinstance(entry, dict) and entry.get("type") == "eim":
            rows.extend(_eim_rows(entry, entry.get("measurementType")))
    return rows


# --- /api/v1/production -------------------------------------------------------------------


def parse_api_v1_production(text: str) -> list[dict[str, Any]]:
    """/api/v1/production -> one inverter-sum production row, or [] when it holds no data."""
    body = _json_object(text, "api/v1/production")
    w_now = _num(body.get("wattsNow"))
    wh_lifetime = _num(body.get("wattHoursLifetime"))
    if w_now is None or wh_lifetime is None:
        raise EnvoyParseError("api/v1/production: no wattsNow/wattHoursLifetime")
    counters = ("wattHoursToday", "wattHoursSevenDays", "wattHoursLifetime")
    if all(not _num(body.get(key)) for key in counters):
        # Metered gateways without CTs answer all zeros: no data, not a zero reading.
        return []
    return [
        {
            "reading_at": None,  # the body carries no timestamp
            "measurement": "production",
            "source": "inverters",
            "phase": None,
            "w_now": w_now,
            "wh_lifetime": wh_lifetime,
            "wh_today": _num(body.get("wattHoursToday")),
            "active_count": None,
        }
    ]


# --- per-inverter data --------------------------------------------------------------------


def parse_inverters_v1(text: str) -> list[dict[str, Any]]:
    """/api/v1/production/inverters -> one row per device (ACB devType 11 included)."""
    rows = []
    for item in _json_array(text, "api/v1/production/inverters"):
        if not isinstance(item, dict):
            continue
        serial = item.get("serialNumber")
        last_report_at = _time(item.get("lastReportDate"))
        if serial in (None, "") or last_report_at is None:
            continue
        rows.append(
            {
                "serial_number": str(serial),
                "last_report_at": last_report_at,
                "watts": _num(item.get("lastReportWatts")),
                "max_watts": _num(item.get("maxReportWatts")),
                "dev_type": _int(item.get("devType")),  # absent on 3.x firmware
            }
        )
    return rows


def _device_row(device: dict[str, Any]) -> dict[str, Any] | None:
    channels = device.get("channels")
    if not isinstance(channels, list) or not channels or not isinstance(channels[0], dict):
        return None
    channel = channels[0]  # microinverters have one channel
    reading = _dict(channel.get("lastReading"))
    watts = _dict(channel.get("watts"))
    serial = device.get("sn")
    last_report_at = _time(reading.get("endDate"))
    if serial in (None, "") or last_report_at is None:
        return None
    return {
        "serial_number": str(serial),
        "last_report_at": last_report_at,
        "watts": _num(watts.get("now")),
        "max_watts": _num(watts.get("max")),
        "dev_type": 1,
        "dc_voltage_v": _div(reading.get("dcVoltageINmV"), 1000),
        "dc_current_a": _div(reading.get("dcCurrentINmA"), 1000),
        "ac_voltage_v": _div(reading.get("acVoltageINmV"), 1000),
        "ac_frequency_hz": _div(reading.get("acFrequencyINmHz"), 1000),
        "temperature_c": _num(reading.get("channelTemp")),
        "energy_wh": _div(reading.get("joulesProduced"), 3600),
        "duration_s": _int(reading.get("duration")),
    }


def parse_device_data(text: str) -> tuple[list[dict[str, Any]], bool]:
    """/ivp/pdm/device_data -> (active pcu rows, truncated).

    The Envoy stops listing devices at deviceDataLimit, so deviceCount >= deviceDataLimit means
    the list may be cut off and the caller should fall back to /api/v1/production/inverters.
    """
    body = _json_object(text, "ivp/pdm/device_data")
    count, limit = _num(body.get("deviceCount")), _num(body.get("deviceDataLimit"))
    if count is None and not any(isinstance(v, dict) and "devName" in v for v in body.values()):
        raise EnvoyParseError("ivp/pdm/device_data: no devices and no deviceCount")
    truncated = count is not None and limit is not None and count >= limit
    rows = []
    for device in body.values():
        # eim/acb/nsrb devices and removed units (active false, modGone true) are not inverters.
        if not isinstance(device, dict) or device.get("devName") != "pcu":
            continue
        if device.get("active") is not True:
            continue
        row = _device_row(device)
        if row is not None:
            rows.append(row)
    return rows, truncated


# --- /ivp/meters + /ivp/meters/readings ---------------------------------------------------


def _meter_values(reading: dict[str, Any]) -> dict[str, Any]:
    return {
        "reading_at": _epoch(reading.get("timestamp")),
        "active_power": _num(reading.get("activePower")),
        "energy_delivered": _num(reading.get("actEnergyDlvd")),
        "energy_received": _num(reading.get("actEnergyRcvd")),
        "apparent_power": _num(reading.get("apparentPower")),
        "reactive_power": _num(reading.get("reactivePower")),
        "voltage": _num(reading.get("voltage")),
        "current": _num(reading.get("current")),
        "frequency": _num(reading.get("freq")),
        "power_factor": _num(reading.get("pwrFactor")),
    }


def _meter_rows(meter: dict[str, Any], reading: dict[str, Any]) -> list[dict[str, Any]]:
    meta = {
        "eid": _int(meter.get("eid")),
        "measurement_type": meter.get("measurementType"),
        "state": meter.get("state"),
        "phase_mode": meter.get("phaseMode"),
    }
    rows = [{**meta, "phase": None, **_meter_values(reading)}]
    channels = reading.get("channels")
    for index, channel in enumerate(channels if isinstance(channels, list) else [], start=1):
        if not isinstance(channel, dict):
            continue
        # Always three channels are sent; unused phases are all zero.
        if all(not _num(channel.get(key)) for key in _METER_ZERO_FIELDS):
            continue
        values = _meter_values(channel)
        if values["reading_at"] is None:
            values["reading_at"] = rows[0]["reading_at"]
        rows.append({**meta, "phase": f"L{index}", **values})
    return rows


def parse_meters(meters_text: str, readings_text: str) -> list[dict[str, Any]]:
    """/ivp/meters + /ivp/meters/readings -> one row per CT and one per active phase.

    Readings are joined to the CT list by eid: 8.3.x adds a reading (eid 1023410688) that is
    in no CT list, and nothing documents that both lists share an order.
    """
    meters = _json_array(meters_text, "ivp/meters")
    readings = _json_array(readings_text, "ivp/meters/readings")
    by_eid: dict[int, dict[str, Any]] = {}
    for reading in readings:
        eid = _int(reading.get("eid")) if isinstance(reading, dict) else None
        if eid is not None:
            by_eid.setdefault(eid, reading)
    rows = []
    for meter in meters:
        eid = _int(meter.get("eid")) if isinstance(meter, dict) else None
        if eid is None or eid not in by_eid:
            continue  # a CT without a reading has nothing to store
        rows.extend(_meter_rows(meter, by_eid[eid]))
    return rows
