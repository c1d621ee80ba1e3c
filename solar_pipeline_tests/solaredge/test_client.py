"""The SolarEdge client against the simulator: key styles, V1 retirement, limits, raw capture."""

import json
import threading
from datetime import date

import pytest
import requests

from solar_pipeline.simulator.solaredge import SolarEdgeSimulator
from solar_pipeline.sources.solaredge.budget import DailyBudget
from solar_pipeline.sources.solaredge.client import SolarEdgeClient, windows
from solar_pipeline.sources.solaredge.errors import (
    BudgetExceeded,
    DailyLimitReached,
    ParseError,
    SolarEdgeAuthError,
    SolarEdgeTransportError,
)
from solar_pipeline.sources.solaredge.parse import parse_energy_details
from solar_pipeline_tests.helpers import free_port
from solar_pipeline_tests.solaredge.conftest import KEY_NAME, NOW, SITE, Recorder, make_client


def _assert_no_key(recorder: Recorder, *keys: str) -> None:
    for resp in recorder.responses:
        text = repr(resp)
        for key in keys:
            assert key not in text


def test_v2_header_key_fetches_and_records_every_answer_verbatim(se_sim):
    rec = Recorder()
    client = make_client(se_sim, rec)
    day = date(2026, 6, 1)
    [resp] = client.energy_details(day, day)
    assert resp.status == 200
    assert resp.endpoint == "energyDetails" and resp.covers == (day, day)
    assert resp.query["startTime"] == "2026-06-01 00:00:00"
    assert resp.query["endTime"] == "2026-06-01 23:59:59"
    assert rec.responses == [resp]
    # Verbatim: what the server sent, byte for byte, is what a store would keep.
    direct = requests.get(
        f"{se_sim.base_url}/site/{SITE.system_id}/energyDetails",
        params=resp.query,
        headers={"X-API-Key": se_sim.api_key},
        timeout=5,
    )
    assert resp.body == direct.text
    _assert_no_key(rec, se_sim.api_key)


def test_wrong_key_names_the_variable_and_never_the_key(se_sim):
    rec = Recorder()
    wrong = "WRONGKEY9876543210ZYXWVUTSRQPONM"
    client = make_client(se_sim, rec, key=wrong)
    with pytest.raises(SolarEdgeAuthError) as err:
        client.overview()
    message = str(err.value)
    assert KEY_NAME in message and "X-API-Key" in message
    assert wrong not in message and se_sim.api_key not in message
    assert [r.status for r in rec.responses] == [401]
    _assert_no_key(rec, wrong)


def test_v1_query_key_answers_410_gone_after_the_retirement(se_sim):
    rec = Recorder()
    client = make_client(se_sim, rec, key=se_sim.v1_api_key, auth="v1")
    with pytest.raises(SolarEdgeAuthError) as err:
        client.site_energy_days(date(2026, 6, 1), date(2026, 6, 2))
    message = str(err.value)
    assert "2026-11-03" in message and "410" in message and KEY_NAME in message
    assert se_sim.v1_api_key not in message
    assert se_sim.stats.gone == 1
    [resp] = rec.responses
    assert resp.status == 410 and "api_key" not in resp.query
    _assert_no_key(rec, se_sim.v1_api_key)


def test_v1_switch_serves_old_keys_and_still_refuses_wrong_ones():
    with SolarEdgeSimulator([SITE], serve_v1=True, clock=lambda: NOW) as sim:
        rec = Recorder()
        old = make_client(sim, rec, key=sim.v1_api_key, auth="v1")
        [resp] = old.site_energy_days(date(2026, 6, 1), date(2026, 6, 3))
        assert len(json.loads(resp.body)["energy"]["values"]) == 3
        assert "api_key" not in resp.query
        wrong = make_client(sim, rec, key="NOTAKEY", auth="v1")
        with pytest.raises(SolarEdgeAuthError, match="api_key parameter"):
            wrong.overview()
        # V1 keys do not work with V2: the same old key in the header is refused.
        header = make_client(sim, rec, key=sim.v1_api_key, auth="v2")
        with pytest.raises(SolarEdgeAuthError):
            header.overview()
        assert [r.status for r in rec.responses] == [200, 403, 401]
        _assert_no_key(rec, sim.v1_api_key)


def test_daily_limit_of_the_key_gives_a_clear_429_error(se_sim):
    se_sim.set_used_today(299)
    rec = Recorder()
    client = make_client(se_sim, rec)
    client.overview()
    with pytest.raises(DailyLimitReached, match="300 daily requests") as err:
        client.overview()
    assert KEY_NAME in str(err.value)
    assert [r.status for r in rec.responses] == [200, 429]
    assert se_sim.stats.throttled == 1


def test_budget_stops_before_sending_when_the_day_is_spent(se_sim):
    rec = Recorder()
    budget = DailyBudget(per_day=2, key_name=KEY_NAME, clock=lambda: NOW)
    client = make_client(se_sim, rec, budget=budget)
    client.overview()
    client.overview()
    with pytest.raises(BudgetExceeded, match=KEY_NAME):
        client.overview()
    assert len(rec.responses) == 2
    assert sum(se_sim.stats.requests.values()) == 2


def test_budget_refuses_a_backfill_the_day_cannot_afford(se_sim):
    # The caller's ledger says 290 of today's requests are gone (other runs, other sites).
    budget = DailyBudget(used_today=lambda now: 290, key_name=KEY_NAME, clock=lambda: NOW)
    first, last = date(2026, 1, 1), date(2026, 11, 24)
    planned = SolarEdgeClient.requests_needed(first, last)
    assert planned == len(windows(first, last, 12)) + len(windows(first, last, 1)) == 1 + 11
    with pytest.raises(BudgetExceeded, match="needs 12 SolarEdge requests but only 10"):
        budget.ensure_available(planned)
    assert sum(se_sim.stats.requests.values()) == 0


def test_windows_stay_within_the_documented_spans_and_the_simulator_accepts_them(se_sim):
    rec = Recorder()
    client = make_client(se_sim, rec)
    details = client.energy_details(date(2026, 1, 31), date(2026, 4, 2))
    assert [r.covers for r in details] == [
        (date(2026, 1, 31), date(2026, 2, 27)),
        (date(2026, 2, 28), date(2026, 3, 27)),
        (date(2026, 3, 28), date(2026, 4, 2)),
    ]
    days = client.site_energy_days(date(2025, 1, 1), date(2026, 11, 24))
    assert [r.covers for r in days] == [
        (date(2025, 1, 1), date(2025, 12, 31)),
        (date(2026, 1, 1), date(2026, 11, 24)),
    ]
    assert all(r.status == 200 for r in rec.responses)
    # The simulator does enforce the limits the windows respect.
    too_long = requests.get(
        f"{se_sim.base_url}/site/{SITE.system_id}/energyDetails",
        params={
            "timeUnit": "QUARTER_OF_AN_HOUR",
            "startTime": "2026-01-01 00:00:00",
            "endTime": "2026-02-01 00:15:00",
        },
        headers={"X-API-Key": se_sim.api_key},
        timeout=5,
    )
    assert too_long.status_code == 403


def test_malformed_body_is_recorded_verbatim_and_the_parser_says_so(se_sim):
    se_sim.fail_next(path_contains="energyDetails")
    rec = Recorder()
    client = make_client(se_sim, rec)
    [resp] = client.energy_details(date(2026, 6, 1), date(2026, 6, 1))
    assert resp.status == 200 and resp.body.startswith('{"energyDetails"')
    with pytest.raises(ParseError, match="not JSON"):
        parse_energy_details(resp.body, SITE.timezone)
    assert rec.responses[0].body == resp.body
    # The next call is whole again.
    [again] = client.energy_details(date(2026, 6, 1), date(2026, 6, 1))
    assert len(parse_energy_details(again.body, SITE.timezone).intervals) == 96


def test_retried_5xx_attempts_are_recorded_too(se_sim):
    se_sim.fail_next(status=503, body="<html><h1>Service Unavailable</h1></html>")
    rec = Recorder()
    client = make_client(se_sim, rec)
    resp = client.overview()
    assert resp.status == 200
    assert [r.status for r in rec.responses] == [503, 200]
    assert "Service Unavailable" in rec.responses[0].body


def test_no_answer_is_a_transport_error_without_the_v1_key_in_it():
    rec = Recorder()
    sim = SolarEdgeSimulator([SITE], clock=lambda: NOW)
    sim.base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = make_client(sim, rec, key=sim.v1_api_key, auth="v1")
    with pytest.raises(SolarEdgeTransportError) as err:
        client.overview()
    assert sim.v1_api_key not in str(err.value)
    assert rec.responses[-1].status is None and rec.responses[-1].error
    _assert_no_key(rec, sim.v1_api_key)


def test_more_than_three_concurrent_calls_get_429(se_sim):
    se_sim.slow_next(0.5, count=3)
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        r = requests.get(
            f"{se_sim.base_url}/site/{SITE.system_id}/overview",
            headers={"X-API-Key": se_sim.api_key},
            timeout=5,
        )
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    # Wait until the three slow calls are in flight before the fourth.
    for _ in range(100):
        if se_sim.stats.max_in_flight == 3:
            break
        threading.Event().wait(0.02)
    call()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 200, 200, 429]


def test_the_site_limit_holds_across_keys():
    with SolarEdgeSimulator([SITE], serve_v1=True, per_day=2, clock=lambda: NOW) as sim:
        rec = Recorder()
        make_client(sim, rec).overview()
        make_client(sim, rec).overview()
        # Another key still has its own quota, but the site's is spent.
        with pytest.raises(DailyLimitReached):
            make_client(sim, rec, key=sim.v1_api_key, auth="v1").overview()
        assert [r.status for r in rec.responses] == [200, 200, 429]
