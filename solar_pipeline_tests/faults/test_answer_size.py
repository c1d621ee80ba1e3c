"""Answers are read up to SOLAR_MAX_ANSWER_BYTES of decoded bytes, then reading stops.

A 50 MB body and a gzip bomb (1 MB on the wire, 1 GiB inflated) from the simulators'
`misbehave_next`: every client records the answer as an error row (status as received, no
body, an error that says it was truncated at the cap and how it began), counts it as a
request, and raises its vendor's error; a child process doing the same stays small.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import answer_size
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.settings import InvalidSettingError
from solar_pipeline.simulator import EnphaseCloudSimulator
from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline.simulator.fronius import FroniusSimulator
from solar_pipeline.simulator.goodwe import SemsSimulator
from solar_pipeline.simulator.sma import SmaSimulator
from solar_pipeline.simulator.solaredge import SolarEdgeSimulator
from solar_pipeline.sources.enphase.errors import EnphaseResponseError
from solar_pipeline.sources.envoy import poll
from solar_pipeline.sources.envoy.client import EnvoyClient, EnvoyResponse
from solar_pipeline.sources.envoy.tokens import EnvoyTokenProvider
from solar_pipeline.sources.fronius.errors import FroniusError
from solar_pipeline.sources.goodwe.errors import SemsResponseError
from solar_pipeline.sources.http import (
    DEFAULT_MAX_ANSWER_BYTES,
    MAX_ANSWER_BYTES_VAR,
    max_answer_bytes,
)
from solar_pipeline.sources.sma.errors import SmaResponseError
from solar_pipeline.sources.solaredge.budget import DailyBudget
from solar_pipeline.sources.solaredge.errors import SolarEdgeResponseError
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.enphase.test_client import FakeClock, _client
from solar_pipeline_tests.fronius import conftest as fronius
from solar_pipeline_tests.goodwe import conftest as goodwe
from solar_pipeline_tests.helpers import query
from solar_pipeline_tests.sma import conftest as sma
from solar_pipeline_tests.solaredge import conftest as solaredge

CAP = DEFAULT_MAX_ANSWER_BYTES
OVERSIZED = ["huge_body", "gzip_bomb"]


def assert_truncated(status, body, error, expected_status: int = 200) -> None:
    assert status == expected_status
    assert body is None  # a prefix could pass for a whole answer: none is stored
    assert f"answer truncated at {CAP} bytes ({MAX_ANSWER_BYTES_VAR})" in error
    assert "it began '[0,0,0," in error


@pytest.mark.parametrize("kind", OVERSIZED)
def test_enphase_oversized_answer_is_an_error_row_and_counted(tmp_path, kind):
    clock = FakeClock(datetime(2026, 11, 25, 10, 0, 30, tzinfo=UTC))
    with EnphaseCloudSimulator([SYSTEM], clock=clock) as sim:
        client, log = _client(sim, tmp_path, clock, "kilowatt")
        sim.misbehave_next(kind, path_contains="/summary")
        with pytest.raises(EnphaseResponseError, match=f"truncated at {CAP} bytes"):
            client.get("summary")
        log.close()
    wh = DuckDBWarehouse(path=str(tmp_path / "solar.duckdb"))
    ((status, body, error, valid),) = query(
        wh,
        "SELECT status, body, error, valid_json FROM raw.enphase_responses "
        "WHERE endpoint = 'summary'",
    )
    assert_truncated(status, body, error)
    assert valid is False
    ((ledger_error,),) = query(
        wh, "SELECT error FROM ops.api_requests WHERE endpoint = 'summary' AND kind = 'data'"
    )
    assert "truncated" in ledger_error  # counted against the plan, and why it failed


@pytest.mark.parametrize("kind", OVERSIZED)
def test_solaredge_oversized_answer_is_an_error_row_and_counted(kind):
    with SolarEdgeSimulator([solaredge.SITE], clock=lambda: solaredge.NOW) as sim:
        rec = solaredge.Recorder()
        budget = DailyBudget(clock=lambda: solaredge.NOW)
        client = solaredge.make_client(sim, rec, budget=budget)
        sim.misbehave_next(kind)
        with pytest.raises(SolarEdgeResponseError, match="truncated"):
            client.overview()
    (resp,) = rec.responses
    assert_truncated(resp.status, resp.body, resp.error)
    assert budget.used() == 1


def test_oversized_5xx_retried_inside_urllib3_is_recorded_per_attempt():
    with SolarEdgeSimulator([solaredge.SITE], clock=lambda: solaredge.NOW) as sim:
        rec = solaredge.Recorder()
        client = solaredge.make_client(sim, rec)  # two retries: three attempts
        sim.misbehave_next("gzip_bomb", count=3, status=503)
        with pytest.raises(SolarEdgeResponseError, match="503"):
            client.overview()
    assert len(rec.responses) == 3
    for resp in rec.responses:
        assert_truncated(resp.status, resp.body, resp.error, expected_status=503)


def test_sma_oversized_answer_is_an_error_row(tmp_path):
    with SmaSimulator([sma.PLANT], clock=sma.Clock()) as sim:
        setup = sma.consented(sim, tmp_path, sma.Clock())
        sim.misbehave_next("gzip_bomb", path_contains="/Day")
        with pytest.raises(SmaResponseError, match="truncated"):
            setup.client.day_series(datetime.fromtimestamp(sma.NOW, UTC).date())
    resp = setup.recorder.responses[-1]
    assert_truncated(resp.status, resp.body, resp.error)


def test_goodwe_oversized_answer_is_an_error_row():
    with SemsSimulator({goodwe.STATION: goodwe.SITE}, clock=goodwe.Clock()) as sim:
        rec = goodwe.Recorder()
        client = goodwe.make_client(sim, rec)
        client.login()
        sim.misbehave_next("huge_body", path_contains="GetPowerStationPac")
        with pytest.raises(SemsResponseError, match="truncated"):
            client.day_power(datetime.fromtimestamp(goodwe.NOW, UTC).date())
    resp = rec.responses[-1]
    assert_truncated(resp.status, resp.body, resp.error)


def test_fronius_oversized_answer_is_an_error_row():
    with FroniusSimulator(fronius.SPEC, clock=fronius.Clock(fronius.NOON)) as sim:
        records = []
        client = fronius.make_client(sim, records)
        sim.misbehave_next("gzip_bomb")
        with pytest.raises(FroniusError, match="truncated"):
            client.power_flow()
    assert_truncated(records[-1].status, records[-1].body, records[-1].error)


@pytest.fixture
def gateway() -> Iterator[EnvoySimulator]:
    with EnvoySimulator(SYSTEM, firmware="D8.2.4345", outage=None) as sim:
        yield sim


def test_envoy_oversized_answer_is_an_error_row_and_the_poll_goes_on(gateway, tmp_path: Path):
    records: list[EnvoyResponse] = []
    provider = EnvoyTokenProvider(tmp_path / "t.json", configured=gateway.mint_token())
    client = EnvoyClient(
        gateway.base_url, tmp_path, provider, records.append, retries=1, backoff=0.01
    )
    gateway.misbehave_next("gzip_bomb", path_contains="production.json")
    assert poll.poll_once(client).ok
    (big,) = [r for r in records if r.endpoint == poll.PRODUCTION]
    assert_truncated(big.status, big.body, big.error)
    assert any(r.endpoint == poll.PRODUCTION_V1 and r.status == 200 for r in records)


def test_the_cap_is_one_setting(monkeypatch):
    monkeypatch.delenv(MAX_ANSWER_BYTES_VAR, raising=False)
    assert max_answer_bytes() == 8 * 1024 * 1024
    monkeypatch.setenv(MAX_ANSWER_BYTES_VAR, "200_000")
    assert max_answer_bytes() == 200_000
    for wrong in ("8MB", "-1", "1000"):
        monkeypatch.setenv(MAX_ANSWER_BYTES_VAR, wrong)
        with pytest.raises(InvalidSettingError, match=MAX_ANSWER_BYTES_VAR):
            max_answer_bytes()


def test_a_lower_cap_cuts_an_ordinary_answer(monkeypatch):
    # A month of 15-minute data for five meters is ~0.7 MB: over a 100 kB cap.
    monkeypatch.setenv(MAX_ANSWER_BYTES_VAR, "100000")
    with SolarEdgeSimulator([solaredge.SITE], clock=lambda: solaredge.NOW) as sim:
        rec = solaredge.Recorder()
        client = solaredge.make_client(sim, rec)
        first = datetime(2026, 10, 1, tzinfo=UTC).date()
        with pytest.raises(SolarEdgeResponseError, match="truncated at 100000 bytes"):
            client.energy_details(first, first.replace(day=31))
        monkeypatch.delenv(MAX_ANSWER_BYTES_VAR)
        (whole,) = client.energy_details(first, first.replace(day=31))
    assert 100_000 < len(whole.body) < CAP


def test_a_client_process_stays_small_whatever_the_answer():
    """Peak RSS of a fresh process making one request (bench/answer_size.py)."""
    results = {r["case"]: r for r in answer_size.main(["--limit-mb", "1500"])}
    plain = results["plain"]["peak_rss_mb"]
    for kind in OVERSIZED:
        r = results[kind]
        assert "failed" not in r, r
        assert f"truncated at {CAP} bytes" in r["error"] and r["stored_body_bytes"] == 0
        # Reading stops at the 8 MiB cap: a few times that, not the 50 MB or 1 GiB on offer.
        assert r["peak_rss_mb"] < plain + 40, (kind, r["peak_rss_mb"], plain)
