"""Property tests of the parsers the assets call: whatever a gateway or the cloud sends, the
parser either returns rows or raises the one error type the asset counts as malformed; it never
lets another exception escape and fail the run.

How the project flags malformed input: the Enphase parsers raise `ParseError` (the typed assets
count it in `malformed_answers` and fail their `*_well_formed` check); the Envoy parsers raise
`EnvoyParseError`, which `readings_from_poll` (the ingest's entry point) turns into
`PollReadings.malformed[kind]`.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from solar_pipeline.sources.enphase import parse as cloud
from solar_pipeline.sources.enphase.errors import ParseError
from solar_pipeline.sources.envoy import parse as gateway
from solar_pipeline.sources.envoy import poll
from solar_pipeline.sources.envoy.parse import EnvoyParseError
from solar_pipeline.sources.envoy.readings import PollReadings, RawRow, readings_from_poll
from solar_pipeline_tests.envoy.fixtures import EXPECTED, FIXTURES

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

CLOUD_PARSERS = {
    "summary": (cloud.parse_summary, summary_bodies),
    "events": (cloud.parse_events, events_bodies),
    "alarms": (cloud.parse_alarms, alarms_bodies),
    "energy_lifetime": (cloud.parse_energy_lifetime, lifetime_bodies),
    "devices": (cloud.parse_devices, devices_bodies),
    **{
        endpoint: (lambda body, e=endpoint: cloud.parse_intervals(e, body), interval_bodies)
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


def test_found_gateway_time_out_of_range_is_skipped_not_raised() -> None:
    # An inverter report in year 0 made readings_from_poll raise ValueError.
    bodies = {
        poll.INVERTERS_V1: json.dumps(
            [
                {"serialNumber": "1", "lastReportDate": -62135596801},
                {"serialNumber": "2", "lastReportDate": 1749556800},
            ]
        )
    }
    out = readings_from_poll("serial", "D8.2.4345", _rows(bodies))
    assert [p["serial_number"] for p in out.inverters] == ["2"]


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


def _rows(bodies: dict[str, str | None]) -> list[RawRow]:
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
    bodies = {endpoint: truncated}
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
