"""deploy/dagster.postgres.yaml against the real PostgreSQL server: real runs of the cloud and
Envoy assets through the dagster CLI, then the runs and materializations read back from
Postgres with SQL, not through Dagster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg2

from solar_pipeline_tests.helpers import ROOT
from solar_pipeline_tests.operations.conftest import PG, cli_env, postgres_instance_home

DAGSTER = str(Path(sys.executable).parent / "dagster")
CLOUD = "raw/enphase_responses,enphase/production_intervals,enphase/daily_energy"
ENVOY = "raw/envoy_responses,envoy/production_readings,envoy/inverter_readings,envoy/meter_readings"


def materialize(env: dict[str, str], select: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            DAGSTER,
            "asset",
            "materialize",
            "-m",
            "solar_pipeline.definitions",
            "--select",
            select,
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_runs_and_materializations_are_stored_in_postgres(stack, pg_database, tmp_path):
    env = cli_env(**stack.env, **postgres_instance_home(tmp_path / "dagster_home", pg_database))
    cloud = materialize(env, CLOUD, "--partition-range", "2026-11-20...2026-11-22")
    assert cloud.returncode == 0, cloud.stderr[-3000:]
    envoy = materialize(env, ENVOY)
    assert envoy.returncode == 0, envoy.stderr[-3000:]

    # Nothing went to a SQLite file beside the instance: the storage really is Postgres.
    assert not list((tmp_path / "dagster_home").rglob("*.db"))
    with psycopg2.connect(dbname=pg_database, **PG) as conn, conn.cursor() as cur:
        cur.execute("SELECT run_id, status, run_body FROM runs ORDER BY create_timestamp")
        runs = cur.fetchall()
        assert [r[1] for r in runs] == ["SUCCESS", "SUCCESS"]
        tags = [json.loads(r[2])["tags"] for r in runs]
        assert tags[0]["dagster/asset_partition_range_start"] == "2026-11-20"
        assert tags[0]["dagster/asset_partition_range_end"] == "2026-11-22"

        cur.execute(
            "SELECT run_id, asset_key, partition FROM event_logs "
            "WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
        )
        materialized = cur.fetchall()
    by_run: dict[str, set] = {run_id: set() for run_id, *_ in runs}
    for run_id, key, partition in materialized:
        by_run[run_id].add((tuple(json.loads(key)), partition))
    cloud_run, envoy_run = (r[0] for r in runs)
    days = ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert by_run[cloud_run] == {
        (tuple(key.split("/")), day) for key in CLOUD.split(",") for day in days
    }
    assert by_run[envoy_run] == {(tuple(key.split("/")), None) for key in ENVOY.split(",")}
