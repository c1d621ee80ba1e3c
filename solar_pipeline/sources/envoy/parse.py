"""Local Envoy / IQ Gateway bodies -> rows. Pure functions: no HTTP, no SQL, no Dagster.

The gateway's schemas drift between firmware versions (fields appear, vanish, switch between int
and float), so every parser is tolerant per record: a record that lacks its key fields is
skipped and the rest of the batch is kept. A body whose top level is not the documented shape
(an HTML page, `Error: 401`, `{"error": "404 - Not Found"}`, empty text, nesting too deep to
read) raises EnvoyParseError, so the caller keeps the raw body and flags it instead of storing
a reading. So does a field that is there but holds no usable value: text, a list or object, a
boolean, NaN or Infinity (Python's json reads both), a number beyond a double (1e400), or a
time no datetime holds; such an answer comes from a broken gateway or proxy, and nothing is
read from it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from solar_pipeline.sources.parsing import loads, number, shown

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


def _num(record: dict[str, Any], key: str, what: str) -> float | None:
    """record[key] as a float; None when absent or null; EnvoyParseError for anything else
    (text, bool, list, object, NaN, Infinity, a number beyond a double)."""
    return number(record.get(key), f"{what}: {key}", EnvoyParseError)


def _int(record: dict[str, Any], key: str, what: str) -> int | None:
    value = record.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        # Exact, and checked against the database column by the ingest (an eid is 32 bits).
        return value
    result = _num(record, key, what)
    return None if result is None else int(result)


# The epoch seconds a datetime can hold (years 1 to 9999): the readers turn these into
# timestamps, so a value outside cannot be a time the gateway meant.
_EPOCH_RANGE = (-62135596800, 253402300799)


def _time(record: dict[str, Any], key: str, what: str) -> int | None:
    """Epoch seconds -> int; None when absent; EnvoyParseError when no datetime holds it."""
    result = _int(record, key, what)
    if result is not None and not _EPOCH_RANGE[0] <= result <= _EPOCH_RANGE[1]:
        raise EnvoyParseError(f"{what}: {key} = {shown(result)} is not a time (year 1 to 9999)")
    return result


def _epoch(record: dict[str, Any], key: str, what: str) -> int | None:
    """Epoch seconds -> int; 0 means "no reading yet" (inverters at night), so it is None."""
    result = _time(record, key, what)
    if result is None or result <= 0:
        return None
    return result


def _div(record: dict[str, Any], key: str, by: float, what: str) -> float | None:
    result = _num(record, key, what)
    return None if result is None else result / by


def _text(record: dict[str, Any], key: str, what: str) -> str | None:
    """A label (measurementType, state ...): text or absent, nothing else."""
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise EnvoyParseError(f"{what}: {key} = {shown(value)} is not text")
    return value


def _serial(record: dict[str, Any], key: str, what: str) -> str | None:
    """A serial number: text (digits as a JSON number are taken too); None when absent or ""."""
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise EnvoyParseError(f"{what}: {key} = {shown(value)} is not a serial number")
    return str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _load_json(text: str, what: str) -> Any:
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str) or not text.strip():
        raise EnvoyParseError(f"{what}: empty body")
    try:
        body = loads(text)
    except ValueError as exc:
        # HTML pages (R3.9 and older), `Error: 401`, truncated JSON: show where it went wrong.
        why = getattr(exc, "msg", "invalid")
        raise EnvoyParseError(f"{what}: not JSON, {why} ({text.strip()[:40]!r})") from None
    if isinstance(body, dict) and "error" in body:
        # `{ "error" : "404 - Not Found" }` (ivp) and `{"status":401,"error":"",...}` (R3.9).
        raise EnvoyParseError(f"{what}: error body {shown(body.get('error'))}")
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
    what: str,
    *,
    measurement: str,
    source: str,
    phase: str | None,
    reading_at: int | None,
    active_count: int | None,
) -> dict[str, Any] | None:
    w_now = _num(entry, "wNow", what)
    wh_lifetime = _num(entry, "whLifetime", what)
    if w_now is None or wh_lifetime is None:
        return None  # no key fields: not a reading
    return {
        "reading_at": reading_at,
        "measurement": measurement,
        "source": source,
        "phase": phase,
        "w_now": w_now,
        "wh_lifetime": wh_lifetime,
        "wh_today": _num(entry, "whToday", what),
        "active_count": active_count,
    }


def _line_rows(entry: dict[str, Any], base: dict[str, Any], what: str) -> list[dict[str, Any]]:
    lines = entry.get("lines")
    if not isinstance(lines, list):
        return []
    rows = []
    for index, line in enumerate(lines, start=1):
        if not isinstance(line, dict):
            continue
        where = f"{what}.lines[{index - 1}]"
        # Recent firmware pads unused phases with zeros; a real phase has power or a counter.
        if not _num(line, "wNow", where) and not _num(line, "whLifetime", where):
            continue
        # Phase names follow the position in lines[], even when an earlier line was skipped.
        row = _production_row(line, where, **{**base, "phase": f"L{index}"})
        if row is not None:
            rows.append(row)
    return rows


def _eim_rows(entry: dict[str, Any], measurement: Any, what: str) -> list[dict[str, Any]]:
    active_count = _int(entry, "activeCount", what)
    # activeCount 0 = CT absent or disabled: the numbers beside it are garbage, not zero.
    if not active_count or not isinstance(measurement, str) or measurement not in MEASUREMENTS:
        return []
    base: dict[str, Any] = {
        "measurement": measurement,
        "source": "eim",
        "phase": None,
        "reading_at": _epoch(entry, "readingTime", what),
        "active_count": active_count,
    }
    row = _production_row(entry, what, **base)
    if row is None:
        return []
    return [row, *_line_rows(entry, base, what)]


def _inverters_row(entry: dict[str, Any], what: str) -> dict[str, Any] | None:
    # Kept at night too (readingTime 0 -> reading_at None): whLifetime is still the counter.
    return _production_row(
        entry,
        what,
        measurement="production",
        source="inverters",
        phase=None,
        reading_at=_epoch(entry, "readingTime", what),
        active_count=_int(entry, "activeCount", what),
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
    for index, entry in enumerate(production):
        if not isinstance(entry, dict):
            continue
        what = f"production.json production[{index}]"
        if entry.get("type") == "inverters":
            row = _inverters_row(entry, what)
            rows.extend([row] if row is not None else [])
        elif entry.get("type") == "eim":
            # M4.2.33 has no measurementType on the production eim; it can only be production.
            rows.extend(_eim_rows(entry, entry.get("measurementType") or "production", what))
    for index, entry in enumerate(consumption):
        # Select by measurementType, never by position: the order is not a documented promise.
        if isinstance(entry, dict) and entry.get("type") == "eim":
            what = f"production.json consumption[{index}]"
            rows.extend(_eim_rows(entry, entry.get("measurementType"), what))
    return rows


# --- /api/v1/production -------------------------------------------------------------------


def parse_api_v1_production(text: str) -> list[dict[str, Any]]:
    """/api/v1/production -> one inverter-sum production row, or [] when it holds no data."""
    what = "api/v1/production"
    body = _json_object(text, what)
    w_now = _num(body, "wattsNow", what)
    wh_lifetime = _num(body, "wattHoursLifetime", what)
    if w_now is None or wh_lifetime is None:
        raise EnvoyParseError("api/v1/production: no wattsNow/wattHoursLifetime")
    counters = ("wattHoursToday", "wattHoursSevenDays", "wattHoursLifetime")
    if all(not _num(body, key, what) for key in counters):
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
            "wh_today": _num(body, "wattHoursToday", what),
            "active_count": None,
        }
    ]


# --- per-inverter data --------------------------------------------------------------------


def parse_inverters_v1(text: str) -> list[dict[str, Any]]:
    """/api/v1/production/inverters -> one row per device (ACB devType 11 included)."""
    rows = []
    for index, item in enumerate(_json_array(text, "api/v1/production/inverters")):
        if not isinstance(item, dict):
            continue
        what = f"api/v1/production/inverters [{index}]"
        serial = _serial(item, "serialNumber", what)
        last_report_at = _time(item, "lastReportDate", what)
        if serial is None or last_report_at is None:
            continue
        rows.append(
            {
                "serial_number": serial,
                "last_report_at": last_report_at,
                "watts": _num(item, "lastReportWatts", what),
                "max_watts": _num(item, "maxReportWatts", what),
                "dev_type": _int(item, "devType", what),  # absent on 3.x firmware
            }
        )
    return rows


def _device_row(device: dict[str, Any], what: str) -> dict[str, Any] | None:
    channels = device.get("channels")
    if not isinstance(channels, list) or not channels or not isinstance(channels[0], dict):
        return None
    channel = channels[0]  # microinverters have one channel
    reading = _dict(channel.get("lastReading"))
    watts = _dict(channel.get("watts"))
    serial = _serial(device, "sn", what)
    what = f"{what} channels[0]"
    last_report_at = _time(reading, "endDate", f"{what}.lastReading")
    if serial is None or last_report_at is None:
        return None
    last, power = f"{what}.lastReading", f"{what}.watts"
    return {
        "serial_number": serial,
        "last_report_at": last_report_at,
        "watts": _num(watts, "now", power),
        "max_watts": _num(watts, "max", power),
        "dev_type": 1,
        "dc_voltage_v": _div(reading, "dcVoltageINmV", 1000, last),
        "dc_current_a": _div(reading, "dcCurrentINmA", 1000, last),
        "ac_voltage_v": _div(reading, "acVoltageINmV", 1000, last),
        "ac_frequency_hz": _div(reading, "acFrequencyINmHz", 1000, last),
        "temperature_c": _num(reading, "channelTemp", last),
        "energy_wh": _div(reading, "joulesProduced", 3600, last),
        "duration_s": _int(reading, "duration", last),
    }


def parse_device_data(text: str) -> tuple[list[dict[str, Any]], bool]:
    """/ivp/pdm/device_data -> (active pcu rows, truncated).

    The Envoy stops listing devices at deviceDataLimit, so deviceCount >= deviceDataLimit means
    the list may be cut off and the caller should fall back to /api/v1/production/inverters.
    """
    what = "ivp/pdm/device_data"
    body = _json_object(text, what)
    count, limit = _num(body, "deviceCount", what), _num(body, "deviceDataLimit", what)
    if count is None and not any(isinstance(v, dict) and "devName" in v for v in body.values()):
        raise EnvoyParseError("ivp/pdm/device_data: no devices and no deviceCount")
    truncated = count is not None and limit is not None and count >= limit
    rows = []
    for key, device in body.items():
        # eim/acb/nsrb devices and removed units (active false, modGone true) are not inverters.
        if not isinstance(device, dict) or device.get("devName") != "pcu":
            continue
        if device.get("active") is not True:
            continue
        row = _device_row(device, f"{what} {shown(key)}")
        if row is not None:
            rows.append(row)
    return rows, truncated


# --- /ivp/meters + /ivp/meters/readings ---------------------------------------------------


def _meter_values(reading: dict[str, Any], what: str) -> dict[str, Any]:
    return {
        "reading_at": _epoch(reading, "timestamp", what),
        "active_power": _num(reading, "activePower", what),
        "energy_delivered": _num(reading, "actEnergyDlvd", what),
        "energy_received": _num(reading, "actEnergyRcvd", what),
        "apparent_power": _num(reading, "apparentPower", what),
        "reactive_power": _num(reading, "reactivePower", what),
        "voltage": _num(reading, "voltage", what),
        "current": _num(reading, "current", what),
        "frequency": _num(reading, "freq", what),
        "power_factor": _num(reading, "pwrFactor", what),
    }


def parse_meter_list(text: str) -> dict[int, dict[str, Any]]:
    """/ivp/meters -> {eid: what the CT is}; the first entry of an eid counts."""
    what = "ivp/meters"
    meters: dict[int, dict[str, Any]] = {}
    for index, meter in enumerate(_json_array(text, what)):
        if not isinstance(meter, dict):
            continue
        where = f"{what} [{index}]"
        eid = _int(meter, "eid", where)
        if eid is None or eid in meters:
            continue
        meters[eid] = {
            "eid": eid,
            "measurement_type": _text(meter, "measurementType", where),
            "state": _text(meter, "state", where),
            "phase_mode": _text(meter, "phaseMode", where),
        }
    return meters


def parse_meter_readings(text: str) -> dict[int, list[dict[str, Any]]]:
    """/ivp/meters/readings -> {eid: [the whole meter's values, then one per active phase]}."""
    what = "ivp/meters/readings"
    by_eid: dict[int, list[dict[str, Any]]] = {}
    for index, reading in enumerate(_json_array(text, what)):
        if not isinstance(reading, dict):
            continue
        where = f"{what} [{index}]"
        eid = _int(reading, "eid", where)
        if eid is None or eid in by_eid:
            continue
        rows = [{"phase": None, **_meter_values(reading, where)}]
        channels = reading.get("channels")
        for n, channel in enumerate(channels if isinstance(channels, list) else [], start=1):
            if not isinstance(channel, dict):
                continue
            at = f"{where}.channels[{n - 1}]"
            # Always three channels are sent; unused phases are all zero.
            if all(not _num(channel, key, at) for key in _METER_ZERO_FIELDS):
                continue
            values = _meter_values(channel, at)
            if values["reading_at"] is None:
                values["reading_at"] = rows[0]["reading_at"]
            rows.append({"phase": f"L{n}", **values})
        by_eid[eid] = rows
    return by_eid


def join_meters(
    meters: dict[int, dict[str, Any]], readings: dict[int, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """One row per CT and active phase: each CT of the list with the readings of its eid."""
    return [
        {**meta, **row}
        for eid, meta in meters.items()
        if eid in readings  # a CT without a reading has nothing to store
        for row in readings[eid]
    ]


def parse_meters(meters_text: str, readings_text: str) -> list[dict[str, Any]]:
    """/ivp/meters + /ivp/meters/readings -> one row per CT and one per active phase.

    Readings are joined to the CT list by eid: 8.3.x adds a reading (eid 1023410688) that is
    in no CT list, and nothing documents that both lists share an order.
    """
    return join_meters(parse_meter_list(meters_text), parse_meter_readings(readings_text))
