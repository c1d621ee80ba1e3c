"""The Envoy / IQ Gateway simulator over real HTTP(S) on 127.0.0.1, driven by a fake clock.

`verify=` is passed per request: requests lets REQUESTS_CA_BUNDLE override a Session's verify.
"""

import hashlib
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jwt
import pytest
import requests
from requests.auth import HTTPDigestAuth

from solar_pipeline.simulator import solar_model as model
from solar_pipeline.simulator.envoy import EnvoySimulator, fixture_name, parse_firmware
from solar_pipeline.simulator.solar_model import SystemSpec

SPEC = SystemSpec()
AMS = ZoneInfo(SPEC.timezone)
# A sunny-side afternoon on a quarter-hour boundary: every counter is a whole sum of intervals.
NOON = datetime(2025, 6, 5, 13, 0, 0, tzinfo=AMS).timestamp()
FIXTURES = Path("/work/shared/fixtures/envoy")
UNAUTHORIZED = "401 Authorization Required"


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOON)


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[EnvoySimulator]:
    with EnvoySimulator(SPEC, clock=clock) as s:
        yield s


def get(sim: EnvoySimulator, path: str, token: str | None = None, **kw) -> requests.Response:
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    verify = str(sim.cert_path) if sim.cert_path else True
    return requests.get(f"{sim.base_url}{path}", headers=headers, verify=verify, timeout=5, **kw)


# ---- transport, /info, tokens, sessions ----------------------------------------------------


def test_info_is_open_and_served_over_verifiable_tls(sim: EnvoySimulator) -> None:
    assert sim.base_url.startswith("https://127.0.0.1:")
    resp = requests.get(f"{sim.base_url}/info", verify=str(sim.cert_path), timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(resp.content)
    assert root.findtext("device/sn") == sim.serial == "202241095486"
    assert root.findtext("device/software") == "D8.2.4345"
    assert root.findtext("device/imeter") == "true"
    assert root.findtext("web-tokens") == "true"
    assert int(root.findtext("time") or "") == int(NOON)
    # The fingerprint is that of the certificate actually served (what a client pins).
    pem = ssl.get_server_certificate(("127.0.0.1", int(sim.base_url.rsplit(":", 1)[1])))
    served = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    assert served == sim.cert_fingerprint
    assert len(served) == 64


def test_check_jwt_sets_a_session_cookie_that_works_without_the_bearer(
    sim: EnvoySimulator, clock: FakeClock
) -> None:
    token = sim.mint_token()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == sim.serial and claims["iss"] == "Entrez"
    assert claims["enphaseUser"] == "owner" and claims["exp"] - claims["iat"] == 365 * 86400
    assert {"jti", "username"} <= set(claims)

    resp = get(sim, "/auth/check_jwt", token)
    assert resp.status_code == 200
    assert resp.text == "<!DOCTYPE html><h2>Valid token.</h2>"
    assert "HttpOnly" in resp.headers["Set-Cookie"]
    cookies = {"sessionId": resp.cookies["sessionId"]}

    assert get(sim, "/production.json").status_code == 401
    assert get(sim, "/production.json", cookies=cookies).status_code == 200
    clock.t += 11 * 60  # sessions last 10 minutes
    assert get(sim, "/production.json", cookies=cookies).status_code == 401
    assert get(sim, "/production.json", token).status_code == 200
    assert sim.stats.check_jwt == 1 and sim.stats.sessions_issued == 1
    assert sim.stats.unauthorized == 2


def test_bad_tokens_are_refused(sim: EnvoySimulator) -> None:
    other = EnvoySimulator(SPEC, clock=sim.clock)  # another gateway's secret
    for bad in (
        "not-a-jwt",
        sim.mint_token(lifetime_s=-1),  # expired
        sim.mint_token(aud="999999999999"),  # another gateway
        other.mint_token(),
    ):
        resp = get(sim, "/auth/check_jwt", bad)
        assert resp.status_code == 401 and UNAUTHORIZED in resp.text
        assert "Set-Cookie" not in resp.headers
        assert get(sim, "/ivp/meters", bad).status_code == 401
    assert get(sim, "/ivp/meters", cookies={"sessionId": "forged"}).status_code == 401


def test_digest_mode(clock: FakeClock) -> None:
    with EnvoySimulator(SPEC, firmware="R4.10.35", auth="digest", clock=clock) as sim:
        assert sim.base_url.startswith("http://") and sim.cert_fingerprint is None
        root = ET.fromstring(get(sim, "/info").content)
        assert root.findtext("web-tokens") is None
        plain = get(sim, "/api/v1/production")
        assert plain.status_code == 401
        challenge = plain.headers["WWW-Authenticate"]
        assert challenge.startswith('Digest qop="auth", realm="enphaseenergy.com", nonce="')
        good = get(sim, "/api/v1/production", auth=HTTPDigestAuth("envoy", sim.serial[-6:]))
        assert good.status_code == 200 and good.json()["wattsNow"] > 0
        ok = get(sim, "/production.json?details=1", auth=HTTPDigestAuth("envoy", "095486"))
        assert ok.status_code == 200
        bad = get(sim, "/api/v1/production", auth=HTTPDigestAuth("envoy", "123456"))
        assert bad.status_code == 401
        assert get(sim, "/auth/check_jwt", sim.mint_token()).status_code == 401


def test_enlighten_login_and_entrez_token_unlock_the_gateway(sim: EnvoySimulator) -> None:
    login = f"{sim.enlighten_url}/login/login.json"
    wrong = requests.post(login, data={"user[email]": sim.username, "user[password]": "x"})
    assert wrong.status_code == 401
    assert wrong.json() == {"message": "Invalid email or password"}
    form = {"user[email]": "owner@example.com", "user[password]": "sim-password"}
    reply = requests.post(login, data=form, timeout=5).json()
    assert reply["message"] == "success" and reply["is_consumer"] is True
    assert len(reply["session_id"]) == 32 and int(reply["session_id"], 16) >= 0
    assert reply["system_id"] == str(SPEC.system_id)

    tokens = f"{sim.entrez_url}/tokens"
    ask = {"session_id": reply["session_id"], "serial_num": sim.serial, "username": sim.username}
    resp = requests.post(tokens, json=ask, timeout=5)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    token = resp.text
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == sim.serial
    assert get(sim, "/auth/check_jwt", token).status_code == 200
    assert get(sim, "/api/v1/production", token).status_code == 200

    assert requests.post(tokens, json={**ask, "session_id": "0" * 32}).status_code == 401
    assert requests.post(tokens, json={**ask, "serial_num": "111111111111"}).status_code == 404
    assert sim.stats.logins == 1 and sim.stats.tokens_issued == 1


# ---- live data ---------------------------------------------------------------------------------


def _model_cumulative(now: int) -> dict[str, int]:
    """Cumulative model energy from the operational date up to `now` (a 15-minute boundary)."""
    today = model.local_date(SPEC, now)
    sums = {"micro_wh": 0, "meter_wh": 0, "consumption_wh": 0}
    day = SPEC.operational_date
    while day < today:
        totals = model.daily_totals(SPEC, day)
        for key in sums:
            sums[key] += totals[key]
        day += timedelta(days=1)
    partial = model.totals_until(SPEC, today, now)
    return {key: value + partial[key] for key, value in sums.items()}


def test_live_counters_match_the_cloud_model(sim: EnvoySimulator) -> None:
    token = sim.mint_token()
    expected = _model_cumulative(int(NOON))
    body = get(sim, "/production.json?details=1", token).json()
    inverters, eim = body["production"]
    assert inverters["type"] == "inverters" and inverters["activeCount"] == SPEC.modules
    assert inverters["whLifetime"] == expected["micro_wh"]
    assert inverters["readingTime"] == int(NOON) and inverters["wNow"] > 0
    assert eim["measurementType"] == "production" and eim["activeCount"] == 1
    assert eim["whLifetime"] == pytest.approx(expected["meter_wh"], abs=1e-3)
    assert eim["lines"][0]["whLifetime"] == eim["whLifetime"]
    total, net = body["consumption"]
    assert total["measurementType"] == "total-consumption"
    assert total["whLifetime"] == pytest.approx(expected["consumption_wh"], abs=1e-3)
    assert net["measurementType"] == "net-consumption"
    assert net["whLifetime"] == pytest.approx(total["whLifetime"] - eim["whLifetime"], abs=1e-2)
    assert net["whToday"] == 0
    assert body["storage"][0]["type"] == "acb"
    assert "lines" not in get(sim, "/production.json", token).json()["production"][1]

    readings = {r["eid"]: r for r in get(sim, "/ivp/meters/readings", token).json()}
    prod, grid = readings[704643328], readings[704643584]
    assert prod["actEnergyDlvd"] == pytest.approx(eim["whLifetime"], abs=1e-3)
    # Import minus export is the net lifetime.
    assert grid["actEnergyDlvd"] - grid["actEnergyRcvd"] == pytest.approx(
        net["whLifetime"], abs=1e-2
    )
    assert len(prod["channels"]) == 3 and prod["channels"][1]["activePower"] == 0
    meters = get(sim, "/ivp/meters", token).json()
    assert [m["measurementType"] for m in meters] == ["production", "net-consumption"]
    v1 = get(sim, "/api/v1/production", token).json()
    assert v1["wattHoursLifetime"] == round(eim["whLifetime"])


def test_lifetime_counters_never_decrease(sim: EnvoySimulator, clock: FakeClock) -> None:
    token = sim.mint_token()

    def counters() -> list[float]:
        body = get(sim, "/production.json", token).json()
        readings = get(sim, "/ivp/meters/readings", token).json()
        values = [e["whLifetime"] for e in body["production"]]
        values.append(body["consumption"][0]["whLifetime"])
        values += [r[k] for r in readings for k in ("actEnergyDlvd", "actEnergyRcvd")]
        return values

    clock.t = NOON + 97  # off any interval boundary
    first = counters()
    clock.t += 600
    second = counters()
    assert all(b >= a for a, b in zip(first, second, strict=True)), (first, second)
    assert second[1] > first[1]  # the production meter moved

    # Denser check straight on the model, across midnight and through the night.
    previous = None
    t = NOON
    while t < NOON + 36 * 3600:
        snap = sim.model.snapshot(t)
        now = (
            snap.micro_lifetime,
            snap.production_lifetime,
            snap.consumption_lifetime,
            snap.import_lifetime,
            snap.export_lifetime,
        )
        if previous is not None:
            assert all(b >= a - 1e-6 for a, b in zip(previous, now, strict=True)), t
        previous = now
        t += 611


def test_inverters_report_every_five_minutes_staggered(
    sim: EnvoySimulator, clock: FakeClock
) -> None:
    clock.t = NOON + 20
    token = sim.mint_token()
    inverters = get(sim, "/api/v1/production/inverters", token).json()
    sid = SPEC.system_id % 10**6
    assert [i["serialNumber"] for i in inverters] == [
        f"{sid:06d}{n:06d}" for n in range(1, SPEC.modules + 1)
    ]
    dates = [i["lastReportDate"] for i in inverters]
    assert all(clock.t - 300 < d <= clock.t for d in dates)
    assert len(set(dates)) > 1
    assert all(i["devType"] == 1 and i["maxReportWatts"] == 290 for i in inverters)
    assert all(i["lastReportWatts"] > 0 for i in inverters)

    data = get(sim, "/ivp/pdm/device_data", token).json()
    assert data["deviceCount"] == SPEC.modules and data["deviceDataLimit"] == 50
    pcus = [v for k, v in data.items() if k not in ("deviceCount", "deviceDataLimit")]
    assert {p["sn"] for p in pcus} == {i["serialNumber"] for i in inverters}
    assert all(p["devName"] == "pcu" and p["active"] for p in pcus)

    # At night the inverters entry reads 0 and the last report is from the evening.
    clock.t = datetime(2025, 6, 6, 2, 0, tzinfo=AMS).timestamp()
    night = get(sim, "/production.json", token).json()["production"][0]
    assert night["readingTime"] == 0 and night["wNow"] == 0 and night["whLifetime"] > 0
    last = get(sim, "/api/v1/production/inverters", token).json()[0]
    assert clock.t - 12 * 3600 < last["lastReportDate"] < clock.t - 3600


def test_device_data_needs_firmware_8_2(clock: FakeClock) -> None:
    with EnvoySimulator(SPEC, firmware="D7.6.175", clock=clock) as sim:
        resp = get(sim, "/ivp/pdm/device_data", sim.mint_token())
        assert resp.status_code == 404 and resp.json() == {"error": "404 - Not Found"}
        assert get(sim, "/no/such/page", sim.mint_token()).status_code == 404


def test_outage_window_answers_503(sim: EnvoySimulator, clock: FakeClock) -> None:
    clock.t = datetime(2025, 6, 5, 23, 2, tzinfo=AMS).timestamp()
    resp = get(sim, "/info")
    assert resp.status_code == 503 and "Service Unavailable" in resp.text
    assert get(sim, "/production.json", sim.mint_token()).status_code == 503
    clock.t += 4 * 60
    assert get(sim, "/info").status_code == 200


def test_fail_next(sim: EnvoySimulator) -> None:
    token = sim.mint_token()
    sim.fail_next(2, status=500, body='{"error": "boom"}', path_contains="readings")
    assert get(sim, "/ivp/meters", token).status_code == 200
    for _ in range(2):
        resp = get(sim, "/ivp/meters/readings", token)
        assert resp.status_code == 500 and resp.json() == {"error": "boom"}
    assert get(sim, "/ivp/meters/readings", token).status_code == 200

    sim.fail_next(close=True)
    with pytest.raises(requests.ConnectionError):
        get(sim, "/info")
    sim.fail_next(hang_s=2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{sim.base_url}/info", verify=str(sim.cert_path), timeout=0.3)
    assert get(sim, "/info").status_code == 200
    assert sim.stats.faults_served == 4


# ---- replay ------------------------------------------------------------------------------------


def test_fixture_name_mapping() -> None:
    assert fixture_name("/production.json", "details=1") == "production.json_details_1"
    assert fixture_name("/ivp/meters/readings") == "ivp_meters_readings"
    assert fixture_name("/inventory.json", "deleted=1") == "inventory.json_deleted_1"
    assert parse_firmware("D8.2.4345") == (8, 2, 4345) and parse_firmware("R3.9.36") == (3, 9, 36)


def test_replay_serves_fixture_files_verbatim(clock: FakeClock) -> None:
    folder = FIXTURES / "8.2.4345_with_device_data"
    with EnvoySimulator(replay=folder, clock=clock) as sim:
        assert sim.serial == "122446001637" and sim.base_url.startswith("https://")
        assert get(sim, "/info").content == (folder / "info").read_bytes()
        assert get(sim, "/ivp/pdm/device_data").status_code == 401
        token = sim.mint_token()
        resp = get(sim, "/ivp/pdm/device_data", token)
        assert resp.status_code == 200
        assert resp.content == (folder / "ivp_pdm_device_data").read_bytes()
        assert resp.headers["Content-Type"] == "application/json"
        details = get(sim, "/production.json?details=1", token)
        assert details.content == (folder / "production.json_details_1").read_bytes()
        missing = get(sim, "/ivp/livedata/status", token)
        assert missing.status_code == 404 and missing.json() == {"error": "404 - Not Found"}


def test_replay_keeps_recorded_401s(clock: FakeClock) -> None:
    folder = FIXTURES / "7.3.130_no_consumption"
    with EnvoySimulator(replay=folder, clock=clock) as sim:
        token = sim.mint_token()
        assert get(sim, "/auth/check_jwt", token).status_code == 200
        resp = get(sim, "/ivp/ensemble/power", token)
        assert resp.status_code == 401 and UNAUTHORIZED in resp.text
        assert resp.content == (folder / "ivp_ensemble_power").read_bytes()
        # No details_1 capture here: /production.json is served for both, as pyenphase does.
        details = get(sim, "/production.json?details=1", token)
        assert details.content == (folder / "production.json").read_bytes()

    with EnvoySimulator(replay=FIXTURES / "4.10.35", clock=clock) as old:
        assert old.base_url.startswith("http://")
        assert get(old, "/api/v1/production").status_code == 200  # pre-7: no auth check
        recorded = get(old, "/production")
        assert recorded.status_code == 401
        assert recorded.headers["WWW-Authenticate"].startswith('Digest qop="auth"')
