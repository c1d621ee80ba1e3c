"""Record first, always; flag, never crash: what the HTTP layer does with pathological answers.

Deeply nested JSON (valid, but deeper than Python's json reads), NaN, Infinity and 1e400 from
the simulators' `misbehave_next`: each client stores the answer before anything judges it and
ends with its vendor's error (or hands the answer to the parser), never a RecursionError,
ValueError or OverflowError of its own. Parsing the values is the parsers' business.
"""

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.simulator import EnphaseCloudSimulator
from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline.simulator.faults import DEEP_JSON_DEPTH
from solar_pipeline.simulator.goodwe import SemsSimulator
from solar_pipeline.simulator.sma import SmaSimulator
from solar_pipeline.simulator.solaredge import SolarEdgeSimulator
from solar_pipeline.sources.enphase.errors import EnphaseResponseError
from solar_pipeline.sources.envoy import poll
from solar_pipeline.sources.envoy.client import EnvoyClient, EnvoyResponse
from solar_pipeline.sources.envoy.errors import EnvoyAuthError
from solar_pipeline.sources.envoy.tokens import EnlightenTokenFetcher, EnvoyTokenProvider
from solar_pipeline.sources.http import build_session, json_or_none
from solar_pipeline.sources.sma.client import retry_after_seconds
from solar_pipeline.sources.sma.errors import SmaResponseError
from solar_pipeline.sources.solaredge.errors import SolarEdgeResponseError
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.enphase.test_client import FakeClock, _client
from solar_pipeline_tests.goodwe import conftest as goodwe
from solar_pipeline_tests.helpers import query
from solar_pipeline_tests.sma import conftest as sma
from solar_pipeline_tests.solaredge import conftest as solaredge

DEEP = "[" * DEEP_JSON_DEPTH + "]" * DEEP_JSON_DEPTH


def test_json_or_none_reads_nothing_too_deep_and_never_raises():
    assert json_or_none(DEEP) is None
    assert json_or_none('{"a": ' * 5000 + "1" + "}" * 5000) is None
    # NaN, Infinity, 1e400 are read as Python's json reads them: judging them is the parsers'.
    assert math.isnan(json_or_none('{"v": NaN}')["v"])
    assert json_or_none("[Infinity, -Infinity, 1e400]") == [math.inf, -math.inf, math.inf]


# ---- Enphase cloud ---------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 25, 10, 0, 30, tzinfo=UTC))


def _enphase_rows(tmp_path: Path) -> list[tuple]:
    wh = DuckDBWarehouse(path=str(tmp_path / "solar.duckdb"))
    return query(
        wh,
        "SELECT endpoint, status, length(body), valid_json FROM raw.enphase_responses "
        "WHERE endpoint = 'summary' ORDER BY id",
    )


def test_enphase_deep_json_is_recorded_before_it_is_judged(tmp_path, clock):
    with EnphaseCloudSimulator([SYSTEM], clock=clock) as sim:
        client, log = _client(sim, tmp_path, clock, "kilowatt")
        sim.misbehave_next("deep_json", path_contains="/summary")
        with pytest.raises(EnphaseResponseError, match="not JSON"):
            client.get("summary")
        log.close()
    assert _enphase_rows(tmp_path) == [("summary", 200, 2 * DEEP_JSON_DEPTH, False)]
    ledger = query(
        DuckDBWarehouse(path=str(tmp_path / "solar.duckdb")),
        "SELECT count(*) FROM ops.api_requests WHERE endpoint = 'summary'",
    )
    assert ledger == [(1,)]  # counted against the plan


@pytest.mark.parametrize("kind", ["nan", "infinity", "huge_number"])
def test_enphase_spoiled_numbers_are_recorded_and_handed_on(tmp_path, clock, kind):
    with EnphaseCloudSimulator([SYSTEM], clock=clock) as sim:
        client, log = _client(sim, tmp_path, clock, "kilowatt")
        sim.misbehave_next(kind, path_contains="/summary")
        fetched = client.get("summary")
        log.close()
    (row,) = _enphase_rows(tmp_path)
    assert (row[1], row[3]) == (200, True)  # stored, readable JSON
    assert not math.isfinite(fetched.data["current_power"])  # the parser judges the values


@pytest.mark.parametrize("kind", ["nan", "infinity", "huge_number"])
def test_enphase_429_without_a_usable_period_end_waits_for_the_next_minute(tmp_path, clock, kind):
    # Two calls a minute: the third is throttled, and its 429 body has period_end NaN/inf.
    with EnphaseCloudSimulator([SYSTEM], per_minute=2, clock=clock) as sim:
        client, log = _client(sim, tmp_path, clock, "kilowatt")
        client.get("summary")
        client.get("summary")
        sim.misbehave_next(kind, path_contains="/summary")
        assert client.get("summary").data["system_id"] == SYSTEM.system_id
        log.close()
    assert sim.stats.throttled == 1
    assert clock.slept == [pytest.approx(30 + 1, abs=0.01)]


# ---- SolarEdge, SMA, GoodWe ------------------------------------------------------------------


def test_solaredge_deep_json_error_body_is_recorded_and_reported():
    with SolarEdgeSimulator([solaredge.SITE], clock=lambda: solaredge.NOW) as sim:
        rec = solaredge.Recorder()
        client = solaredge.make_client(sim, rec)
        sim.misbehave_next("deep_json", status=400)
        with pytest.raises(SolarEdgeResponseError, match=r"400: application/json: \[\[\["):
            client.overview()
    assert [(r.status, r.body) for r in rec.responses] == [(400, DEEP)]


@pytest.fixture
def sma_sim() -> Iterator[SmaSimulator]:
    with SmaSimulator([sma.PLANT], clock=sma.Clock()) as sim:
        yield sim


def test_sma_deep_json_error_body_is_recorded_and_reported(sma_sim, tmp_path):
    setup = sma.consented(sma_sim, tmp_path, sma.Clock())
    sma_sim.misbehave_next("deep_json", status=400, path_contains="/Day")
    with pytest.raises(SmaResponseError, match="400"):
        setup.client.day_series(datetime.fromtimestamp(sma.NOW, UTC).date())
    assert (setup.recorder.responses[-1].status, setup.recorder.responses[-1].body) == (400, DEEP)


@pytest.mark.parametrize("kind", ["nan", "infinity", "huge_number"])
def test_sma_token_answer_with_spoiled_lifetimes_keeps_the_tokens(sma_sim, kind):
    # Refresh tokens rotate: failing over a broken lifetime would drop a fresh pair.
    clock = sma.Clock()
    rec = sma.Recorder()
    oauth = sma.make_oauth(sma_sim, clock, rec)
    sma_sim.misbehave_next(kind, path_contains="/oauth2/token")
    pair = oauth.client_token()
    assert pair.access_token and pair.refresh_token
    assert pair.access_expires_at == int(clock.now) + 300  # SMA's documented 5 minutes
    assert [r.status for r in rec.responses] == [200]  # counted, body not kept (tokens)


def test_sma_retry_after_that_is_no_number_is_none():
    for value in ("nan", "NaN", "inf", "-inf", "1e400"):
        assert retry_after_seconds(value) is None
    assert retry_after_seconds("120") == 120.0


def test_goodwe_deep_json_is_recorded_before_it_is_judged():
    with SemsSimulator({goodwe.STATION: goodwe.SITE}, clock=goodwe.Clock()) as sim:
        rec = goodwe.Recorder()
        client = goodwe.make_client(sim, rec)
        client.login()
        sim.misbehave_next("deep_json", path_contains="GetPowerStationPac")
        resp = client.day_power(datetime.fromtimestamp(goodwe.NOW, UTC).date())
    # Not a SEMS answer at all: recorded verbatim and handed to the parser, which flags it.
    assert resp.body == DEEP and rec.responses[-1] is resp


def test_goodwe_answer_nested_as_deep_as_json_reads_is_scrubbed_without_recursion():
    with SemsSimulator({goodwe.STATION: goodwe.SITE}, clock=goodwe.Clock()) as sim:
        rec = goodwe.Recorder()
        client = goodwe.make_client(sim, rec)
        client.login()
        # Just under what json reads on 3.11. From Python 3.12 json's C recursion limit is
        # apart from the Python one, so it reads answers deeper than a recursive walk for
        # tokens can go: the walk is iterative (this guards it; 3.11 cannot show the crash).
        depth = 900
        nested = "[" * depth + '{"token": "leaked"}' + "]" * depth
        sim.fail_next(status=200, body=nested, path_contains="GetPowerStationPac")
        resp = client.day_power(datetime.fromtimestamp(goodwe.NOW, UTC).date())
    assert "leaked" not in resp.body and "***" in resp.body


# ---- Envoy -----------------------------------------------------------------------------------


@pytest.fixture
def gateway() -> Iterator[EnvoySimulator]:
    with EnvoySimulator(SYSTEM, firmware="D8.2.4345", outage=None) as sim:
        yield sim


def test_envoy_poll_survives_deep_json_and_keeps_it(gateway, tmp_path):
    records: list[EnvoyResponse] = []
    provider = EnvoyTokenProvider(tmp_path / "t.json", configured=gateway.mint_token())
    client = EnvoyClient(
        gateway.base_url, tmp_path, provider, records.append, retries=1, backoff=0.01
    )
    gateway.misbehave_next("deep_json", path_contains="production.json")
    result = poll.poll_once(client)
    assert result.ok
    deep = [r for r in records if r.endpoint == poll.PRODUCTION]
    assert [(r.status, r.body) for r in deep] == [(200, DEEP)]
    # production.json unusable: the v1 summary was asked for instead.
    assert any(r.endpoint == poll.PRODUCTION_V1 and r.status == 200 for r in records)


def test_enlighten_login_answer_too_deep_is_an_auth_error(gateway):
    fetcher = EnlightenTokenFetcher(
        gateway.enlighten_url,
        gateway.entrez_url,
        gateway.username,
        gateway.password,
        build_session(0.01, 1),
    )
    gateway.misbehave_next("deep_json", path_contains="/login/login.json")
    with pytest.raises(EnvoyAuthError, match="no session id"):
        fetcher.fetch(gateway.serial)
