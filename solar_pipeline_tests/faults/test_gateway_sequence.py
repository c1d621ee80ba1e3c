"""One gateway going through every fault in turn, run after run as the schedule would poll it:
each poll's outcome is in raw.envoy_responses, every run ends (faults a person must fix fail
their run with a message, the others are recorded and the run succeeds), later polls work, and
no typed reading comes from anything but a well-formed answer."""

from __future__ import annotations

import json

import pytest

from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline.sources.envoy import poll
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.envoy.conftest import make_envoy, run_envoy
from solar_pipeline_tests.helpers import failure_message, query

PRODUCTION = "production.json"


@pytest.mark.slow
def test_fault_after_fault_every_poll_recorded_no_reading_invented(
    warehouse, tmp_path, monkeypatch
):
    sim = EnvoySimulator(SYSTEM, firmware="D8.2.4345", outage=None)
    sim.start()
    port = int(sim.base_url.rsplit(":", 1)[1])
    good_token = sim.mint_token()
    monkeypatch.setenv("ENVOY_TOKEN", good_token)
    # A short read timeout so a hung gateway costs a second, not 45.
    resource = make_envoy(sim, tmp_path, read_timeout_s=1.0)
    runs: list[tuple[str, bool, str]] = []

    def run(name: str) -> None:
        result = run_envoy(resource, warehouse, raise_on_error=False)
        runs.append((name, result.success, failure_message(result)))

    try:
        run("good")
        # Hung gateway: both attempts of production.json time out.
        sim.fail_next(count=2, status=None, hang_s=3, path_contains=PRODUCTION)
        run("timeout")
        sim.fail_next(count=2, status=503, path_contains=PRODUCTION)  # first try and the retry
        run("503")
        sim.fail_next(status=200, body="<html><h1>Busy</h1></html>", path_contains=PRODUCTION)
        run("html")
        # The first run's real answer, cut in half.
        cut = query(
            warehouse,
            "SELECT body FROM raw.envoy_responses WHERE endpoint = ? AND http_status = 200 "
            "ORDER BY id LIMIT 1",
            [poll.PRODUCTION],
        )[0][0]
        sim.fail_next(status=200, body=cut[: len(cut) // 2], path_contains=PRODUCTION)
        run("truncated")
        sim.stop()  # nothing listens on the port: connection refused
        run("refused")
        sim.start(port=port)  # back, same certificate
        run("good again")
        monkeypatch.setenv("ENVOY_TOKEN", sim.mint_token(lifetime_s=-60))  # expired owner JWT
        run("expired jwt")
        monkeypatch.setenv("ENVOY_TOKEN", good_token)
        run("token replaced")
    finally:
        sim.stop()
    # The same address now answers with another certificate.
    with EnvoySimulator(SYSTEM, firmware="D8.2.4345", outage=None) as other:
        other.stop()
        other.start(port=port)
        run("certificate changed")

    outcome = {name: ok for name, ok, _ in runs}
    messages = {name: message for name, _, message in runs}
    # What the gateway did is recorded and the run goes on; what a person must fix fails
    # the run and says how.
    assert outcome == {
        "good": True,
        "timeout": True,
        "503": True,
        "html": True,
        "truncated": True,
        "refused": True,
        "good again": True,
        "expired jwt": False,
        "token replaced": True,
        "certificate changed": False,
    }, messages
    assert "ENVOY_TOKEN" in messages["expired jwt"]
    assert "re-pin" in messages["certificate changed"]

    raw = query(
        warehouse,
        "SELECT id, run_id, endpoint, http_status, error FROM raw.envoy_responses ORDER BY id",
    )
    # Every run left its polls' answers (or the missing answer) in the raw table.
    assert len({r[1] for r in raw}) == len(runs), messages
    for r in raw:
        assert r[3] is not None or r[4], r  # a status, or the transport error
    production = [r for r in raw if r[2] == poll.PRODUCTION]
    assert any(r[3] is None and r[4] for r in production)  # timed out
    assert [r[3] for r in production].count(503) == 2
    assert any(r[2] == "/info" and r[3] is None and r[4] for r in raw)  # refused
    assert any(r[2] == "/auth/check_jwt" and r[3] == 401 for r in raw)  # expired JWT

    # No invented readings: every typed row points at a 200 answer that parses as JSON.
    well_formed = set()
    for row_id, status, body in query(
        warehouse, "SELECT id, http_status, body FROM raw.envoy_responses"
    ):
        try:
            if status == 200 and body is not None:
                json.loads(body)
                well_formed.add(row_id)
        except ValueError:
            pass
    for table in ("production_readings", "inverter_readings", "meter_readings"):
        ids = {r[0] for r in query(warehouse, f"SELECT DISTINCT raw_id FROM envoy.{table}")}
        assert ids and ids <= well_formed, table
    # CT readings come only from the polls whose production.json was intact (good, good again,
    # token replaced); the others fell back to the v1 inverter summary or gave no reading. A
    # reading is stored once per readingTime, so compare the times, not the answers.
    intact = [r[0] for r in production if r[0] in well_formed]
    assert len(intact) == 3
    bodies = query(warehouse, "SELECT body FROM raw.envoy_responses WHERE id IN ?", [intact])
    intact_times = {
        entry["readingTime"]
        for (body,) in bodies
        for entry in json.loads(body)["production"]
        if entry.get("type") == "eim"
    }
    eim_times = query(
        warehouse,
        "SELECT DISTINCT epoch(reading_at)::BIGINT FROM envoy.production_readings "
        "WHERE source = 'eim' AND measurement = 'production' AND phase IS NULL",
    )
    assert {t for (t,) in eim_times} == intact_times
    eim_ids = query(
        warehouse, "SELECT DISTINCT raw_id FROM envoy.production_readings WHERE source = 'eim'"
    )
    assert {i for (i,) in eim_ids} <= set(intact)
