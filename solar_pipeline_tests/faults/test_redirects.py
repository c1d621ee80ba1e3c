"""No credential leaves the configured host: every client records a redirect and never follows it.

Each simulator is armed to redirect (302, or 307 for a POST, which would re-send the form or
JSON body) to `elsewhere()`, another listener on loopback that keeps every request it receives.
Nothing may arrive there; the redirect is recorded raw (status, where it pointed, body) without
any secret, and the client raises its vendor's response error.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.simulator import EnphaseCloudSimulator
from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline.simulator.faults import Caught, elsewhere
from solar_pipeline.simulator.fronius import FroniusSimulator
from solar_pipeline.simulator.goodwe import SemsSimulator
from solar_pipeline.simulator.sma import SmaSimulator
from solar_pipeline.simulator.solaredge import SolarEdgeSimulator
from solar_pipeline.sources.enphase.errors import EnphaseResponseError
from solar_pipeline.sources.envoy.client import EnvoyClient, EnvoyResponse
from solar_pipeline.sources.envoy.errors import EnvoyAuthError
from solar_pipeline.sources.envoy.tokens import EnlightenTokenFetcher, EnvoyTokenProvider
from solar_pipeline.sources.fronius.errors import FroniusError
from solar_pipeline.sources.goodwe.errors import SemsResponseError
from solar_pipeline.sources.http import build_session
from solar_pipeline.sources.sma.errors import SmaResponseError
from solar_pipeline.sources.solaredge.errors import SolarEdgeResponseError
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.enphase.test_client import FakeClock, _client
from solar_pipeline_tests.fronius import conftest as fronius
from solar_pipeline_tests.goodwe import conftest as goodwe
from solar_pipeline_tests.helpers import query
from solar_pipeline_tests.sma import conftest as sma
from solar_pipeline_tests.solaredge import conftest as solaredge


@contextmanager
def watching_elsewhere() -> Iterator[list[Caught]]:
    """The requests that reached the other host while the block ran."""
    before = len(elsewhere().caught)
    arrived: list[Caught] = []
    try:
        yield arrived
    finally:
        arrived.extend(elsewhere().caught[before:])


def assert_recorded_redirect(row: dict, status: int, secrets: list[str]) -> None:
    """The redirect as recorded: its status, an error naming where it pointed, no secret."""
    assert row["status"] == status
    assert "redirect" in row["error"] and "not followed" in row["error"]
    assert elsewhere().base_url in row["error"]
    text = repr(row)
    for secret in secrets:
        assert secret not in text


@pytest.fixture
def se_sim() -> Iterator[SolarEdgeSimulator]:
    with SolarEdgeSimulator([solaredge.SITE], clock=lambda: solaredge.NOW) as sim:
        yield sim


@pytest.fixture
def gw_sim() -> Iterator[SemsSimulator]:
    with SemsSimulator({goodwe.STATION: goodwe.SITE}, clock=goodwe.Clock()) as sim:
        yield sim


@pytest.fixture
def clock() -> sma.Clock:
    return sma.Clock()


@pytest.fixture
def sma_sim(clock) -> Iterator[SmaSimulator]:
    with SmaSimulator([sma.PLANT], clock=clock) as sim:
        yield sim


# ---- Enphase cloud ---------------------------------------------------------------------------


def _enphase_rows(tmp_path: Path) -> list[dict]:
    wh = DuckDBWarehouse(path=str(tmp_path / "solar.duckdb"))
    cols = ["endpoint", "query", "status", "content_type", "body", "error", "valid_json"]
    rows = query(wh, f"SELECT {', '.join(cols)} FROM raw.enphase_responses ORDER BY id")
    return [dict(zip(cols, r, strict=True)) for r in rows]


def test_enphase_data_call_redirect_is_recorded_not_followed(tmp_path):
    clock = FakeClock(datetime(2026, 11, 25, 10, 0, 30, tzinfo=UTC))
    with EnphaseCloudSimulator([SYSTEM], clock=clock) as sim:
        client, log = _client(sim, tmp_path, clock, "kilowatt")
        token = client.tokens.access_token()
        sim.misbehave_next("redirect", path_contains="/summary")
        with watching_elsewhere() as arrived, pytest.raises(EnphaseResponseError, match="302"):
            client.get("summary")
        log.close()
    assert arrived == []
    (row,) = [r for r in _enphase_rows(tmp_path) if r["endpoint"] == "summary"]
    assert_recorded_redirect(row, 302, [sim.api_key, token])
    assert row["valid_json"] is False


def test_enphase_token_refresh_redirect_does_not_resend_the_refresh_token(tmp_path):
    clock = FakeClock(datetime(2026, 11, 25, 10, 0, 30, tzinfo=UTC))
    with EnphaseCloudSimulator([SYSTEM], clock=clock) as sim:
        client, log = _client(sim, tmp_path, clock, "kilowatt")
        refresh = client.tokens.current().refresh_token
        # 307 keeps the method and the form: followed, it would post the refresh token there.
        sim.misbehave_next("redirect", status=307, path_contains="/oauth/token")
        with watching_elsewhere() as arrived, pytest.raises(EnphaseResponseError, match="307"):
            client.tokens.access_token()
        log.close()
    assert arrived == []
    for secret in (refresh, sim.client_secret):
        assert secret not in repr(arrived)


# ---- SolarEdge -------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["v2", "v1"])
def test_solaredge_redirect_keeps_the_key_home(se_sim, auth):
    rec = solaredge.Recorder()
    client = solaredge.make_client(se_sim, rec, auth=auth)
    se_sim.misbehave_next("redirect", path_contains="/overview")
    with watching_elsewhere() as arrived, pytest.raises(SolarEdgeResponseError, match="redirect"):
        client.overview()
    assert arrived == []
    (resp,) = rec.responses
    # V1's key is in the query string, which the redirect repeats in Location and its page.
    assert_recorded_redirect(resp.__dict__, 302, [se_sim.api_key])


# ---- GoodWe SEMS -----------------------------------------------------------------------------


def test_goodwe_login_redirect_does_not_resend_the_password(gw_sim):
    rec = goodwe.Recorder()
    client = goodwe.make_client(gw_sim, rec)
    gw_sim.misbehave_next("redirect", status=307, path_contains="CrossLogin")
    with watching_elsewhere() as arrived, pytest.raises(SemsResponseError, match="redirect"):
        client.login()
    assert arrived == []
    (resp,) = rec.responses
    assert_recorded_redirect(resp.__dict__, 307, [gw_sim.password])


def test_goodwe_data_call_redirect_keeps_the_token_home(gw_sim):
    rec = goodwe.Recorder()
    client = goodwe.make_client(gw_sim, rec)
    client.login()
    token = client._token_data["token"]
    gw_sim.misbehave_next("redirect", path_contains="GetPowerStationPac")
    with watching_elsewhere() as arrived, pytest.raises(SemsResponseError, match="redirect"):
        client.day_power(datetime.fromtimestamp(goodwe.NOW, UTC).date())
    assert arrived == []
    assert_recorded_redirect(rec.responses[-1].__dict__, 302, [gw_sim.password, token])


# ---- SMA -------------------------------------------------------------------------------------


def test_sma_data_call_redirect_is_not_followed(sma_sim, tmp_path, clock):
    setup = sma.consented(sma_sim, tmp_path, clock)
    token = setup.tokens.access_token()
    sma_sim.misbehave_next("redirect", path_contains="/Day")
    with watching_elsewhere() as arrived, pytest.raises(SmaResponseError, match="redirect"):
        setup.client.day_series(datetime.fromtimestamp(sma.NOW, UTC).date())
    # requests would strip the bearer header, but even the request itself must not go there:
    # the other host's answer would be taken for the plant's data.
    assert arrived == []
    assert_recorded_redirect(setup.recorder.responses[-1].__dict__, 302, [token])


def test_sma_token_call_redirect_does_not_resend_the_client_secret(sma_sim, tmp_path, clock):
    rec = sma.Recorder()
    oauth = sma.make_oauth(sma_sim, clock, rec)
    sma_sim.misbehave_next("redirect", status=307, path_contains="/oauth2/token")
    with watching_elsewhere() as arrived, pytest.raises(SmaResponseError, match="redirect"):
        oauth.client_token()
    assert arrived == []
    (resp,) = rec.responses
    assert_recorded_redirect(resp.__dict__, 307, [sma_sim.client_secret])


# ---- Envoy gateway and Enlighten -------------------------------------------------------------


@pytest.fixture
def gateway() -> Iterator[EnvoySimulator]:
    with EnvoySimulator(SYSTEM, firmware="D8.2.4345", outage=None) as sim:
        yield sim


def test_envoy_gateway_redirect_is_recorded_not_followed(gateway, tmp_path):
    records: list[EnvoyResponse] = []
    token = gateway.mint_token()
    provider = EnvoyTokenProvider(tmp_path / "envoy_token.json", configured=token)
    client = EnvoyClient(
        gateway.base_url, tmp_path, provider, records.append, retries=1, backoff=0.01
    )
    client.connect()
    gateway.misbehave_next("redirect", path_contains="production.json")
    with watching_elsewhere() as arrived:
        resp = client.get("/production.json?details=1")
    assert arrived == []
    assert_recorded_redirect(resp.__dict__, 302, [token])
    assert records[-1] == resp


def test_enlighten_login_redirect_does_not_resend_the_password(gateway):
    fetcher = EnlightenTokenFetcher(
        gateway.enlighten_url,
        gateway.entrez_url,
        gateway.username,
        gateway.password,
        build_session(0.01, 1),
    )
    gateway.misbehave_next("redirect", status=307, path_contains="/login/login.json")
    with watching_elsewhere() as arrived, pytest.raises(EnvoyAuthError, match="redirect"):
        fetcher.fetch(gateway.serial)
    assert arrived == []


# ---- Fronius ---------------------------------------------------------------------------------


def test_fronius_redirect_is_recorded_as_an_error():
    with FroniusSimulator(fronius.SPEC, clock=fronius.Clock(fronius.NOON)) as sim:
        records = []
        client = fronius.make_client(sim, records)
        sim.misbehave_next("redirect")
        with watching_elsewhere() as arrived, pytest.raises(FroniusError, match="redirect"):
            client.power_flow()
    assert arrived == []
    assert_recorded_redirect(records[-1].__dict__, 302, [])


# ---- the shared session ----------------------------------------------------------------------


def test_the_shared_session_never_follows_a_redirect(se_sim):
    """Any code that uses build_session's session directly is guarded too."""
    session = build_session(0.01, 1)
    se_sim.misbehave_next("redirect", status=308)
    with watching_elsewhere() as arrived:
        resp = session.get(f"{se_sim.base_url}/site/1/overview", headers={"X-API-Key": "k"})
    assert resp.status_code == 308
    assert arrived == []
