"""The gateway path end to end: simulator over real HTTPS/HTTP, real DuckDB, Dagster runs."""

import json
import time
from datetime import UTC, datetime

import pytest

from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.envoy.conftest import ENVOY_KEYS, make_envoy, run_envoy
from solar_pipeline_tests.helpers import failure_message, query


def _check(result, asset: str, name: str):
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.asset_key.to_user_string() == asset and evaluation.check_name == name:
            return evaluation
    raise AssertionError(f"no check {name} on {asset}")


def test_one_poll_stores_raw_then_typed_readings(live_envoy, warehouse, tmp_path):
    result = run_envoy(make_envoy(live_envoy, tmp_path), warehouse)
    assert result.success
    endpoints = [
        r[0] for r in query(warehouse, "SELECT endpoint FROM raw.envoy_responses ORDER BY id")
    ]
    assert endpoints == [
        "/info",
        "/auth/check_jwt",
        "/production.json?details=1",
        "/ivp/pdm/device_data",
        "/ivp/meters",
        "/ivp/meters/readings",
    ]
    production = query(
        warehouse, "SELECT measurement, source, phase FROM envoy.production_readings ORDER BY ALL"
    )
    assert ("production", "eim", None) in production
    assert ("total-consumption", "eim", None) in production
    inverters = query(
        warehouse,
        "SELECT count(DISTINCT serial_number), any_value(source) FROM envoy.inverter_readings",
    )
    assert inverters == [(SYSTEM.modules, "device_data")]
    meters = query(
        warehouse,
        "SELECT measurement_type FROM envoy.meter_readings WHERE phase IS NULL ORDER BY ALL",
    )
    assert meters == [("net-consumption",), ("production",)]
    assert _check(result, "raw/envoy_responses", "gateway_answered").passed


def test_repeated_inverter_reports_are_stored_once(warehouse, tmp_path, monkeypatch):
    # A fixed clock: the three polls see the same inverter reports whatever the wall time
    # (with the real clock, a 5-minute report boundary could fall between two polls).
    noon = datetime(2025, 6, 10, 12, 0, tzinfo=UTC).timestamp()
    with EnvoySimulator(SYSTEM, outage=None, clock=lambda: noon) as sim:
        monkeypatch.setenv("ENVOY_TOKEN", sim.mint_token())
        assert run_envoy(make_envoy(sim, tmp_path), warehouse, polls=3).success
    raw_polls = query(warehouse, "SELECT count(DISTINCT poll_id) FROM raw.envoy_responses")
    assert raw_polls == [(3,)]
    rows = query(
        warehouse,
        "SELECT count(*), count(DISTINCT (serial_number, last_report_at)) "
        "FROM envoy.inverter_readings",
    )
    assert rows[0][0] == rows[0][1] == SYSTEM.modules


def test_incremental_parse_reads_only_new_raw_rows(live_envoy, warehouse, tmp_path):
    resource = make_envoy(live_envoy, tmp_path)
    first = run_envoy(resource, warehouse)
    parsed_first = first.asset_materializations_for_node("envoy_readings")[0]
    raw_count = query(warehouse, "SELECT count(*) FROM raw.envoy_responses")[0][0]
    assert parsed_first.metadata["raw_answers_parsed"].value == raw_count

    readings = [k for k in ENVOY_KEYS if k.path[0] == "envoy"]
    again = run_envoy(resource, warehouse, selection=readings)
    meta = again.asset_materializations_for_node("envoy_readings")[0].metadata
    assert meta["raw_answers_parsed"].value == 0

    second = run_envoy(resource, warehouse)
    new_raw = query(warehouse, "SELECT count(*) FROM raw.envoy_responses")[0][0] - raw_count
    meta = second.asset_materializations_for_node("envoy_readings")[0].metadata
    assert meta["raw_answers_parsed"].value == new_raw > 0


def test_body_that_is_not_json_is_kept_raw_and_flagged(live_envoy, warehouse, tmp_path):
    live_envoy.fail_next(status=200, body="<html><h1>Oops</h1>", path_contains="production.json")
    result = run_envoy(make_envoy(live_envoy, tmp_path), warehouse)
    assert result.success  # the run goes on; the check says what went wrong
    raw = query(
        warehouse,
        "SELECT http_status, body FROM raw.envoy_responses "
        "WHERE endpoint = '/production.json?details=1'",
    )
    assert raw == [(200, "<html><h1>Oops</h1>")]
    check = _check(result, "envoy/production_readings", "raw_answers_well_formed")
    assert not check.passed and check.metadata["malformed_answers"].value == 1
    # The v1 summary filled in for the poll: a reading, from the fallback.
    assert query(
        warehouse, "SELECT count(*) FROM raw.envoy_responses WHERE endpoint = '/api/v1/production'"
    ) == [(1,)]
    assert query(warehouse, "SELECT DISTINCT source FROM envoy.production_readings") == [
        ("inverters",)
    ]


def test_unanswered_poll_is_recorded_and_not_fatal(live_envoy, warehouse, tmp_path):
    live_envoy.fail_next(count=10, close=True, path_contains="info")
    result = run_envoy(make_envoy(live_envoy, tmp_path), warehouse)
    assert result.success
    rows = query(warehouse, "SELECT endpoint, http_status, error FROM raw.envoy_responses")
    assert rows and all(r[0] == "/info" and r[1] is None and r[2] for r in rows)
    assert not _check(result, "raw/envoy_responses", "gateway_answered").passed


def test_jwt_is_fetched_from_enlighten_and_renewed_before_expiry(
    live_envoy, warehouse, tmp_path, monkeypatch
):
    monkeypatch.delenv("ENVOY_TOKEN")
    monkeypatch.setenv("ENLIGHTEN_USERNAME", live_envoy.username)
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", live_envoy.password)
    # A stored token with a day left: inside the 30-day renewal margin.
    expiring = live_envoy.mint_token(lifetime_s=86400)
    store = tmp_path / "envoy_token.json"
    store.write_text(
        json.dumps(
            {
                "token": expiring,
                "expires_at": int(time.time()) + 86400,
                "origin": "enlighten",
                "obtained_at": 0,
            }
        )
    )
    result = run_envoy(make_envoy(live_envoy, tmp_path), warehouse)
    assert result.success
    renewed = json.loads(store.read_text())
    assert renewed["token"] != expiring and renewed["origin"] == "enlighten"
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    meta = result.asset_materializations_for_node("raw__envoy_responses")[0].metadata
    assert meta["envoy_token_expires_in_days"].value > 300
    assert expiring not in failure_message(result)


def test_changed_certificate_is_refused_with_how_to_repin(warehouse, tmp_path, monkeypatch):
    with EnvoySimulator(SYSTEM, outage=None) as first:
        monkeypatch.setenv("ENVOY_TOKEN", first.mint_token())
        port = int(first.base_url.rsplit(":", 1)[1])
        assert run_envoy(make_envoy(first, tmp_path), warehouse).success
        pinned = json.loads((tmp_path / "envoy_cert_pin.json").read_text())["fingerprint"]
        assert pinned == first.cert_fingerprint
    # The same address now answers with another certificate.
    with EnvoySimulator(SYSTEM, outage=None) as second:
        second.stop()
        second.start(port=port)
        monkeypatch.setenv("ENVOY_TOKEN", second.mint_token())
        result = run_envoy(make_envoy(second, tmp_path), warehouse, raise_on_error=False)
        assert not result.success
        message = failure_message(result)
        assert second.cert_fingerprint in message and "re-pin" in message
        assert "ENVOY_CERT_FINGERPRINT" in message
        # Pinning the new certificate explicitly (colons, upper case) is accepted.
        fp = ":".join(second.cert_fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
        assert run_envoy(make_envoy(second, tmp_path, cert_fingerprint=fp), warehouse).success


def test_configured_pin_that_does_not_match_is_refused(live_envoy, warehouse, tmp_path):
    result = run_envoy(
        make_envoy(live_envoy, tmp_path, cert_fingerprint="ab" * 32),
        warehouse,
        raise_on_error=False,
    )
    assert not result.success
    assert "not the pinned " + "ab" * 32 in failure_message(result)


def test_digest_auth_on_pre_7_firmware(warehouse, tmp_path):
    with EnvoySimulator(SYSTEM, firmware="R4.10.35", auth="digest", outage=None) as sim:
        assert sim.base_url.startswith("http://")
        result = run_envoy(make_envoy(sim, tmp_path), warehouse)
        assert result.success
        assert sim.stats.digest_challenges > 0
    statuses = query(
        warehouse, "SELECT endpoint, http_status FROM raw.envoy_responses WHERE endpoint <> '/info'"
    )
    assert statuses and all(s == 200 for _, s in statuses)
    assert query(warehouse, "SELECT count(*) FROM envoy.production_readings")[0][0] > 0


def test_missing_url_names_the_variable(warehouse, tmp_path):
    from solar_pipeline.resources import EnvoyResource

    result = run_envoy(EnvoyResource(state_dir=str(tmp_path)), warehouse, raise_on_error=False)
    assert "ENVOY_URL" in failure_message(result)


@pytest.mark.parametrize("missing", ["ENVOY_TOKEN"])
def test_firmware_7_without_credentials_says_what_to_set(
    live_envoy, warehouse, tmp_path, monkeypatch, missing
):
    monkeypatch.delenv(missing)
    result = run_envoy(make_envoy(live_envoy, tmp_path), warehouse, raise_on_error=False)
    message = failure_message(result)
    assert "ENVOY_TOKEN" in message and "ENLIGHTEN_USERNAME" in message


def test_token_about_to_expire_warns(live_envoy, warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("ENVOY_TOKEN", live_envoy.mint_token(lifetime_s=3 * 86400))
    result = run_envoy(make_envoy(live_envoy, tmp_path), warehouse)
    assert result.success
    check = _check(result, "raw/envoy_responses", "envoy_token_not_expiring")
    assert not check.passed
    assert 2.9 < check.metadata["envoy_token_expires_in_days"].value <= 3


def test_busy_database_delays_raw_rows_but_loses_none(
    live_envoy, warehouse, tmp_path, monkeypatch, capfd
):
    import subprocess
    import sys
    import threading

    from solar_pipeline.warehouse import db

    with warehouse.connect():
        pass  # create the schema
    # Another process (a long re-parse, a notebook) holds the file until told to let go; our
    # lock wait is shortened so that the first poll's write gives up while it does.
    monkeypatch.setattr(db, "LOCK_WAIT_S", 0.3)
    hold = (
        f"import duckdb, sys; c = duckdb.connect({warehouse.path!r}); "
        "print('held', flush=True); sys.stdin.readline(); c.close()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"

    def release_after_the_first_poll() -> None:
        deadline = time.monotonic() + 60
        while not live_envoy.stats.requests.get("/ivp/meters/readings"):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(1.0)  # the first poll's write happens (and gives up) meanwhile
        holder.stdin.write("release\n")
        holder.stdin.flush()

    releaser = threading.Thread(target=release_after_the_first_poll)
    releaser.start()
    result = run_envoy(make_envoy(live_envoy, tmp_path), warehouse, polls=3, interval_s=3.0)
    releaser.join(timeout=10)
    holder.wait(timeout=10)
    assert result.success
    assert "answers kept for the next poll's write" in capfd.readouterr().err  # it was busy
    assert query(warehouse, "SELECT count(DISTINCT poll_id) FROM raw.envoy_responses") == [(3,)]
    meta = result.asset_materializations_for_node("raw__envoy_responses")[0].metadata
    stored = query(warehouse, "SELECT count(*) FROM raw.envoy_responses")[0][0]
    assert meta["responses_stored"].value == stored
