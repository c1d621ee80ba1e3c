"""misbehave_next on every simulator: each kind is served over real HTTP, once, where armed."""

import gzip
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests

from solar_pipeline.simulator.enphase_cloud import EnphaseCloudSimulator
from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline.simulator.faults import (
    DEEP_JSON_DEPTH,
    GZIP_BOMB_BYTES,
    HUGE_BODY_BYTES,
    elsewhere,
    gzip_bomb,
)
from solar_pipeline.simulator.fronius import FroniusSimulator
from solar_pipeline.simulator.goodwe import SemsSimulator
from solar_pipeline.simulator.sma import SmaSimulator
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.simulator.solaredge import SolarEdgeSimulator

SPEC = SystemSpec(system_id=4242, timezone="Europe/Amsterdam", operational_date=date(2026, 1, 1))
NOW = datetime(2026, 6, 15, 10, 0, 3, tzinfo=UTC).timestamp()
STATION = "0b7e4c52-91d3-4f6a-a8e2-3c5d7f9e1b24"


def _fronius() -> FroniusSimulator:
    return FroniusSimulator(SPEC, clock=lambda: NOW)


# (factory, a path the simulator answers with JSON without any credentials)
SIMULATORS: dict[str, tuple[Callable[[], Any], str]] = {
    "enphase_cloud": (lambda: EnphaseCloudSimulator([SPEC]), "/api/v4/systems/4242/summary"),
    "envoy": (lambda: EnvoySimulator(SPEC, tls=False, auth="none"), "/production.json"),
    "solaredge": (lambda: SolarEdgeSimulator([SPEC], clock=lambda: NOW), "/site/4242/overview"),
    "sma": (lambda: SmaSimulator([SPEC], clock=lambda: NOW), "/oauth2/token"),
    "goodwe": (
        lambda: SemsSimulator({STATION: SPEC}, clock=lambda: NOW),
        "/api/v2/Common/CrossLogin",
    ),
    "fronius": (_fronius, "/solar_api/v1/GetPowerFlowRealtimeData.fcgi"),
}


@pytest.fixture(params=sorted(SIMULATORS))
def served(request) -> Iterator[tuple[Any, str]]:
    factory, path = SIMULATORS[request.param]
    sim = factory()
    sim.start()
    try:
        yield sim, path
    finally:
        sim.stop()


def _get(sim, path: str, **kwargs) -> requests.Response:
    # SEMS answers POST only; the others GET.
    method = "POST" if isinstance(sim, SemsSimulator) else "GET"
    url = sim.base_url + path
    return requests.request(method, url, timeout=10, allow_redirects=False, **kwargs)


def test_redirect_points_at_elsewhere_with_path_and_query(served):
    sim, path = served
    sim.misbehave_next("redirect", path_contains=path)
    resp = _get(sim, path + "?api_key=SECRET1")
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"{elsewhere().base_url}{path}?api_key=SECRET1"
    sim.misbehave_next("redirect", status=307)
    assert _get(sim, path).status_code == 307
    assert sim.misbehaviours_served["redirect"] == 2
    # Spent: the next request is the simulator's own answer.
    assert _get(sim, path).status_code != 302


def test_elsewhere_keeps_what_it_received():
    before = len(elsewhere().caught)
    requests.get(
        f"{elsewhere().base_url}/x/y?k=SECRET2", headers={"key": "SECRET3"}, timeout=10
    ).raise_for_status()
    got = elsewhere().caught[before:]
    assert len(got) == 1 and got[0].target == "/x/y?k=SECRET2"
    assert got[0].carries("SECRET2") and got[0].carries("SECRET3")
    assert not got[0].carries("SECRET4")


def test_huge_body_is_a_valid_json_array_of_its_size(served):
    sim, path = served
    sim.misbehave_next("huge_body")
    with _get(sim, path, stream=True) as resp:
        assert resp.status_code == 200
        assert int(resp.headers["Content-Length"]) == HUGE_BODY_BYTES
        size = 0
        for chunk in resp.iter_content(1 << 20):
            if size == 0:
                assert chunk.startswith(b"[0,0,")
            size += len(chunk)
    assert size == HUGE_BODY_BYTES


def test_gzip_bomb_is_small_on_the_wire(served):
    sim, path = served
    sim.misbehave_next("gzip_bomb", status=503)
    with _get(sim, path, stream=True) as resp:
        assert resp.status_code == 503
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.raw.read(decode_content=False) == gzip_bomb()


def test_gzip_bomb_inflates_to_a_gigabyte_of_json():
    wire = gzip_bomb()
    assert len(wire) < 2_000_000
    inflated = 0
    with gzip.GzipFile(fileobj=io.BytesIO(wire)) as stream:
        first = stream.read(5)
        inflated = len(first)
        while chunk := stream.read(1 << 22):
            inflated += len(chunk)
            last = chunk
    assert first == b"[0,0," and last.endswith(b",0]")
    assert inflated == GZIP_BOMB_BYTES + 3


def test_deep_json_is_deeper_than_python_reads(served):
    sim, path = served
    sim.misbehave_next("deep_json")
    body = _get(sim, path).text
    assert body == "[" * DEEP_JSON_DEPTH + "]" * DEEP_JSON_DEPTH
    with pytest.raises(RecursionError):
        json.loads(body)


@pytest.mark.parametrize(
    ("kind", "token"), [("nan", "NaN"), ("infinity", "Infinity"), ("huge_number", "1e400")]
)
def test_number_kinds_spoil_every_number_of_the_real_answer(served, kind, token):
    sim, path = served
    sim.misbehave_next(kind, path_contains=path)
    spoiled = _get(sim, path)
    plain = _get(sim, path)
    assert token in spoiled.text and token not in plain.text
    # The same shape: only the numbers differ.
    assert json.loads(spoiled.text).keys() == json.loads(plain.text).keys()


def test_unknown_kind_is_refused():
    sim = SolarEdgeSimulator([SPEC])
    with pytest.raises(ValueError, match="redirect"):
        sim.misbehave_next("teapot")
