"""Property tests of the parsers the assets call: whatever a gateway or the cloud sends, the
parser either returns rows or raises the one error type the asset counts as malformed; it never
lets another exception escape and fail the run.

How the project flags malformed input: the Enphase parsers raise `ParseError` (the typed assets
count it in `malformed_answers` and fail their `*_well_formed` check); the Envoy parsers raise
`EnvoyParseError`, which `readings_from_poll` (the ingest's entry point) turns into
`PollReadings.malformed[kind]`. The fleet vendors' parsers raise their own `ParseError`
(Fronius: `FroniusParseError`, or `FroniusApiError` for an error envelope), which the vendor
typed asset stores in the raw row's `parse_error`.

Beyond what a generator of valid JSON makes, every parser also gets the answers a broken
device or proxy sends and Python's json accepts: NaN, Infinity, -Infinity, numbers beyond a
double (1e400) or any column (10**400, 2**63), nesting far deeper than the decoder's
recursion limit, and the wrong type (text, list, object, boolean, null) wherever a value sits.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from solar_pipeline.assets import solaredge as solaredge_asset
from solar_pipeline.assets.envoy import ingest as envoy_ingest
from solar_pipeline.assets.vendor import _parse_site as parse_site
from solar_pipeline.energy.model import local_day_bounds
from solar_pipeline.sites import Site
from solar_pipeline.sources.enphase import parse as cloud
from solar_pipeline.sources.enphase.errors import ParseError
from solar_pipeline.sources.envoy import parse as gateway
from solar_pipeline.sources.envoy import poll
from solar_pipeline.sources.envoy.parse import EnvoyParseError
from solar_pipeline.sources.envoy.readings import PollReadings, RawRow, readings_from_poll
from solar_pipeline.sources.fronius import parse as fronius
from solar_pipeline.sources.fronius.errors import FroniusApiError, FroniusParseError
from solar_pipeline.sources.goodwe import errors as goodwe_errors
from solar_pipeline.sources.goodwe import parse as goodwe
from solar_pipeline.sources.sma import errors as sma_errors
from solar_pipeline.sources.sma import parse as sma
from solar_pipeline.sources.solaredge import errors as solaredge_errors
from solar_pipeline.sources.solaredge import parse as solaredge
from solar_pipeline.warehouse.db import ensure_schema
from solar_pipeline.warehouse.vendor_tables import raw_rows
from solar_pipeline.warehouse.watermarks import get_watermark
from solar_pipeline_tests.envoy.fixtures import EXPECTED, FIXTURES
from solar_pipeline_tests.faults import poison

FRONIUS_ERRORS = (FroniusParseError, FroniusApiError)

# Enough examples to reach the nested fields, few enough to keep the file at a few seconds;
# no example database: a run leaves nothing in the checkout, and every run starts afresh.
PROPERTY = settings(
    max_examples=int(os.environ.get("SOLAR_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

FETCHED = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)

# JSON as json.loads returns it: integers of any size (Python's json has no limit), finite
# floats (NaN/Infinity are not JSON), text, and nesting.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def shaped(required: dict[str, Any], **optional: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the documented keys (any JSON, or a plausible value) so the generator gets
    past the first shape check and into the per-field conversions."""
    return st.fixed_dictionaries(
        {k: v | json_values for k, v in required.items()},
        optional={k: v | json_values for k, v in optional.items()},
    )


epochs = st.integers(min_value=-(2**62), max_value=2**62)

# --- Enphase cloud --------------------------------------------------------------------------

summary_bodies = shaped(
    {"system_id": st.integers()},
    last_report_at=epochs,
    last_interval_end_at=epochs,
    summary_date=st.dates().map(str),
    current_power=st.integers(),
)
events_bodies = shaped(
    {"system_id": st.integers()},
    events=st.lists(
        shaped(
            {"event_type_id": st.integers(), "status": st.text(), "event_start_time": epochs},
            event_end_time=epochs,
        ),
        max_size=3,
    ),
)
alarms_bodies = shaped(
    {"system_id": st.integers()},
    alarms=st.lists(
        shaped(
            {"id": st.text(), "event_type_id": st.integers(), "alarm_start_time": epochs},
            severity=st.integers(),
            alarm_end_time=epochs,
        ),
        max_size=3,
    ),
)
interval_bodies = shaped(
    {
        "intervals": st.lists(
            shaped(
                {"end_at": epochs, "enwh": st.integers(), "wh_del": st.integers()},
                devices_reporting=st.integers(),
            ),
            max_size=3,
        )
    }
)
lifetime_bodies = shaped(
    {"start_date": st.dates().map(str)},
    production=st.lists(st.integers(), max_size=3),
    micro_production=st.lists(st.integers(), max_size=3),
    meter_production=st.lists(st.integers(), max_size=3),
)
devices_bodies = shaped(
    {"devices": shaped({}, meters=st.lists(json_values, max_size=3), micros=json_values)}
)

CLOUD_PARSERS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "summary": (cloud.parse_summary, summary_bodies),
    "events": (cloud.parse_events, events_bodies),
    "alarms": (cloud.parse_alarms, alarms_bodies),
    "energy_lifetime": (cloud.parse_energy_lifetime, lifetime_bodies),
    "devices": (cloud.parse_devices, devices_bodies),
    **{
        endpoint: (functools.partial(cloud.parse_intervals, endpoint), interval_bodies)
        for endpoint in cloud.INTERVAL_ENERGY_FIELD
    },
}


@pytest.mark.parametrize("name", sorted(CLOUD_PARSERS))
@PROPERTY
@given(data=st.data())
def test_cloud_parsers_return_rows_or_raise_parse_error(name: str, data: st.DataObject) -> None:
    parser, bodies = CLOUD_PARSERS[name]
    body = data.draw(bodies | json_values, label="body")
    # The assets parse json.loads(raw text): go through the text so only JSON reaches the parser.
    body = json.loads(json.dumps(body))
    try:
        result = parser(body)
    except ParseError:
        return  # flagged: counted as a malformed answer
    assert isinstance(result, list | dict)


# What hypothesis found (fixed in parse.py), kept as fixed examples.
@pytest.mark.parametrize(
    ("parser", "body"),
    [
        (cloud.parse_devices, {"devices": {"meters": 1}}),  # was a TypeError
        (cloud.parse_devices, {"devices": {"micros": 1}}),  # was a TypeError
        (cloud.parse_summary, {"system_id": 0, "last_report_at": 67768036191676800}),  # OSError
    ],
)
def test_found_cloud_bodies_are_flagged(parser: Any, body: Any) -> None:
    with pytest.raises(ParseError):
        parser(body)


def test_found_gateway_time_out_of_range_is_flagged_not_raised() -> None:
    # An inverter report in year 0 made readings_from_poll raise ValueError. No clock shows
    # such a time: the answer is malformed (flagged, kept raw), not a record to skip quietly.
    bodies = {
        poll.INVERTERS_V1: json.dumps(
            [
                {"serialNumber": "1", "lastReportDate": -62135596801},
                {"serialNumber": "2", "lastReportDate": 1749556800},
            ]
        )
    }
    out = readings_from_poll("serial", "D8.2.4345", _rows(bodies))
    assert out.inverters == []
    assert out.malformed["inverters"] == 1
    [(kind, why)] = out.problems.values()
    assert kind == "inverters" and "lastReportDate" in why


# --- Envoy gateway --------------------------------------------------------------------------

production_bodies = shaped(
    {
        "production": st.lists(
            shaped(
                {"type": st.sampled_from(["inverters", "eim"])},
                activeCount=st.integers(),
                readingTime=epochs,
                wNow=st.floats(allow_nan=False, allow_infinity=False),
                whLifetime=st.integers(),
                measurementType=st.sampled_from(gateway.MEASUREMENTS),
                lines=st.lists(json_values, max_size=3),
            ),
            max_size=3,
        )
    },
    consumption=st.lists(json_values, max_size=2),
)
inverter_lists = st.lists(
    shaped({"serialNumber": st.text(min_size=1), "lastReportDate": epochs}), max_size=3
)
device_data_bodies = st.dictionaries(
    st.text(max_size=6),
    shaped(
        {"devName": st.just("pcu"), "active": st.just(True), "sn": st.text(min_size=1)},
        channels=st.lists(
            shaped({"lastReading": shaped({"endDate": epochs}, joulesProduced=st.integers())}),
            max_size=2,
        ),
    ),
    max_size=3,
).map(lambda d: {**d, "deviceCount": len(d)})
meter_lists = st.lists(shaped({"eid": st.integers()}, measurementType=st.text()), max_size=3)
reading_lists = st.lists(
    shaped({"eid": st.integers()}, timestamp=epochs, channels=st.lists(json_values, max_size=3)),
    max_size=3,
)

ENVOY_BODIES = {
    poll.PRODUCTION: production_bodies,
    poll.PRODUCTION_V1: shaped({"wattsNow": st.integers(), "wattHoursLifetime": st.integers()}),
    poll.INVERTERS_V1: inverter_lists,
    poll.DEVICE_DATA: device_data_bodies,
    poll.METERS: meter_lists,
    poll.METER_READINGS: reading_lists,
}
text_bodies = st.text(max_size=40) | st.sampled_from(["", "Error: 401", "<html>Oops</html>"])


def _rows(bodies: Mapping[str, str | None]) -> list[RawRow]:
    return [
        RawRow(n, endpoint, 200, body, FETCHED) for n, (endpoint, body) in enumerate(bodies.items())
    ]


def _assert_typed(out: PollReadings) -> None:
    """Rows the ingest can write: the timestamps it converts are real datetimes."""
    for p in out.production + out.meters:
        assert isinstance(p["reading_at"], datetime)
    for p in out.inverters:
        assert isinstance(p["last_report_at"], datetime)


@PROPERTY
@given(data=st.data(), firmware=st.sampled_from(["D8.2.4345", "D7.3.130", "R4.10.35", "R3.9.36"]))
def test_envoy_poll_readings_never_raise(data: st.DataObject, firmware: str) -> None:
    bodies: dict[str, str | None] = {}
    for endpoint, strategy in ENVOY_BODIES.items():
        kind = data.draw(st.sampled_from(["shaped", "json", "text", "absent"]), label=endpoint)
        if kind == "shaped":
            bodies[endpoint] = json.dumps(data.draw(strategy, label=endpoint))
        elif kind == "json":
            bodies[endpoint] = json.dumps(data.draw(json_values, label=endpoint))
        elif kind == "text":
            bodies[endpoint] = data.draw(text_bodies, label=endpoint)
    out = readings_from_poll("122446001637", firmware, _rows(bodies))
    _assert_typed(out)
    assert set(out.malformed) <= {"production", "inverters", "meters"}


ENVOY_PARSERS = {
    poll.PRODUCTION: gateway.parse_production_json,
    poll.PRODUCTION_V1: gateway.parse_api_v1_production,
    poll.INVERTERS_V1: gateway.parse_inverters_v1,
    poll.DEVICE_DATA: gateway.parse_device_data,
}


@pytest.mark.parametrize("endpoint", sorted(ENVOY_PARSERS))
@PROPERTY
@given(data=st.data())
def test_envoy_parsers_return_rows_or_raise_envoy_parse_error(
    endpoint: str, data: st.DataObject
) -> None:
    body = data.draw(
        ENVOY_BODIES[endpoint].map(json.dumps) | json_values.map(json.dumps) | text_bodies
    )
    with contextlib.suppress(EnvoyParseError):
        ENVOY_PARSERS[endpoint](body)


@PROPERTY
@given(meters=meter_lists | json_values, readings=reading_lists | json_values)
def test_meter_join_returns_rows_or_raises_envoy_parse_error(meters: Any, readings: Any) -> None:
    with contextlib.suppress(EnvoyParseError):
        gateway.parse_meters(json.dumps(meters), json.dumps(readings))


# --- real captures, cut short ---------------------------------------------------------------

# Endpoint -> the capture file holding its body (production: the details=1 capture if present).
CAPTURES = {
    poll.PRODUCTION: ("production.json_details_1", "production.json"),
    poll.PRODUCTION_V1: ("api_v1_production",),
    poll.INVERTERS_V1: ("api_v1_production_inverters",),
    poll.DEVICE_DATA: ("ivp_pdm_device_data",),
    poll.METERS: ("ivp_meters",),
    poll.METER_READINGS: ("ivp_meters_readings",),
}
KIND = {
    poll.PRODUCTION: "production",
    poll.PRODUCTION_V1: "production",
    poll.INVERTERS_V1: "inverters",
    poll.DEVICE_DATA: "inverters",
    poll.METERS: "meters",
    poll.METER_READINGS: "meters",
}


def _capture(folder: Path, endpoint: str) -> str | None:
    """The captured body when it was a 200 JSON answer (the cases a truncation can break)."""
    for name in CAPTURES[endpoint]:
        path = folder / name
        log = folder / f"{name}_log.json"
        if not path.is_file() or (log.is_file() and json.loads(log.read_text())["code"] != 200):
            continue
        text = path.read_text()
        try:
            json.loads(text)
        except ValueError:
            return None
        return text
    return None


TRUNCATABLE = [
    (e.folder, e.firmware, endpoint, body)
    for e in EXPECTED
    if e.supported
    for endpoint in CAPTURES
    if (body := _capture(FIXTURES / e.folder, endpoint)) is not None
]


def test_the_fixture_set_gives_every_endpoint_to_truncate() -> None:
    assert {endpoint for _, _, endpoint, _ in TRUNCATABLE} == set(CAPTURES)


@PROPERTY
@given(case=st.sampled_from(TRUNCATABLE), cut=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_truncated_real_answers_are_flagged_not_stored(
    case: tuple[str, str, str, str], cut: float
) -> None:
    folder, firmware, endpoint, body = case
    truncated = body[: int(len(body.rstrip()) * cut)]
    try:
        json.loads(truncated)
        assume(False)  # a prefix that is still JSON (never, for an object or array) proves nothing
    except ValueError:
        pass
    bodies: dict[str, str | None] = {endpoint: truncated}
    if endpoint in (poll.METERS, poll.METER_READINGS):
        # The join needs both halves; the other one is the intact capture.
        other = poll.METER_READINGS if endpoint == poll.METERS else poll.METERS
        intact = _capture(FIXTURES / folder, other)
        assume(intact is not None)
        bodies[other] = intact
    out = readings_from_poll("serial", firmware, _rows(bodies))
    kind = KIND[endpoint]
    # Nothing is invented from a torn answer, and the poll says so (except production.json on
    # firmware < 4, which answers it with a page: expected there, so not flagged).
    assert getattr(out, kind) == []
    expected_flags = (
        0 if endpoint == poll.PRODUCTION and gateway.firmware_version(firmware) < (4,) else 1
    )
    assert out.malformed[kind] == expected_flags, (folder, endpoint, len(truncated))


# --- poison: NaN, Infinity, 1e400, 10**400, 100,000 levels, wrong types, edge times ------------
# One well-formed answer per parser (the documented shape, as the simulators send it), with one
# to three values anywhere in it replaced by poison (poison.py). Whatever lands where, the
# parser returns a result with no NaN or infinity in it, or raises its own error type.

SOLAREDGE_DETAILS = {
    "energyDetails": {
        "timeUnit": "QUARTER_OF_AN_HOUR",
        "unit": "Wh",
        "meters": [
            {
                "type": "Production",
                "values": [
                    {"date": "2026-06-01 12:00:00", "value": 120.0},
                    {"date": "2026-06-01 12:15:00", "value": 130.0},
                    {"date": "2026-06-01 12:30:00"},
                ],
            },
            {"type": "FeedIn", "values": [{"date": "2026-06-01 12:00:00", "value": 20.0}]},
            {"type": "SelfConsumption", "values": [{"date": "2026-06-01 12:00:00", "value": 100}]},
        ],
    }
}
SOLAREDGE_ENERGY_DAYS = {
    "energy": {
        "timeUnit": "DAY",
        "unit": "Wh",
        "measuredBy": "INVERTER",
        "values": [
            {"date": "2026-06-01 00:00:00", "value": 25000.0},
            {"date": "2026-06-02 00:00:00", "value": None},
        ],
    }
}
SOLAREDGE_ENERGY_QUARTERS = {
    "energy": {
        "timeUnit": "QUARTER_OF_AN_HOUR",
        "unit": "kWh",
        "values": [{"date": "2026-06-01 12:00:00", "value": 0.12}],
    }
}
SOLAREDGE_OVERVIEW = {
    "overview": {
        "lastUpdateTime": "2026-06-01 12:00:00",
        "lifeTimeData": {"energy": 12_000_000.0},
        "lastYearData": {"energy": 1_000_000.0},
        "lastMonthData": {"energy": 100_000.0},
        "lastDayData": {"energy": 10_000.0},
        "currentPower": {"power": 1200.0},
        "measuredBy": "INVERTER",
    }
}
SMA_PLANT = {"plantId": "7190", "name": "Home", "timezone": "Europe/Amsterdam"}
SMA_DAY = {
    "plant": SMA_PLANT,
    "setType": "EnergyAndPowerPv",
    "resolution": "FiveMinutes",
    "set": [
        {"time": "2026-06-01T12:05:00", "pvGeneration": 41.0},
        {"time": "2026-06-01T12:10:00", "pvGeneration": None},
        {"time": "2026-06-01T12:15:00+02:00", "pvGeneration": 40},
    ],
}
SMA_MONTH = {
    "plant": SMA_PLANT,
    "setType": "EnergyAndPowerPv",
    "resolution": "OneDay",
    "set": [
        {"time": "2026-06-01T00:00:00", "pvGeneration": 25000.0},
        {"time": "2026-06-02T00:00:00", "pvGeneration": 21000},
    ],
}
GOODWE_DAILY = {
    "hasError": False,
    "code": 0,
    "msg": "success",
    "data": [{"d": "06/01/2026", "p": 25.5}, {"d": "2026-06-02", "p": "20.1"}],
}
GOODWE_PAC = {
    "hasError": False,
    "code": 0,
    "msg": "success",
    "data": {
        "pacs": [
            {"date": "06/01/2026 12:00:00", "pac": 1200},
            {"date": "06/01/2026 12:05:00", "pac": "1300"},
            {"date": "06/01/2026 12:10:00", "pac": 1250.5},
        ]
    },
}


def _fronius(data: Any) -> dict[str, Any]:
    return {
        "Body": {"Data": data},
        "Head": {
            "Status": {"Code": 0, "Reason": "", "UserMessage": ""},
            "Timestamp": "2026-06-01T12:00:03+02:00",
        },
    }


FRONIUS_POWER_FLOW = _fronius(
    {
        "Site": {
            "E_Day": 1000.0,
            "E_Year": 100_000.0,
            "E_Total": 10_000_000.0,
            "P_PV": 1200.0,
            "P_Grid": -300.0,
            "P_Load": -900.0,
            "Mode": "meter",
        },
        "Inverters": {"1": {"DT": 1, "P": 1200}},
    }
)
FRONIUS_INVERTERS = _fronius(
    {
        "PAC": {"Unit": "W", "Values": {"1": 1200, "2": 800}},
        "DAY_ENERGY": {"Unit": "Wh", "Values": {"1": 1000}},
        "YEAR_ENERGY": {"Unit": "Wh", "Values": {"1": 100_000.0}},
        "TOTAL_ENERGY": {"Unit": "Wh", "Values": {"1": 10_000_000.0}},
    }
)
FRONIUS_METER = _fronius(
    {
        "0": {
            "TimeStamp": 1780308000,
            "Meter_Location_Current": 0,
            "PowerReal_P_Sum": 300.0,
            "EnergyReal_WAC_Sum_Consumed": 1_000_000.0,
            "EnergyReal_WAC_Sum_Produced": 2_000_000,
        }
    }
)
FRONIUS_ARCHIVE = _fronius(
    {
        "inverter/1": {
            "Start": "2026-06-01T00:00:00+02:00",
            "End": "2026-06-01T23:59:59+02:00",
            "Data": {
                "EnergyReal_WAC_Sum_Produced": {"Unit": "Wh", "Values": {"0": 0.0, "300": 12.5}}
            },
        }
    }
)

ZONE = "Europe/Amsterdam"
VENDOR_PARSERS: dict[str, tuple[Any, Any, tuple[type[Exception], ...]]] = {
    "solaredge energyDetails": (
        lambda b: solaredge.parse_energy_details(b, ZONE),
        SOLAREDGE_DETAILS,
        (solaredge_errors.ParseError,),
    ),
    "solaredge energy days": (
        lambda b: solaredge.parse_site_energy(b, ZONE),
        SOLAREDGE_ENERGY_DAYS,
        (solaredge_errors.ParseError,),
    ),
    "solaredge energy quarters": (
        lambda b: solaredge.parse_site_energy(b, ZONE),
        SOLAREDGE_ENERGY_QUARTERS,
        (solaredge_errors.ParseError,),
    ),
    "solaredge overview": (
        lambda b: solaredge.parse_overview(b, ZONE),
        SOLAREDGE_OVERVIEW,
        (solaredge_errors.ParseError,),
    ),
    "sma day": (lambda b: sma.parse_day(b, ZONE, 5000.0), SMA_DAY, (sma_errors.ParseError,)),
    "sma month": (lambda b: sma.parse_month(b, ZONE), SMA_MONTH, (sma_errors.ParseError,)),
    "goodwe daily": (
        lambda b: goodwe.parse_daily_energy(b, ZONE),
        GOODWE_DAILY,
        (goodwe_errors.ParseError,),
    ),
    "goodwe pac": (
        lambda b: goodwe.parse_day_power(b, ZONE, date(2026, 6, 1)),
        GOODWE_PAC,
        (goodwe_errors.ParseError,),
    ),
    **{
        f"fronius {name}": (lambda b, f=fn: f(b, ZONE), sample, FRONIUS_ERRORS)
        for name, fn, sample in [
            ("power flow", fronius.parse_power_flow, FRONIUS_POWER_FLOW),
            ("inverters", fronius.parse_inverter_system, FRONIUS_INVERTERS),
            ("meter", fronius.parse_meter_system, FRONIUS_METER),
            ("archive intervals", fronius.archive_intervals, FRONIUS_ARCHIVE),
            ("archive daily", fronius.archive_daily, FRONIUS_ARCHIVE),
            # The raw envelope: Data is whatever the device sent; callers read code and time.
            (
                "envelope",
                lambda b, tz: (lambda e: (e.code, e.timestamp))(fronius.parse_envelope(b, "x", tz)),
                FRONIUS_POWER_FLOW,
            ),
        ]
    },
}


@pytest.mark.parametrize("name", sorted(VENDOR_PARSERS))
@PROPERTY
@given(data=st.data())
def test_vendor_parsers_flag_poisoned_answers(name: str, data: st.DataObject) -> None:
    parser, sample, errors = VENDOR_PARSERS[name]
    text = poison.dumps(data.draw(poison.poisoned(sample), label="answer"))
    try:
        result = parser(text)
    except errors:
        return  # flagged: the typed asset stores the message in parse_error
    assert poison.finite_everywhere(result), result


@pytest.mark.parametrize("name", sorted(VENDOR_PARSERS))
def test_vendor_parsers_flag_deep_nesting(name: str) -> None:
    parser, _, errors = VENDOR_PARSERS[name]
    for deep in (poison.DEEP_ARRAY, poison.DEEP_OBJECT):
        with pytest.raises(errors, match="nest"):
            parser(deep)


CLOUD_SAMPLES: dict[str, Any] = {
    "summary": {
        "system_id": 4021157,
        "current_power": 1200,
        "energy_lifetime": 1_000_000,
        "energy_today": 10_000,
        "last_interval_end_at": 1749556800,
        "last_report_at": 1749556861,
        "modules": 20,
        "size_w": 8000,
        "source": "microinverters",
        "status": "normal",
        "summary_date": "2025-06-10",
    },
    "events": {
        "system_id": 4021157,
        "events": [
            {
                "event_type_id": 28,
                "status": "Closed",
                "serial_number": "122446001637",
                "event_start_time": 1749556800,
                "event_end_time": 1749560400,
            }
        ],
    },
    "alarms": {
        "system_id": 4021157,
        "alarms": [
            {
                "id": "1.2",
                "severity": 3,
                "event_type_id": 28,
                "cleared": False,
                "alarm_start_time": 1749556800,
                "alarm_end_time": None,
            }
        ],
    },
    "energy_lifetime": {
        "system_id": 4021157,
        "start_date": "2025-06-01",
        "production": [100, 200],
        "micro_production": [100, 200],
        "meter_production": [101, 199],
    },
    "devices": {
        "system_id": 4021157,
        "devices": {
            "micros": [{"serial_number": "1"}],
            "meters": [{"name": "production", "config_type": "production", "state": "enabled"}],
        },
    },
    **{
        endpoint: {
            "system_id": 4021157,
            "granularity": "day",
            "intervals": [
                {"end_at": 1749556800, "devices_reporting": 20, "powr": 1200, field: 100},
                {"end_at": 1749557100, "devices_reporting": 20, "powr": 1100, field: 92},
            ],
        }
        for endpoint, field in cloud.INTERVAL_ENERGY_FIELD.items()
    },
}
# What a row may hold: the column types of the enphase.* tables, never a list, object or NaN.
PLAIN = (type(None), bool, int, float, str, datetime, date)


@pytest.mark.parametrize("name", sorted(CLOUD_PARSERS))
@PROPERTY
@given(data=st.data())
def test_cloud_parsers_flag_poisoned_answers(name: str, data: st.DataObject) -> None:
    parser, _ = CLOUD_PARSERS[name]
    # The assets hand the parsers what json.loads made of the text: 1e400 is inf by then.
    body = poison.as_loaded(data.draw(poison.poisoned(CLOUD_SAMPLES[name]), label="answer"))
    try:
        result = parser(body)
    except ParseError:
        return
    assert poison.finite_everywhere(result), result
    rows: list[Any] = result if isinstance(result, list) else [result]
    for row in rows:
        assert all(isinstance(v, PLAIN) for v in row.values()), row


@PROPERTY
@given(data=st.data())
def test_envoy_parsers_flag_poisoned_real_answers(data: st.DataObject) -> None:
    folder, firmware, endpoint, body = data.draw(st.sampled_from(TRUNCATABLE), label="capture")
    text = poison.dumps(data.draw(poison.poisoned(json.loads(body)), label="answer"))
    bodies: dict[str, str] = {endpoint: text}
    if endpoint in (poll.METERS, poll.METER_READINGS):
        other = poll.METER_READINGS if endpoint == poll.METERS else poll.METERS
        intact = _capture(FIXTURES / folder, other)
        assume(intact is not None)
        assert intact is not None
        bodies[other] = intact
    # The parser alone: rows or EnvoyParseError.
    try:
        if endpoint in (poll.METERS, poll.METER_READINGS):
            rows: Any = gateway.parse_meters(bodies[poll.METERS], bodies[poll.METER_READINGS])
        else:
            rows = ENVOY_PARSERS.get(endpoint, gateway.parse_production_json)(text)
        assert poison.finite_everywhere(rows), rows
    except EnvoyParseError:
        pass
    # What the ingest calls: never raises, and what it keeps is typed.
    out = readings_from_poll("serial", firmware, _rows(bodies))
    _assert_typed(out)
    assert poison.finite_everywhere([out.production, out.inverters, out.meters])


@pytest.mark.parametrize("endpoint", [*sorted(ENVOY_PARSERS), poll.METERS])
def test_envoy_parsers_flag_deep_nesting(endpoint: str) -> None:
    for deep in (poison.DEEP_ARRAY, poison.DEEP_OBJECT):
        with pytest.raises(EnvoyParseError, match="nest"):
            if endpoint == poll.METERS:
                gateway.parse_meters(deep, "[]")
            else:
                ENVOY_PARSERS[endpoint](deep)
        bodies = {endpoint: deep}
        if endpoint == poll.METERS:
            bodies[poll.METER_READINGS] = "[]"
        out = readings_from_poll("serial", "D8.2.4345", _rows(bodies))
        assert sum(out.malformed.values()) == 1


def test_envoy_info_xml_with_deep_nesting_is_flagged() -> None:
    deep = "<envoy_info><device>" + "<x>" * 100_000 + "</x>" * 100_000 + "</device></envoy_info>"
    with contextlib.suppress(EnvoyParseError):
        gateway.parse_info(deep)


# --- the gateway ingest: one bad answer never stops it --------------------------------------


def _raw_table(conn: duckdb.DuckDBPyConnection, polls: list[dict[str, str]]) -> None:
    for n, bodies in enumerate(polls):
        for endpoint, body in bodies.items():
            conn.execute(
                """
                INSERT INTO raw.envoy_responses (fetched_at, envoy_serial, endpoint, http_status,
                    body, firmware, poll_id)
                VALUES (?, 'serial', ?, 200, ?, 'D8.2.4345', ?)
                """,
                [FETCHED, endpoint, body, f"poll-{n}"],
            )


GOOD_POLL = {
    endpoint: body
    for e in EXPECTED
    if e.folder == "7.3.466_with_cts_3phase"
    for endpoint in CAPTURES
    if (body := _capture(FIXTURES / e.folder, endpoint)) is not None
}


def test_the_good_poll_has_every_kind_of_reading() -> None:
    assert {poll.PRODUCTION, poll.METERS, poll.METER_READINGS} <= set(GOOD_POLL)


@PROPERTY
@given(data=st.data())
def test_ingest_flags_each_poisoned_answer_and_parses_the_rest(data: st.DataObject) -> None:
    endpoint = data.draw(st.sampled_from(sorted(GOOD_POLL)), label="endpoint")
    bad = dict(GOOD_POLL)
    bad[endpoint] = poison.dumps(data.draw(poison.poisoned(json.loads(bad[endpoint]))))
    conn = duckdb.connect(":memory:")
    try:
        ensure_schema(conn)
        # A bad poll between two good ones: the ingest reads all three and passes all three.
        _raw_table(conn, [GOOD_POLL, bad, GOOD_POLL])
        stats = envoy_ingest.ingest(conn)
        [(top,)] = conn.execute("SELECT max(id) FROM raw.envoy_responses").fetchall()
        assert get_watermark(conn, envoy_ingest.CONSUMER) == top
        flagged = conn.execute(
            "SELECT id FROM raw.envoy_responses WHERE parse_error IS NOT NULL"
        ).fetchall()
        assert sum(stats.malformed.values()) == len(flagged)
        # Every flagged answer is one of the bad poll's, and nothing was read from it.
        bad_ids = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM raw.envoy_responses WHERE poll_id = 'poll-1' AND endpoint = ?",
                [endpoint],
            ).fetchall()
        }
        assert {r[0] for r in flagged} <= bad_ids
        for table in envoy_ingest.TABLES.values():
            used = {r[0] for r in conn.execute(f"SELECT DISTINCT raw_id FROM {table}").fetchall()}
            assert not used & {r[0] for r in flagged}, table
        # The good polls' readings are all there.
        assert stats.written["production"] > 0
        assert stats.written["meters"] > 0
    finally:
        conn.close()


# --- the fleet vendors' typed asset: flags the bad answer, reads the rest ---------------------


@PROPERTY
@given(data=st.data())
def test_vendor_typed_asset_flags_each_poisoned_answer_and_clears_stale_flags(
    data: st.DataObject,
) -> None:
    bad = poison.dumps(data.draw(poison.poisoned(SOLAREDGE_DETAILS), label="answer"))
    good = json.dumps(SOLAREDGE_DETAILS)
    site = Site("cottage", "solaredge", ZONE, ids={"site_id": "1"})
    conn = duckdb.connect(":memory:")
    try:
        ensure_schema(conn)
        for body in (good, bad, good):
            conn.execute(
                """
                INSERT INTO raw.solaredge_responses (fetched_at, site_id, endpoint, query, status,
                    body, covers_first, covers_last, parse_error)
                VALUES (?, 'cottage', 'energyDetails', '{}', 200, ?, '2026-06-01', '2026-06-01',
                    'an older parser could not read this')
                """,
                [FETCHED, body],
            )
        days = [date(2026, 6, 1)]
        start, end = local_day_bounds(days[0], ZONE)
        rows = raw_rows(conn, "solaredge", "cottage", days[0], days[0], start, end)
        result = parse_site(conn, solaredge_asset.SOURCE, site, rows, days, start, end)
        flags = dict(conn.execute("SELECT id, parse_error FROM raw.solaredge_responses").fetchall())
        # The good answers are read, and a flag an earlier parse left on them is gone.
        assert flags[1] is None and flags[3] is None
        assert result["problems"] == (flags[2] is not None)
        assert result["rows"] > 0
    finally:
        conn.close()
