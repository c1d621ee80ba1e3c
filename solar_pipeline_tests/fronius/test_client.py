"""The Fronius client against the simulator: recording, errors that say what to fix, limits."""

from __future__ import annotations

import json
from datetime import date

import pytest

from solar_pipeline.simulator.fronius import DISABLED_TEXT, FroniusSimulator
from solar_pipeline.sources.fronius.errors import (
    FroniusApiError,
    FroniusParseError,
    FroniusUnreachable,
    FroniusUnsupported,
)
from solar_pipeline.sources.fronius.parse import archive_daily, parse_power_flow
from solar_pipeline_tests.fronius.conftest import SPEC, TZ, Clock, make_client


def test_every_answer_is_recorded_verbatim_before_parsing(datamanager, records):
    client = make_client(datamanager, records)
    resp = client.inverter_system()
    assert len(records) == 1
    rec = records[0]
    assert rec == resp
    assert (rec.endpoint, rec.query, rec.status, rec.error) == (
        "GetInverterRealtimeData.cgi",
        "Scope=System",
        200,
        None,
    )
    assert rec.content_type.startswith("application/json")
    assert json.loads(rec.body)["Head"]["Status"]["Code"] == 0
    assert rec.elapsed_ms >= 0
    assert datamanager.requests == ["/solar_api/v1/GetInverterRealtimeData.cgi?Scope=System"]


def test_gen24_reports_null_day_and_year_and_utc_time(gen24, clock, records):
    flow = parse_power_flow(make_client(gen24, records).power_flow().body, TZ)
    assert flow.is_gen24
    assert flow.e_day_wh is None and flow.e_year_wh is None
    assert flow.e_total_wh == gen24.e_total_at(clock.now) > 0
    assert flow.at.utcoffset().total_seconds() == 0
    assert flow.at.timestamp() == int(clock.now)


def test_solar_api_switched_off_says_where_to_switch_it_on(clock, records):
    with (
        FroniusSimulator(SPEC, clock=clock, solar_api_enabled=False) as sim,
        pytest.raises(FroniusUnsupported, match="Communication > Solar API"),
    ):
        make_client(sim, records).power_flow()
    assert [(r.status, r.body) for r in records] == [(404, DISABLED_TEXT)]


def test_unreachable_device_names_the_setting_to_check(clock, records):
    with FroniusSimulator(SPEC, clock=clock) as sim:
        client = make_client(sim, records, retries=0, timeout=(0.5, 0.5))
    with pytest.raises(FroniusUnreachable, match="FRONIUS_URL"):
        client.power_flow()
    assert records[-1].status is None and records[-1].error == "ConnectionError"


def test_archive_span_over_the_limit_is_refused_and_the_client_splits_it(datamanager, records):
    too_wide = make_client(datamanager, records, max_archive_days=20)
    with pytest.raises(FroniusApiError, match="16 days") as err:
        too_wide.archive(date(2026, 5, 1), date(2026, 5, 20), "DailySum")
    assert err.value.code == 255

    datamanager.requests.clear()
    answers = make_client(datamanager, records).archive(
        date(2026, 5, 1), date(2026, 5, 20), "DailySum"
    )
    assert len(answers) == len(datamanager.requests) == 2
    days = {d: wh for a in answers for d, wh in archive_daily(a.body, TZ).items()}
    assert sorted(days) == [date(2026, 5, d) for d in range(1, 21)]
    assert all(days[d] == datamanager.truth_wh(d) for d in days)


def test_gen24_has_no_archive_and_the_error_points_to_e_total(gen24, records):
    with pytest.raises(FroniusUnsupported, match="E_Total"):
        make_client(gen24, records).archive(date(2026, 6, 1), date(2026, 6, 1))
    assert records[-1].status == 404


def test_malformed_body_is_recorded_then_refused(datamanager, records):
    broken = '{"Head": {"Status": {"Code": 0'
    datamanager.fail_next(status=200, body=broken, path_contains="PowerFlow")
    with pytest.raises(FroniusParseError, match="not JSON"):
        make_client(datamanager, records).power_flow()
    assert records[-1].body == broken


def test_missing_status_is_a_parse_error_not_a_key_error(datamanager, records):
    datamanager.fail_next(status=200, body='{"Head": {}, "Body": {"Data": {}}}')
    with pytest.raises(FroniusParseError, match=r"Head\.Status"):
        make_client(datamanager, records).power_flow()


def test_server_errors_are_retried_and_every_attempt_recorded(datamanager, records):
    datamanager.fail_next(count=2, status=503, body="busy")
    make_client(datamanager, records).power_flow()
    assert [r.status for r in records] == [503, 503, 200]
    assert records[0].body == "busy"


def test_requests_are_spaced_as_documented(datamanager, records):
    """Archive calls 120 s apart (§2.6) and at most one request a second (FAQ 7)."""
    t = Clock(1000.0)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        t.now += seconds

    client = make_client(
        datamanager,
        records,
        realtime_spacing_s=1.0,
        archive_spacing_s=120.0,
        monotonic=t,
        sleep=sleep,
    )
    client.archive(date(2026, 6, 1), date(2026, 6, 1))
    client.power_flow()
    client.archive(date(2026, 6, 2), date(2026, 6, 2))
    assert slept == [1.0, 119.0]
