"""The Enphase cloud simulator over real HTTP on 127.0.0.1, driven by a fake clock."""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import jwt
import pytest
import requests

from solar_pipeline.simulator import EnphaseCloudSimulator, SystemSpec
from solar_pipeline.simulator.solar_model import local_day_bounds

SPEC = SystemSpec()
SID = SPEC.system_id
AMS = ZoneInfo(SPEC.timezone)
NOW = datetime(2025, 11, 5, 14, 0, 20, tzinfo=AMS).timestamp()
CLIENT = ("sim-client-id", "sim-client-secret")
KEY = "sim-api-key"
NOT_AUTHORIZED = {"message": "Not Authorized", "details": "User is not authorized", "code": 401}


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Api:
    sim: EnphaseCloudSimulator
    token: str

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(
            f"{self.sim.base_url}/api/v4/{path}",
            params={"key": KEY, **params},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=5,
        )

    def day(self, kind: str, day: date) -> list[dict]:
        """All intervals of a local day, asking 24 h at a time as the API allows."""
        start, end = local_day_bounds(SPEC, day)
        out, at = [], start
        while at < end:
            resp = self.get(f"systems/{SID}/telemetry/{kind}", start_at=at, granularity="day")
            assert resp.status_code == 200, resp.text
            out += [i for i in resp.json()["intervals"] if i["end_at"] <= end]
            at += 86400
        return out


def token_call(sim: EnphaseCloudSimulator, auth=CLIENT, **params: str) -> requests.Response:
    return requests.post(f"{sim.base_url}/oauth/token", params=params, auth=auth, timeout=5)


def refresh(sim: EnphaseCloudSimulator, token: str) -> requests.Response:
    return token_call(sim, grant_type="refresh_token", refresh_token=token)


def new_api(sim: EnphaseCloudSimulator) -> Api:
    resp = refresh(sim, sim.mint_refresh_token())
    assert resp.status_code == 200, resp.text
    return Api(sim, resp.json()["access_token"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[EnphaseCloudSimulator]:
    with EnphaseCloudSimulator(clock=clock, per_minute=1000) as s:
        yield s


@pytest.fixture
def api(sim: EnphaseCloudSimulator) -> Api:
    return new_api(sim)


# ---- OAuth ------------------------------------------------------------------------------------


def test_authorization_code_is_single_use(sim: EnphaseCloudSimulator) -> None:
    authorize = f"{sim.base_url}/oauth/authorize"
    bad = requests.get(authorize, params={"response_type": "code", "client_id": "x"}, timeout=5)
    assert bad.status_code == 400
    callback = "http://localhost:8765/callback"
    params = {"response_type": "code", "client_id": CLIENT[0], "redirect_uri": callback}
    resp = requests.get(
        authorize, params={**params, "state": "s1"}, allow_redirects=False, timeout=5
    )
    assert resp.status_code == 302
    location = urlparse(resp.headers["Location"])
    query = parse_qs(location.query)
    assert location._replace(query="").geturl() == callback and query["state"] == ["s1"]
    code = query["code"][0]
    assert len(code) == 6

    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback}
    ok = requests.post(f"{sim.base_url}/oauth/token", data=form, auth=CLIENT, timeout=5)
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 86399
    assert body["scope"] == "read write" and body["enl_uid"] == "3265587"
    assert body["is_internal_app"] is False and body["app_type"] == "system"
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    refresh_claims = jwt.decode(body["refresh_token"], options={"verify_signature": False})
    assert access["exp"] - access["iat"] == 86400 and access["iat"] == int(NOW)
    assert refresh_claims["exp"] - refresh_claims["iat"] == 2629746
    assert refresh_claims["ati"] == access["jti"] == body["jti"]

    again = requests.post(f"{sim.base_url}/oauth/token", data=form, auth=CLIENT, timeout=5)
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_grant",
        "error_description": f"Invalid authorization code: {code}",
    }

    page = requests.get(authorize, params=params | {"redirect_uri": ""}, timeout=5)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    shown = page.text.split("<h1 id='code'>")[1][:6]
    wrong = token_call(sim, ("sim-client-id", "nope"), grant_type="authorization_code", code=shown)
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "unauthorized", "error_description": "Bad credentials"}
    assert token_call(sim, grant_type="authorization_code", code=shown).status_code == 200
    assert sim.stats.code_exchanges == 2


def test_strict_refresh_rotates_and_rejects_the_old_token(sim: EnphaseCloudSimulator) -> None:
    r0 = sim.mint_refresh_token()
    first = refresh(sim, r0)
    assert first.status_code == 200
    r1 = first.json()["refresh_token"]
    assert r1 != r0
    reused = refresh(sim, r0)
    assert reused.status_code == 400
    assert reused.json() == {
        "error": "invalid_grant",
        "error_description": f"Invalid refresh token: {r0[:8]}...",
    }
    assert refresh(sim, r1).status_code == 200
    assert (sim.stats.token_refreshes, sim.stats.rejected_refreshes) == (2, 1)


def test_lenient_refresh_keeps_old_tokens_until_expiry(clock: FakeClock) -> None:
    with EnphaseCloudSimulator(clock=clock, strict=False) as sim:
        r0 = sim.mint_refresh_token()
        assert refresh(sim, r0).status_code == 200
        assert refresh(sim, r0).status_code == 200
        clock.t += 2629746
        expired = refresh(sim, r0)
        assert expired.status_code == 401
        assert expired.json()["error"] == "invalid_token"
        assert expired.json()["error_description"].startswith("Invalid refresh token (expired)")


def test_revoked_refresh_tokens_need_new_consent(sim: EnphaseCloudSimulator) -> None:
    r0 = sim.mint_refresh_token()
    sim.revoke_refresh_tokens()
    resp = refresh(sim, r0)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    assert refresh(sim, sim.mint_refresh_token()).status_code == 200


def test_concurrent_refreshes_of_one_token_have_one_winner(sim: EnphaseCloudSimulator) -> None:
    for _ in range(5):
        token = sim.mint_refresh_token()
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def go(token: str = token, barrier=barrier, statuses=statuses) -> None:
            barrier.wait()
            statuses.append(refresh(sim, token).status_code)

        threads = [threading.Thread(target=go) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200, 400]


# ---- data-call gate ---------------------------------------------------------------------------


def test_data_calls_need_bearer_and_matching_key(
    sim: EnphaseCloudSimulator, api: Api, clock: FakeClock
) -> None:
    url = f"{sim.base_url}/api/v4/systems/{SID}"
    bearer = {"Authorization": f"Bearer {api.token}"}
    assert requests.get(url, params={"key": KEY}, timeout=5).json() == NOT_AUTHORIZED
    garbage = requests.get(url, params={"key": KEY}, headers={"Authorization": "Bearer x.y.z"})
    assert garbage.status_code == 401
    as_refresh = {"Authorization": f"Bearer {sim.mint_refresh_token()}"}
    assert requests.get(url, params={"key": KEY}, headers=as_refresh, timeout=5).status_code == 401
    missing = requests.get(url, headers=bearer, timeout=5)
    assert missing.status_code == 401
    assert missing.json()["details"] == "API Key missing in url/headers!"
    wrong = requests.get(url, params={"key": "other"}, headers=bearer, timeout=5)
    assert wrong.status_code == 401 and wrong.json()["details"] == "API Key -Client mismatch"
    in_header = requests.get(url, headers=bearer | {"key": KEY}, timeout=5)
    assert in_header.status_code == 200 and in_header.json()["timezone"] == SPEC.timezone
    assert sum(sim.stats.data_requests.values()) == 1

    sim.expire_access_tokens()
    assert api.get(f"systems/{SID}").json() == NOT_AUTHORIZED
    fresh = new_api(sim)
    assert fresh.get(f"systems/{SID}").status_code == 200
    clock.t += 86400
    assert fresh.get(f"systems/{SID}").status_code == 401


def test_minute_quota(clock: FakeClock) -> None:
    with EnphaseCloudSimulator(clock=clock, per_minute=3) as sim:
        api = new_api(sim)
        assert [api.get("systems").status_code for _ in range(3)] == [200] * 3
        minute = int(NOW // 60) * 60
        for _ in range(2):
            over = api.get(f"systems/{SID}/summary")
            assert over.status_code == 429 and "Retry-After" not in over.headers
            assert over.json() == {
                "message": "Too Many Requests",
                "details": "Usage limit exceeded for plan Watt",
                "code": 429,
                "period": "minute",
                "period_start": minute,
                "period_end": minute + 60,
                "limit": 3,
            }
        assert sim.stats.data_requests == {"systems": 3}
        clock.t = minute + 60
        assert api.get("systems").status_code == 200


def test_month_quota(sim: EnphaseCloudSimulator, api: Api, clock: FakeClock) -> None:
    sim.set_month_used(1000)
    over = api.get("systems")
    assert over.status_code == 429
    body = over.json()
    assert (body["period"], body["limit"]) == ("month", 1000)
    assert body["period_start"] == datetime(2025, 11, 1, tzinfo=UTC).timestamp()
    assert body["period_end"] == datetime(2025, 12, 1, tzinfo=UTC).timestamp()
    clock.t = body["period_end"]
    assert new_api(sim).get("systems").status_code == 200


def test_fault_injection(sim: EnphaseCloudSimulator, api: Api) -> None:
    sim.fail_next(html=True)
    busy = api.get("systems")
    assert busy.status_code == 503 and busy.headers["Content-Type"].startswith("text/html")
    assert "This website is under heavy load (queue full)" in busy.text
    assert api.get("systems").status_code == 200

    sim.fail_next(status=500, path_contains="summary")
    assert api.get(f"systems/{SID}/devices").status_code == 200
    assert api.get(f"systems/{SID}/summary").status_code == 500

    sim.fail_next(oauth=True)
    assert refresh(sim, sim.mint_refresh_token()).status_code == 503
    assert api.get("systems").status_code == 200

    admin = requests.post(f"{sim.base_url}/__sim__/faults", json={"fail_next": {"html": True}})
    assert admin.status_code == 200
    assert api.get("systems").status_code == 503
    minted = requests.post(f"{sim.base_url}/__sim__/refresh-token", timeout=5).json()
    assert refresh(sim, minted["refresh_token"]).status_code == 200
    stats = requests.get(f"{sim.base_url}/__sim__/stats", timeout=5).json()
    assert stats["data_requests"] == {"systems": 2, "devices": 1}

    sim.slow_next(0.3)
    began = time.monotonic()
    assert api.get("systems").status_code == 200
    assert time.monotonic() - began >= 0.3


def test_unknown_system_and_path(api: Api) -> None:
    missing = api.get("systems/1/summary")
    assert missing.status_code == 404
    assert missing.json() == {
        "message": "Not Found",
        "details": 'System not found for {:id=>"1"}',
        "code": 404,
    }
    assert api.get(f"systems/{SID}/nope").status_code == 404


# ---- data -------------------------------------------------------------------------------------


def test_production_micro_for_a_normal_day(api: Api) -> None:
    start, end = local_day_bounds(SPEC, date(2025, 11, 1))
    resp = api.get(f"systems/{SID}/telemetry/production_micro", start_at=start, granularity="day")
    body = resp.json()
    assert body["system_id"] == SID and body["granularity"] == "day"
    assert body["total_devices"] == 16 and body["items"] == "intervals"
    assert (body["start_at"], body["end_at"]) == (start, end)
    assert set(body["meta"]) == {"status", "last_report_at", "last_energy_at", "operational_at"}
    assert [i["end_at"] for i in body["intervals"]] == list(range(start + 300, end + 1, 300))
    assert all(i["devices_reporting"] == 16 for i in body["intervals"])


@pytest.mark.parametrize(("day", "count"), [(date(2025, 3, 30), 276), (date(2025, 10, 26), 300)])
def test_dst_days(api: Api, day: date, count: int) -> None:
    assert len(api.day("production_micro", day)) == count
    assert len(api.day("production_meter", day)) == count // 3


def test_the_same_interval_through_different_windows(api: Api) -> None:
    start, _ = local_day_bounds(SPEC, date(2025, 11, 1))
    path = f"systems/{SID}/telemetry/production_micro"
    whole = {i["end_at"]: i for i in api.get(path, start_at=start).json()["intervals"]}
    week = api.get(path, start_at=start - 3 * 86400, granularity="week").json()["intervals"]
    quarter = api.get(path, start_at=start + 43_210, granularity="15mins").json()["intervals"]
    five = api.get(path, start_at=start + 43_200, granularity="5mins").json()["intervals"]
    assert [i["end_at"] for i in quarter] == [start + 43_500, start + 43_800, start + 44_100]
    assert five == quarter[:1] and quarter[0]["powr"] > 0
    for interval in quarter + [i for i in week if i["end_at"] in whole]:
        assert whole[interval["end_at"]] == interval


def test_telemetry_window_rules(api: Api) -> None:
    path = f"systems/{SID}/telemetry/production_micro"
    today = api.get(path).json()
    midnight = local_day_bounds(SPEC, date(2025, 11, 5))[0]
    assert today["start_at"] == midnight
    assert today["intervals"][0]["end_at"] == midnight + 300
    assert today["intervals"][-1]["end_at"] == (int(NOW) - 900) // 300 * 300
    by_date = api.get(path, start_date="2025-11-05", end_at=midnight + 600).json()
    assert by_date["start_date"] == "2025-11-05" and by_date["intervals"] == today["intervals"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"start_at": int(NOW) + 60}, "Requested date is in the future"),
        ({"granularity": "hour"}, "Invalid granularity: hour"),
        ({"start_date": "2023-06-01"}, "Requested date range is invalid for this system"),
    ]
    for params, details in cases:
        resp = api.get(path, **params)
        assert resp.status_code == 422
        assert resp.json() == {"message": "Unprocessable Entity", "details": details, "code": 422}


def test_energy_lifetime_matches_the_intervals(api: Api) -> None:
    days = [date(2025, 10, 25), date(2025, 10, 26), date(2025, 10, 27)]
    resp = api.get(
        f"systems/{SID}/energy_lifetime",
        start_date="2025-10-25",
        end_date="2025-10-27",
        production="all",
    )
    body = resp.json()
    assert body["start_date"] == "2025-10-25" and body["meter_start_date"] == "2023-01-01"
    assert body["production"] == body["meter_production"]
    for i, day in enumerate(days):
        assert body["production"][i] == sum(q["wh_del"] for q in api.day("production_meter", day))
        micro = sum(q["enwh"] for q in api.day("production_micro", day))
        assert body["micro_production"][i] == micro > body["production"][i]

    recent = api.get(f"systems/{SID}/energy_lifetime", start_date="2025-11-01").json()
    assert len(recent["production"]) == 4 and "micro_production" not in recent
    for params in [
        {"start_date": "2025-11-03", "end_date": "2025-11-02"},
        {"end_date": "2025-11-06"},
    ]:
        assert api.get(f"systems/{SID}/energy_lifetime", **params).status_code == 422


def test_summary_agrees_with_energy_lifetime(api: Api) -> None:
    summary = api.get(f"systems/{SID}/summary").json()
    assert summary["summary_date"] == "2025-11-05" and summary["source"] == "meter"
    assert (summary["modules"], summary["size_w"], summary["status"]) == (16, 6400, "normal")
    history = api.get(f"systems/{SID}/energy_lifetime").json()["production"]
    assert summary["energy_lifetime"] == sum(history)
    today = api.get(f"systems/{SID}/energy_lifetime", start_date="2025-11-05").json()
    assert summary["energy_today"] == today["production"][0] > 0
    past = api.get(f"systems/{SID}/summary", summary_date="2025-11-01").json()
    assert (past["modules"], past["size_w"], past["current_power"]) == (0, 0, 0)
    assert past["energy_today"] == history[-4]


def test_devices(api: Api) -> None:
    body = api.get(f"systems/{SID}/devices").json()
    devices = body["devices"]
    assert [m["serial_number"] for m in devices["micros"]][:2] == ["021157000001", "021157000002"]
    assert len(devices["micros"]) == 16
    meters = {m["name"]: m["config_type"] for m in devices["meters"]}
    assert meters == {"production": "Production", "consumption": "Net"}
    assert body["total_devices"] == 16 + 2 + 1


def test_system_without_meters(clock: FakeClock) -> None:
    bare = SystemSpec(
        system_id=77,
        has_production_meter=False,
        has_consumption_meter=False,
        operational_date=date(2025, 10, 1),
    )
    with EnphaseCloudSimulator([bare], clock=clock) as sim:
        api = new_api(sim)
        for kind in ("production_meter", "consumption_meter"):
            body = api.get(f"systems/77/telemetry/{kind}", start_date="2025-11-01").json()
            assert (body["total_devices"], body["intervals"]) == (0, [])
        life = api.get("systems/77/energy_lifetime", production="all").json()
        assert life["start_date"] == "2025-10-01" and len(life["production"]) == 35
        assert life["production"] == life["micro_production"] and "meter_start_date" not in life
        assert api.get("systems/77/summary").json()["source"] == "microinverters"


def test_events_and_alarms(api: Api) -> None:
    missing = api.get(f"systems/{SID}/events")
    assert missing.status_code == 422
    assert missing.json() == {
        "message": "Unprocessable Entity",
        "details": "start_time is required",
        "code": 422,
    }
    start = local_day_bounds(SPEC, date(2025, 11, 1))[0]
    (event,) = api.get(f"systems/{SID}/events", start_time=start).json()["events"]
    assert event["status"] == "Closed" and event["event_type_id"] == 28
    too_long = api.get(f"systems/{SID}/events", start_time=start, end_time=start + 8 * 86400)
    assert too_long.status_code == 422

    window = {"start_time": start - 6 * 86400, "end_time": start + 86400}
    cleared = api.get(f"systems/{SID}/alarms", cleared="true", **window).json()
    (alarm,) = cleared["alarms"]
    assert alarm["cleared"] is True and alarm["id"].startswith(f"{SID}.28.")
    assert api.get(f"systems/{SID}/alarms", **window).json() == {"system_id": SID, "alarms": []}


def test_open_alarms_and_open_events_list_a_year_old_alarm_until_it_clears(
    sim: EnphaseCloudSimulator, api: Api, clock: FakeClock
) -> None:
    start = int(NOW) - 365 * 86400
    alarm_id = sim.raise_alarm(start)
    assert alarm_id == f"{SID}.8.{start * 1000}"

    (alarm,) = api.get(f"systems/{SID}/open_alarms").json()["alarms"]
    # Reference §3.13: no parameters; open_alarms omits `cleared` and `alarm_end_time`.
    assert alarm == {
        "id": alarm_id,
        "severity": 2,
        "event_type_id": 8,
        "alarm_start_time": start,
        "events": [
            {"serial_number": f"{SID % 10**6:06d}000001", "start_date": start, "end_date": None}
        ],
    }
    (event,) = api.get(f"systems/{SID}/open_events").json()["events"]
    assert event["status"] == "open" and event["event_start_time"] == start  # lower case
    assert event["event_end_time"] is None

    # Start-time windows: the alarm is in the window of its start, not in this week's.
    week = {"start_time": int(NOW) - 7 * 86400, "end_time": int(NOW)}
    assert all(
        a["id"] != alarm_id for a in api.get(f"systems/{SID}/alarms", **week).json()["alarms"]
    )

    clock.t += 3600
    sim.clear_alarm(alarm_id, at=int(NOW) + 60)
    assert api.get(f"systems/{SID}/open_alarms").json()["alarms"] == []
    assert api.get(f"systems/{SID}/open_events").json()["events"] == []
    # 9 months is as far back as a window may start (the spec's rule).
    old = {"start_time": start, "end_time": start + 86400, "cleared": "true"}
    too_old = api.get(f"systems/{SID}/alarms", **old)
    assert too_old.status_code == 422 and "9 months" in too_old.json()["details"]
    assert sim.stats.data_requests["open_alarms"] == 2


def test_window_match_overlap_returns_alarms_active_in_the_window(clock: FakeClock) -> None:
    with EnphaseCloudSimulator(clock=clock, per_minute=1000, window_match="overlap") as sim:
        api = new_api(sim)
        start = int(NOW) - 365 * 86400
        alarm_id = sim.raise_alarm(start)
        week = {"start_time": int(NOW) - 7 * 86400, "end_time": int(NOW)}
        active = api.get(f"systems/{SID}/alarms", **week).json()["alarms"]
        assert [a["id"] for a in active if a["id"] == alarm_id] == [alarm_id]

        sim.clear_alarm(alarm_id, at=int(NOW) - 3600)
        cleared = api.get(f"systems/{SID}/alarms", cleared="true", **week).json()["alarms"]
        (mine,) = [a for a in cleared if a["id"] == alarm_id]
        assert mine["cleared"] is True and mine["alarm_end_time"] == int(NOW) - 3600
        # A window after the clear no longer holds it.
        later = {"start_time": int(NOW) - 1800, "end_time": int(NOW)}
        after = api.get(f"systems/{SID}/alarms", cleared="true", **later).json()["alarms"]
        assert all(a["id"] != alarm_id for a in after)
    with pytest.raises(ValueError, match="window match"):
        EnphaseCloudSimulator(window_match="sideways")  # type: ignore[arg-type]


def test_alarms_are_raised_and_cleared_over_http(sim: EnphaseCloudSimulator, api: Api) -> None:
    admin = f"{sim.base_url}/__sim__/faults"
    start = int(NOW) - 30 * 86400
    raised = requests.post(admin, json={"raise_alarm": {"start": start}}, timeout=5).json()
    assert raised["ok"] and raised["alarm_id"] == f"{SID}.8.{start * 1000}"
    assert len(api.get(f"systems/{SID}/open_alarms").json()["alarms"]) == 1
    clear = {"clear_alarm": {"alarm_id": raised["alarm_id"], "at": int(NOW) - 10}}
    assert requests.post(admin, json=clear, timeout=5).json() == {"ok": True}
    assert api.get(f"systems/{SID}/open_alarms").json()["alarms"] == []
    unknown = requests.post(admin, json={"clear_alarm": {"alarm_id": "x"}}, timeout=5)
    assert unknown.status_code == 400
