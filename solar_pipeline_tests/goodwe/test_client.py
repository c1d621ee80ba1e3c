"""The SEMS client against the simulator: login, regional base, expiry, limits, raw capture."""

import json
from datetime import date

import pytest
import requests

from solar_pipeline.simulator.goodwe import SemsSimulator
from solar_pipeline.sources.goodwe.client import (
    DAILY_PATH,
    LOGIN_PATH,
    PAC_PATH,
    PAC_PATH_FIELD_NOTES,
    REDACTED,
    day_spans,
)
from solar_pipeline.sources.goodwe.errors import (
    ParseError,
    SemsAuthError,
    SemsRateLimited,
    SemsResponseError,
    SemsTransportError,
)
from solar_pipeline.sources.goodwe.parse import parse_daily_energy, parse_day_power
from solar_pipeline_tests.goodwe.conftest import (
    ACCOUNT_NAME,
    PASSWORD_NAME,
    SITE,
    STATION,
    Clock,
    Recorder,
    make_client,
)
from solar_pipeline_tests.helpers import free_port

DAY = date(2026, 6, 1)


def _assert_no_secret(recorder: Recorder, *secrets: str) -> None:
    for resp in recorder.responses:
        text = repr(resp)
        for secret in secrets:
            assert secret not in text, resp.endpoint


def test_login_moves_to_the_regional_base_and_records_every_answer(gw_sim):
    rec = Recorder()
    client = make_client(gw_sim, rec)
    resp = client.day_power(DAY)
    assert client.api_base == gw_sim.regional_url != gw_sim.api_url
    assert rec.endpoints == ["CrossLogin", "GetPowerStationPacByDayForApp"]
    login, pac = rec.responses
    assert pac is resp and pac.status == 200 and pac.covers == (DAY, DAY)
    assert pac.query == {"id": STATION, "date": "2026-06-01"}
    # The login answer is kept, with the token and the password replaced in place.
    assert login.query == {"account": gw_sim.account, "pwd": REDACTED}
    stored = json.loads(login.body)
    assert stored["data"]["token"] == REDACTED and stored["api"] == gw_sim.regional_url
    assert stored["data"]["uid"] and stored["code"] == 0
    _assert_no_secret(rec, gw_sim.password, *gw_sim.issued_tokens())
    assert len(gw_sim.issued_tokens()) == 1


def test_data_answers_are_recorded_verbatim(gw_sim):
    rec = Recorder()
    client = make_client(gw_sim, rec)
    [resp] = client.days_energy(date(2026, 6, 1), date(2026, 6, 7))
    assert resp.query == {"powerstation_id": STATION, "count": "7", "date": "2026-06-07"}
    # What the server sends for the same request, byte for byte, is what a store keeps.
    token = json.loads(
        requests.post(
            gw_sim.api_url + LOGIN_PATH,
            json={"account": gw_sim.account, "pwd": gw_sim.password},
            timeout=5,
        ).text
    )["data"]
    direct = requests.post(
        gw_sim.regional_url + DAILY_PATH,
        json={"powerstation_id": STATION, "count": 7, "date": "2026-06-07"},
        headers={"Token": json.dumps(token)},
        timeout=5,
    )
    assert resp.body == direct.text
    assert len(parse_daily_energy(resp.body, SITE.timezone).daily_wh) == 7


def test_data_paths_exist_only_on_the_regional_base(gw_sim):
    r = requests.post(gw_sim.api_url + DAILY_PATH, json={}, timeout=5)
    assert r.status_code == 404


def test_an_expired_token_means_one_new_login_and_the_call_again(gw_sim):
    rec = Recorder()
    client = make_client(gw_sim, rec)
    client.day_power(DAY)
    gw_sim.expire_tokens()
    resp = client.day_power(DAY)
    assert resp.status == 200 and json.loads(resp.body)["code"] == 0
    assert rec.endpoints == [
        "CrossLogin",
        "GetPowerStationPacByDayForApp",
        "GetPowerStationPacByDayForApp",  # the 100002 answer, kept like any other
        "CrossLogin",
        "GetPowerStationPacByDayForApp",
    ]
    assert json.loads(rec.responses[2].body)["code"] == 100002
    assert client.logins == 2 and gw_sim.stats.expired == 1 and gw_sim.stats.logins == 2
    _assert_no_secret(rec, gw_sim.password, *gw_sim.issued_tokens())


def test_token_lifetime_runs_on_the_clock():
    clock = Clock()
    with SemsSimulator({STATION: SITE}, token_ttl=3600, clock=clock) as sim:
        rec = Recorder()
        client = make_client(sim, rec, clock=clock)
        client.day_power(DAY)
        clock.now += 3599
        client.day_power(DAY)
        assert client.logins == 1
        clock.now += 2
        client.day_power(DAY)
        assert client.logins == 2 and sim.stats.expired == 1


def test_a_token_refused_right_after_login_is_an_auth_error_not_a_loop():
    with SemsSimulator({STATION: SITE}, token_ttl=0, clock=Clock()) as sim:
        rec = Recorder()
        client = make_client(sim, rec)
        with pytest.raises(SemsAuthError, match="just issued") as err:
            client.day_power(DAY)
        assert ACCOUNT_NAME in str(err.value)
        assert rec.endpoints == ["CrossLogin", "GetPowerStationPacByDayForApp"] * 2
        assert client.logins == 2


def test_wrong_password_names_the_variable_and_never_a_password(gw_sim):
    rec = Recorder()
    wrong = "not-the-Passw0rd-4412"
    client = make_client(gw_sim, rec, password=wrong)
    with pytest.raises(SemsAuthError) as err:
        client.days_energy(DAY, DAY)
    message = str(err.value)
    assert PASSWORD_NAME in message and ACCOUNT_NAME in message
    assert "100005" in message
    assert wrong not in message and gw_sim.password not in message
    [login] = rec.responses
    assert login.endpoint == LOGIN_PATH and login.query["pwd"] == REDACTED
    assert gw_sim.stats.refused_logins == 1
    _assert_no_secret(rec, wrong, gw_sim.password)


def test_a_server_echoing_the_password_does_not_put_it_in_messages_or_records(gw_sim):
    wrong = "echoed-Passw0rd-9981"
    gw_sim.fail_next(
        body=json.dumps({"hasError": True, "code": 100005, "msg": f"bad pwd {wrong}"}),
        path_contains="CrossLogin",
    )
    rec = Recorder()
    with pytest.raises(SemsAuthError) as err:
        make_client(gw_sim, rec, password=wrong).day_power(DAY)
    assert wrong not in str(err.value) and REDACTED in str(err.value)
    _assert_no_secret(rec, wrong)


def test_the_md5_password_form_logs_in_too(gw_sim):
    rec = Recorder()
    make_client(gw_sim, rec, send_md5=True).day_power(DAY)
    assert gw_sim.stats.logins == 1
    _assert_no_secret(rec, gw_sim.password)


def test_throttling_code_is_a_rate_limit_error_after_the_answer_is_kept():
    with SemsSimulator({STATION: SITE}, throttle_after=3, clock=Clock()) as sim:
        rec = Recorder()
        client = make_client(sim, rec)
        client.day_power(DAY)  # login + 1 call
        client.day_power(DAY)
        with pytest.raises(SemsRateLimited, match="GY0429") as err:
            client.day_power(DAY)
        assert err.value.retry_after == 300
        assert ACCOUNT_NAME in str(err.value)
        assert json.loads(rec.responses[-1].body)["code"] == "GY0429"
        assert sim.stats.throttled == 1
        sim.reset_throttle()
        assert client.day_power(DAY).status == 200


def test_throttling_at_login_is_a_rate_limit_error_too():
    with SemsSimulator({STATION: SITE}, throttle_after=0, clock=Clock()) as sim:
        rec = Recorder()
        with pytest.raises(SemsRateLimited):
            make_client(sim, rec).day_power(DAY)
        assert rec.endpoints == ["CrossLogin"]


def test_malformed_body_is_recorded_verbatim_and_the_parser_says_so(gw_sim):
    gw_sim.fail_next(path_contains="GetPowerStationPac")
    rec = Recorder()
    client = make_client(gw_sim, rec)
    resp = client.day_power(DAY)
    assert resp.status == 200 and resp.body.startswith('{"hasError":false')
    assert rec.responses[-1].body == resp.body
    with pytest.raises(ParseError, match="not JSON"):
        parse_day_power(resp.body, SITE.timezone, DAY)
    # The next call is whole again.
    again = client.day_power(DAY)
    assert len(parse_day_power(again.body, SITE.timezone, DAY).samples) == 288


def test_retried_5xx_attempts_are_recorded_too(gw_sim):
    gw_sim.fail_next(status=503, body="<html><h1>Service Unavailable</h1></html>")
    rec = Recorder()
    client = make_client(gw_sim, rec)
    client.day_power(DAY)
    assert [r.status for r in rec.responses] == [503, 200, 200]
    assert rec.responses[0].endpoint == LOGIN_PATH
    assert "Service Unavailable" in rec.responses[0].body
    assert rec.responses[0].query["pwd"] == REDACTED


def test_no_answer_is_a_transport_error_without_the_password():
    rec = Recorder()
    sim = SemsSimulator({STATION: SITE})
    sim.base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(SemsTransportError) as err:
        make_client(sim, rec).day_power(DAY)
    assert sim.password not in str(err.value)
    assert rec.responses[-1].status is None and rec.responses[-1].error
    _assert_no_secret(rec, sim.password)


def test_an_unknown_station_is_a_response_error_with_the_code(gw_sim):
    rec = Recorder()
    with pytest.raises(SemsResponseError) as err:
        make_client(gw_sim, rec, station_id="no-such-station").day_power(DAY)
    assert err.value.code == "100011"


def test_a_login_naming_a_strange_api_base_is_refused(gw_sim):
    answer = {
        "hasError": False,
        "code": 0,
        "msg": "Successful",
        "data": {"uid": "u", "timestamp": 1, "token": "tok-1234567890abcdef"},
        "api": "file:///etc/",
    }
    gw_sim.fail_next(body=json.dumps(answer), path_contains="CrossLogin")
    rec = Recorder()
    with pytest.raises(SemsResponseError, match="refusing the api base"):
        make_client(gw_sim, rec).day_power(DAY)
    assert rec.endpoints == ["CrossLogin"]
    _assert_no_secret(rec, "tok-1234567890abcdef")


def test_daily_spans_stay_within_the_count_the_simulator_accepts(gw_sim):
    rec = Recorder()
    client = make_client(gw_sim, rec)
    first, last = date(2026, 1, 1), date(2026, 3, 15)
    answers = client.days_energy(first, last)
    assert [r.covers for r in answers] == day_spans(first, last)
    assert [r.query["count"] for r in answers] == ["31", "31", "12"]
    days = {}
    for r in answers:
        days.update(parse_daily_energy(r.body, SITE.timezone).daily_wh)
    assert len(days) == (last - first).days + 1
    # The simulator enforces the span the client respects.
    with pytest.raises(SemsResponseError, match="count must be"):
        client.call(DAILY_PATH, {"powerstation_id": STATION, "count": 32, "date": "2026-03-15"})


def test_the_field_notes_pac_path_answers_the_same_shape(gw_sim):
    a = make_client(gw_sim, Recorder()).day_power(DAY)
    b = make_client(gw_sim, Recorder(), pac_endpoint=PAC_PATH_FIELD_NOTES).day_power(DAY)
    assert a.endpoint == PAC_PATH and b.endpoint == PAC_PATH_FIELD_NOTES
    assert a.body == b.body


def test_secrets_are_not_in_the_client_repr(gw_sim):
    client = make_client(gw_sim, Recorder())
    client.day_power(DAY)
    text = repr(client)
    assert gw_sim.password not in text
    assert all(t not in text for t in gw_sim.issued_tokens())
