"""No token, password or API key in logs, the Dagster event log, metadata or the raw tables."""

import logging
import time

import dagster as dg

from solar_pipeline.assets import enphase
from solar_pipeline.definitions import build_resources
from solar_pipeline.partitions import DAILY
from solar_pipeline.settings import Settings
from solar_pipeline.sources.enphase.tokens import FileTokenStore
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.helpers import query


def test_no_secret_reaches_logs_event_log_or_tables(
    sim, seeded, tmp_path, monkeypatch, caplog, capfd
):
    monkeypatch.setenv("SOLAR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ENPHASE_API_URL", sim.base_url)
    monkeypatch.setenv("ENPHASE_API_KEY", sim.api_key)
    monkeypatch.setenv("ENPHASE_CLIENT_ID", sim.client_id)
    monkeypatch.setenv("ENPHASE_CLIENT_SECRET", sim.client_secret)
    monkeypatch.setenv("ENPHASE_SYSTEM_ID", str(SYSTEM.system_id))
    resources = build_resources(Settings.from_env())
    today = DAILY.get_partition_key_for_timestamp(time.time())
    sim.expire_access_tokens()  # make the run go through a 401 and a refresh as well
    caplog.set_level(logging.DEBUG)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            enphase.assets, resources=resources, partition_key=today, instance=instance
        )
        assert result.success
        events = instance.all_logs(result.run_id)
        event_log = "\n".join(repr(e) + str(e.dagster_event) for e in events)

    pair = FileTokenStore(tmp_path / "enphase_tokens.json").read()
    secrets = {
        "seed refresh token": seeded,
        "access token": pair.access_token,
        "refresh token": pair.refresh_token,
        "api key": sim.api_key,
        "client secret": sim.client_secret,
    }
    out, err = capfd.readouterr()
    warehouse = resources["warehouse"]
    tables = "\n".join(
        str(r)
        for r in query(warehouse, "SELECT query, body, error FROM raw.enphase_responses")
        + query(warehouse, "SELECT * FROM ops.api_requests")
    )
    places = {
        "python logs": caplog.text,
        "stdout/stderr": out + err,
        "dagster event log": event_log,
        "tables": tables,
    }
    assert len(event_log) > 1000 and "enphase_responses" in event_log
    for name, secret in secrets.items():
        for place, text in places.items():
            assert secret not in text, f"{name} leaked into {place}"
