"""One poll's raw answers -> typed rows, choosing between the firmware's alternative sources.

Pure: the caller reads raw rows and writes the result. The rules:
- production: /production.json?details=1, or /api/v1/production when production.json did not
  parse (R3.9 answers it with an HTML page, which is expected there and not flagged);
- inverters: /ivp/pdm/device_data when it lists every device, else the v1 inverter list;
- meters: /ivp/meters joined with /ivp/meters/readings of the same poll.
Any other 200 answer whose body does not parse counts as malformed, even when a fallback
source filled in: a changed body is worth a look. Whatever goes wrong reading one answer (the
parser's EnvoyParseError, or any other exception a body nobody foresaw sets off) marks that
answer in `problems` and the poll goes on: one answer can never stop the ingest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from solar_pipeline.sources.envoy import poll
from solar_pipeline.sources.envoy.parse import (
    EnvoyParseError,
    firmware_version,
    join_meters,
    parse_api_v1_production,
    parse_device_data,
    parse_inverters_v1,
    parse_meter_list,
    parse_meter_readings,
    parse_production_json,
)
from solar_pipeline.sources.parsing import reason

# What parse_error keeps of a message: enough to see the field and the value.
PROBLEM_CHARS = 500


class RawRow(NamedTuple):
    id: int
    endpoint: str
    status: int | None
    body: str | None
    fetched_at: datetime


@dataclass
class PollReadings:
    production: list[dict] = field(default_factory=list)
    inverters: list[dict] = field(default_factory=list)
    meters: list[dict] = field(default_factory=list)
    malformed: Counter = field(default_factory=Counter)
    error_answers: int = 0
    # raw id -> (kind, why the answer could not be read): stored in its row's parse_error.
    problems: dict[int, tuple[str, str]] = field(default_factory=dict)

    def flag(self, kind: str, row: RawRow, exc: Exception) -> None:
        """Count a malformed answer and say why."""
        self.malformed[kind] += 1
        why = reason(exc, EnvoyParseError)
        self.problems[row.id] = (kind, f"{row.endpoint}: {why}"[:PROBLEM_CHARS])


def _ts(epoch: float | None, fallback: datetime) -> datetime:
    return datetime.fromtimestamp(epoch, UTC) if epoch else fallback


def _last_ok(rows: list[RawRow], endpoint: str) -> RawRow | None:
    """The last 200 answer of an endpoint in the poll (a 401 retried after re-auth comes first)."""
    ok = [r for r in rows if r.endpoint == endpoint and r.status == 200 and r.body is not None]
    return ok[-1] if ok else None


def _body(row: RawRow) -> str:
    """The body of a row `_last_ok` chose: it has one."""
    assert row.body is not None
    return row.body


# Firmware below 4 has no production.json and answers it with an HTML page.
PRODUCTION_JSON_MIN_VERSION = (4,)


def _production(serial: str, firmware: str, rows: list[RawRow], out: PollReadings) -> None:
    for endpoint, parser in (
        (poll.PRODUCTION, parse_production_json),
        (poll.PRODUCTION_V1, parse_api_v1_production),
    ):
        row = _last_ok(rows, endpoint)
        if row is None:
            continue
        try:
            out.production = [
                {
                    **p,
                    "reading_at": _ts(p["reading_at"], row.fetched_at),
                    "fetched_at": row.fetched_at,
                    "envoy_serial": serial,
                    "raw_id": row.id,
                }
                for p in parser(_body(row))
            ]
        except EnvoyParseError as exc:
            if endpoint != poll.PRODUCTION or (
                firmware_version(firmware)[:1] >= PRODUCTION_JSON_MIN_VERSION
            ):
                out.flag("production", row, exc)
            continue
        except Exception as exc:  # a malformed answer is flagged, never fatal
            out.flag("production", row, exc)
            continue
        return


def _inverter_rows(row: RawRow, serial: str, source: str, parsed: list[dict]) -> list[dict]:
    return [
        {
            **p,
            "last_report_at": datetime.fromtimestamp(p["last_report_at"], UTC),
            "source": source,
            "raw_id": row.id,
            "envoy_serial": serial,
        }
        for p in parsed
    ]


def _inverters(serial: str, rows: list[RawRow], out: PollReadings) -> None:
    device_data = _last_ok(rows, poll.DEVICE_DATA)
    if device_data is not None:
        try:
            parsed, truncated = parse_device_data(_body(device_data))
            if not truncated:
                out.inverters = _inverter_rows(device_data, serial, "device_data", parsed)
        except Exception as exc:  # a malformed answer is flagged, never fatal
            out.flag("inverters", device_data, exc)
    v1 = _last_ok(rows, poll.INVERTERS_V1)
    if not out.inverters and v1 is not None:
        try:
            out.inverters = _inverter_rows(v1, serial, "api_v1", parse_inverters_v1(_body(v1)))
        except Exception as exc:  # a malformed answer is flagged, never fatal
            out.flag("inverters", v1, exc)


def _meters(serial: str, rows: list[RawRow], out: PollReadings) -> None:
    meters, readings = _last_ok(rows, poll.METERS), _last_ok(rows, poll.METER_READINGS)
    if meters is None or readings is None:
        return
    # Each answer on its own, so the flag lands on the one that is malformed.
    parsed: list[Any] = []
    for row, parser in ((meters, parse_meter_list), (readings, parse_meter_readings)):
        try:
            parsed.append(parser(_body(row)))
        except Exception as exc:  # a malformed answer is flagged, never fatal
            out.flag("meters", row, exc)
    if len(parsed) < 2:
        return
    try:
        out.meters = [
            {
                **m,
                "reading_at": _ts(m["reading_at"], readings.fetched_at),
                "envoy_serial": serial,
                "raw_id": readings.id,
            }
            for m in join_meters(*parsed)
        ]
    except Exception as exc:  # a malformed answer is flagged, never fatal
        out.flag("meters", readings, exc)


def readings_from_poll(serial: str, firmware: str | None, rows: list[RawRow]) -> PollReadings:
    out = PollReadings(error_answers=sum(1 for r in rows if r.status != 200))
    _production(serial, firmware or "", rows, out)
    _inverters(serial, rows, out)
    _meters(serial, rows, out)
    return out
