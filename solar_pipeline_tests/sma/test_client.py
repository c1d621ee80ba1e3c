"""The SMA client, OAuth and consent code against the simulator: consent by e-mail, token
rotation in the shared token store, revoked consent, 401/429 handling, raw capture."""

import json
import os
import stat
from datetime import date

import pytest
import requests

from solar_pipeline.simulator.sma import OWNER, SmaSimulator
from solar_pipeline.sources.enphase.tokens import FileTokenStore
from solar_pipeline.sources.sma.errors import (
    ParseError,
    SmaAuthError,
    SmaConsentPending,
    SmaConsentRequired,
    SmaRateLimited,
    SmaTransportError,
)
from solar_pipeline.sources.sma.oauth import SmaConsent
from solar_pipeline.sources.sma.parse import parse_day
from solar_pipeline_tests.helpers import free_port
from solar_pipeline_tests.sma.conftest import (
    PLANT,
    Recorder,
    consented,
    make_client,
    make_oauth,
    make_tokens,
)

DAY = date(2026, 6, 1)


def _secrets(sim: SmaSimulator, store_path) -> list[str]:
    out = [sim.client_secret]
    pair = FileTokenStore(store_path).read()
    if pair is not None:
        out += [pair.access_token, pair.refresh_token]
    return [s for s in out if s]


def _assert_no_secret(texts, secrets) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_consent_is_requested_by_email_and_data_flows_once_the_owner_approves(
    sma_sim, clock, tmp_path
):
    rec = Recorder()
    oauth = make_oauth(sma_sim, clock, rec)
    tokens = make_tokens(oauth, tmp_path / "sma_tokens.json", clock)
    client = make_client(sma_sim, tokens, rec, clock)

    # Before any consent the plant is not readable, and the error says how to fix it.
    with pytest.raises(SmaConsentRequired, match=f"sma-consent --site {PLANT.system_id}"):
        client.day_series(DAY)

    approvals = []

    def owner_reads_mail(seconds: float) -> None:
        approvals.append(seconds)
        sma_sim.approve(OWNER)  # the owner clicks the link while we wait

    consent = SmaConsent(oauth, tokens, sleep=owner_reads_mail)
    status = consent.request(OWNER)
    assert status.pending and status.login_hint == OWNER and status.interval_s == 5
    assert OWNER in status.instructions() and "approves" in status.instructions()
    before = FileTokenStore(tmp_path / "sma_tokens.json").read()

    status = consent.wait(OWNER, timeout_s=60)
    assert status.accepted and approvals == [5]
    # A token obtained after the consent replaced (rotated) the stored one.
    after = FileTokenStore(tmp_path / "sma_tokens.json").read()
    assert after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token

    resp = client.day_series(DAY)
    assert resp.status == 200 and resp.query == {"Date": "2026-06-01", "ReturnEnergyValues": "true"}
    assert len(parse_day(resp.body, PLANT.timezone).intervals) == 288
    # Token answers are counted but recorded without their body.
    tokens_recorded = [r for r in rec.responses if r.endpoint == "oauth2/token"]
    assert tokens_recorded and all(r.body is None for r in tokens_recorded)
    secrets = _secrets(sma_sim, tmp_path / "sma_tokens.json")
    _assert_no_secret([repr(r) for r in rec.responses], secrets)


def test_auto_approve_flag_grants_consent_at_once(clock, tmp_path):
    with SmaSimulator([PLANT], auto_approve=True, clock=clock) as sim:
        oauth = make_oauth(sim, clock)
        tokens = make_tokens(oauth, tmp_path / "t.json", clock)
        status = SmaConsent(oauth, tokens, sleep=lambda s: None).wait(OWNER, timeout_s=1)
        assert status.accepted
        assert make_client(sim, tokens, Recorder(), clock).month_days(DAY).status == 200


def test_waiting_for_an_owner_who_does_not_answer_ends_with_pending(sma_sim, clock, tmp_path):
    oauth = make_oauth(sma_sim, clock)
    tokens = make_tokens(oauth, tmp_path / "t.json", clock)
    slept = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    consent = SmaConsent(oauth, tokens, sleep=sleep, clock=clock)
    with pytest.raises(SmaConsentPending, match="not approved the consent e-mail yet") as err:
        consent.wait(OWNER, timeout_s=12, plant_id=str(PLANT.system_id))
    assert slept == [5, 5] and err.value.state == "Pending"
    assert f"sma-consent --site {PLANT.system_id}" in str(err.value)


def test_unknown_owner_email_is_refused_with_a_hint(sma_sim, clock, tmp_path):
    oauth = make_oauth(sma_sim, clock)
    consent = SmaConsent(oauth, make_tokens(oauth, tmp_path / "t.json", clock))
    with pytest.raises(SmaConsentRequired, match="owner account in Sunny Portal"):
        consent.request("someone.else@example.test")


def test_token_rotation_is_persisted_and_picked_up_by_the_next_run(sma_sim, clock, tmp_path):
    setup = consented(sma_sim, tmp_path, clock)
    store_path = setup.store_path
    first = FileTokenStore(store_path).read()
    assert first is not None and first.origin == "client"
    assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o600
    assert first.access_expires_at - first.obtained_at == 300

    # Within the token's life nothing new is asked for, by this or another "process".
    grants = sum(sma_sim.stats.grants.values())
    setup.client.day_series(DAY)
    other = make_client(sma_sim, make_tokens(setup.oauth, store_path, clock), Recorder(), clock)
    other.day_series(DAY)
    assert sum(sma_sim.stats.grants.values()) == grants

    # Less than a minute left: the next call refreshes with the stored refresh token.
    clock.advance(250)
    setup.client.day_series(DAY)
    second = FileTokenStore(store_path).read()
    assert sma_sim.stats.grants["refresh_token"] == 1
    assert second.origin == "refresh" and second.refresh_token != first.refresh_token
    assert sma_sim.live_refresh_tokens() == 1  # rotation: the old refresh token died
    # The next run (a new manager on the same store) uses the stored pair as it is.
    next_run = make_tokens(setup.oauth, store_path, clock)
    assert next_run.access_token() == second.access_token
    assert sma_sim.stats.grants["refresh_token"] == 1


def test_a_refused_refresh_token_falls_back_to_client_credentials(sma_sim, clock, tmp_path):
    setup = consented(sma_sim, tmp_path, clock)
    stored = FileTokenStore(setup.store_path).read()
    setup.tokens.refresh_after_401(stored.access_token)  # rotates: the stored one is dead now
    spent = stored.refresh_token
    before = sma_sim.stats.grants["client_credentials"]
    pair = setup.oauth.refresh(spent)
    assert pair.origin == "client" and pair.access_token
    assert sma_sim.stats.grants["client_credentials"] == before + 1


def test_an_expired_token_is_refreshed_once_and_both_answers_recorded(sma_sim, clock, tmp_path):
    setup = consented(sma_sim, tmp_path, clock)
    setup.recorder.responses.clear()
    sma_sim.expire_access_tokens()
    resp = setup.client.month_days(date(2026, 3, 17))
    assert resp.status == 200 and resp.covers == (date(2026, 3, 1), date(2026, 3, 31))
    data = [r for r in setup.recorder.responses if r.endpoint.startswith("EnergyAndPowerPv")]
    assert [r.status for r in data] == [401, 200]
    assert sma_sim.stats.grants["refresh_token"] == 1


def test_revoked_consent_tells_how_to_reauthorize_and_shows_no_secret(sma_sim, clock, tmp_path):
    setup = consented(sma_sim, tmp_path, clock)
    setup.client.day_series(DAY)
    sma_sim.revoke(OWNER)
    with pytest.raises(SmaConsentRequired) as err:
        setup.client.day_series(DAY)
    message = str(err.value)
    assert f"solar-pipeline sma-consent --site {PLANT.system_id}" in message
    assert "revoked" in message and "403" in message
    assert setup.recorder.statuses[-1] == 403  # recorded before it was judged
    _assert_no_secret([message], _secrets(sma_sim, setup.store_path))
    # Asking again starts a new consent: pending until the owner approves the new e-mail.
    assert setup.consent.request(OWNER).pending


def test_wrong_client_secret_names_the_variables_never_the_secret(sma_sim, clock, tmp_path):
    wrong = "not-the-secret-9876543210"
    oauth = make_oauth(sma_sim, clock, secret=wrong)
    client = make_client(sma_sim, make_tokens(oauth, tmp_path / "t.json", clock), Recorder(), clock)
    with pytest.raises(SmaAuthError) as err:
        client.day_series(DAY)
    message = str(err.value)
    assert "SMA_CLIENT_ID" in message and "SMA_CLIENT_SECRET" in message
    assert wrong not in message and sma_sim.client_secret not in message
    assert "invalid_client" in message


def test_429_is_a_clear_error_with_retry_after(clock, tmp_path):
    with SmaSimulator([PLANT], per_window=4, clock=clock) as sim:
        setup = consented(sim, tmp_path, clock)  # token + consent + ... spend 2 of 4
        setup.client.day_series(DAY)
        setup.client.day_series(DAY)
        with pytest.raises(SmaRateLimited, match="5-minute window") as err:
            setup.client.day_series(DAY)
        # NOW is 30 s into its 5-minute window.
        assert err.value.retry_after_s == 270
        assert "retry after 270 s" in str(err.value)
        last = setup.recorder.responses[-1]
        assert last.status == 429 and last.retry_after_s == 270
        assert sim.stats.throttled == 1


def test_a_short_retry_after_is_waited_out_when_allowed(clock, tmp_path):
    with SmaSimulator([PLANT], per_window=3, clock=clock) as sim:
        setup = consented(sim, tmp_path, clock)
        slept = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            clock.advance(seconds)

        client = make_client(sim, setup.tokens, setup.recorder, clock, max_wait_s=300, sleep=sleep)
        client.day_series(DAY)
        resp = client.day_series(DAY)  # 429, wait 270 s, then the next window
        assert resp.status == 200 and slept == [270]
        data = [r.status for r in setup.recorder.responses if r.endpoint.endswith("/Day")]
        assert data == [200, 429, 200]


def test_answers_are_recorded_verbatim(sma_sim, clock, tmp_path):
    setup = consented(sma_sim, tmp_path, clock)
    resp = setup.client.day_series(DAY)
    direct = requests.get(
        f"{sma_sim.base_url}/v1/plants/{PLANT.system_id}/measurements/sets/EnergyAndPowerPv/Day",
        params=resp.query,
        headers={"Authorization": f"Bearer {setup.tokens.access_token()}"},
        timeout=5,
    )
    assert resp.body == direct.text
    assert setup.recorder.responses[-1] is resp
    assert "Bearer" not in repr(resp) and setup.tokens.access_token() not in repr(resp)


def test_malformed_body_is_recorded_verbatim_and_the_parser_says_so(sma_sim, clock, tmp_path):
    setup = consented(sma_sim, tmp_path, clock)
    sma_sim.fail_next(path_contains="/Day")
    resp = setup.client.day_series(DAY)
    assert resp.status == 200 and resp.body.startswith('{"plant"')
    assert setup.recorder.responses[-1].body == resp.body
    with pytest.raises(ParseError, match="not JSON"):
        parse_day(resp.body, PLANT.timezone)
    again = setup.client.day_series(DAY)
    assert len(parse_day(again.body, PLANT.timezone).intervals) == 288


def test_retried_5xx_attempts_are_recorded_too(sma_sim, clock, tmp_path):
    setup = consented(sma_sim, tmp_path, clock)
    sma_sim.fail_next(status=503, body="<html><h1>Service Unavailable</h1></html>")
    resp = setup.client.month_days(DAY)
    assert resp.status == 200
    assert setup.recorder.statuses[-2:] == [503, 200]
    assert "Service Unavailable" in setup.recorder.responses[-2].body


def test_no_answer_is_a_transport_error_without_a_token_in_it(sma_sim, clock, tmp_path):
    setup = consented(sma_sim, tmp_path, clock)
    client = make_client(sma_sim, setup.tokens, setup.recorder, clock)
    client.base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(SmaTransportError) as err:
        client.day_series(DAY)
    _assert_no_secret([str(err.value)], _secrets(sma_sim, setup.store_path))
    assert setup.recorder.responses[-1].status is None and setup.recorder.responses[-1].error


def test_month_answer_has_one_value_per_day_until_today(sma_sim, clock, tmp_path):
    setup = consented(sma_sim, tmp_path, clock)
    body = json.loads(setup.client.month_days(date(2026, 11, 1)).body)
    assert body["resolution"] == "OneDay" and body["plant"]["timezone"] == PLANT.timezone
    times = [item["time"] for item in body["set"]]
    assert times[0] == "2026-11-01T00:00:00" and times[-1] == "2026-11-25T00:00:00"
    assert len(times) == 25


@pytest.mark.parametrize("auto_approve", [False, True])
def test_sma_consent_command(auto_approve, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from solar_pipeline.cli import main

    monkeypatch.chdir(tmp_path)  # no stray .env
    with SmaSimulator([PLANT], auto_approve=auto_approve) as sim:
        for key, value in {
            "SOLAR_DATA_DIR": str(tmp_path),
            "SMA_CLIENT_ID": sim.client_id,
            "SMA_CLIENT_SECRET": sim.client_secret,
            "SMA_TOKEN_URL": sim.token_url,
            "SMA_CONSENT_URL": sim.consent_url,
        }.items():
            monkeypatch.setenv(key, value)
        args = ["sma-consent", "--site", str(PLANT.system_id), "--email", OWNER]
        result = CliRunner().invoke(main, args + (["--wait"] if auto_approve else []))
        assert result.exit_code == 0, result.output
        store = tmp_path / "sma_tokens.json"
        if auto_approve:
            assert "consent Accepted" in result.output and str(store) in result.output
            assert FileTokenStore(store).read().origin == "refresh"
        else:
            assert "consent Pending" in result.output and f"at {OWNER}" in result.output
        _assert_no_secret([result.output], _secrets(sim, store))


def test_sma_consent_command_names_missing_variables(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from solar_pipeline.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMA_CLIENT_ID", raising=False)
    result = CliRunner().invoke(main, ["sma-consent", "--site", "1", "--email", OWNER])
    assert result.exit_code != 0 and "SMA_CLIENT_ID" in result.output
