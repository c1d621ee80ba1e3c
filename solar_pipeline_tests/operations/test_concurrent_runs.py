"""Several runs at once under the real daemon and run coordinator, on the Postgres instance,
with the processes of deploy/docker-compose.yml: a gRPC code server, and the daemon talking
to it through a workspace file (runs are subprocesses of the code server):
a 90-day single-run backfill of the cloud assets, Envoy poll runs and energy rebuilds launched
while it runs (as the schedules would), and one more cloud run cancelled while it holds the
DuckDB pool slot. Every run is a real process started by the code server, as in production.

Expected: the cancelled run is CANCELED and every other run SUCCESS; no DuckDB lock error
anywhere in the event log; the backfill's days are all complete; every Envoy poll was stored;
and no pool slot stays claimed once the runs are over.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import psycopg2
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef

from solar_pipeline.constants import DUCKDB_POOL
from solar_pipeline.partitions import DAILY
from solar_pipeline_tests.helpers import ROOT
from solar_pipeline_tests.operations.conftest import (
    BIN,
    PG,
    Deployment,
    cli_env,
    postgres_instance_home,
    wait_for,
)

BACKFILL = ("2026-08-01", "2026-10-29")  # 90 days, with the 25-hour day of 2026-10-25
VICTIM = ("2026-02-01", "2026-07-31")  # big enough to still be running when it is cancelled
ENVOY_RUNS, POLLS = 3, 3
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

pytestmark = pytest.mark.slow


def five_minute_intervals(first: str, last: str) -> int:
    day, end, total = date.fromisoformat(first), date.fromisoformat(last), 0
    while day <= end:
        window = DAILY.time_window_for_partition_key(day.isoformat())
        # Timestamps, not datetime subtraction, which ignores a DST change within one zone.
        total += int((window.end.timestamp() - window.start.timestamp()) // 300)
        day += timedelta(days=1)
    return total


def launch(env: dict[str, str], job: str, run_id: str, tags=None, config=None) -> subprocess.Popen:
    """`dagster job launch`: the run goes to the queue, and the daemon starts it."""
    args = [str(BIN / "dagster"), "job", "launch", "-w", env["TEST_WORKSPACE"], "-j", job]
    args += ["--run-id", run_id, "--tags", json.dumps(tags or {})]
    if config:
        args += ["--config-json", json.dumps(config)]
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def failures(instance: dg.DagsterInstance, ids: dict[str, str]) -> str:
    """What a user would read in the UI for every run that did not succeed."""
    out = []
    for name, run_id in ids.items():
        for event in instance.all_logs(run_id):
            if event.dagster_event is not None and event.dagster_event.event_type in (
                dg.DagsterEventType.STEP_FAILURE,
                dg.DagsterEventType.RUN_FAILURE,  # stored as "PIPELINE_FAILURE"
                dg.DagsterEventType.ENGINE_EVENT,
            ):
                out.append(f"{name}: {event.dagster_event.message or event.user_message}")
                error = getattr(event.dagster_event.event_specific_data, "error", None)
                while error is not None:
                    out.append(f"    {error.message.strip()[:500]}")
                    error = error.cause
    return "\n".join(out)[-6000:]


def test_overlapping_runs_under_the_daemon(stack, pg_database, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    settings = postgres_instance_home(home, pg_database)
    # The deployment file, with only the slot-freeing delay shortened so the test can watch it.
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    config["run_monitoring"].update(free_slots_after_run_end_seconds=5, poll_interval_seconds=2)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    env = cli_env(**stack.env, **settings)
    for key, value in settings.items():
        monkeypatch.setenv(key, value)

    deployment = Deployment(tmp_path, env)
    deployment.start_code_server()
    deployment.start_daemon()
    ids = {name: str(uuid.uuid4()) for name in ["backfill", "victim", "energy"]}
    ids.update({f"envoy{i}": str(uuid.uuid4()) for i in range(ENVOY_RUNS)})
    try:
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
            backfill = {
                "dagster/asset_partition_range_start": BACKFILL[0],
                "dagster/asset_partition_range_end": BACKFILL[1],
                "dagster/backfill": "ninety-days",
            }
            victim = {
                "dagster/asset_partition_range_start": VICTIM[0],
                "dagster/asset_partition_range_end": VICTIM[1],
            }
            poll = {"ops": {"raw__envoy_responses": {"config": {"polls": POLLS, "interval_s": 0}}}}
            # The victim goes first in the queue, so the others are waiting on its slot when
            # it is cancelled: they can only finish if the cancel frees the slot.
            first = launch(env, "enphase_cloud_job", ids["victim"], victim)
            first.wait(timeout=180)
            launches = [first, launch(env, "enphase_cloud_job", ids["backfill"], backfill)]
            launches += [
                launch(env, "envoy_job", ids[f"envoy{i}"], config=poll) for i in range(ENVOY_RUNS)
            ]
            launches.append(
                launch(env, "energy_job", ids["energy"], {"dagster/partition": BACKFILL[1]})
            )
            for proc in launches:
                out = proc.communicate(timeout=180)[0].decode()
                assert proc.returncode == 0, out[-2000:]

            def victim_holds_the_pool():
                run = instance.get_run_by_id(ids["victim"])
                assert run.status.value not in TERMINAL, f"victim ended first: {run.status}"
                info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
                return any(slot.run_id == ids["victim"] for slot in info.claimed_slots)

            wait_for(victim_holds_the_pool, 240, "the victim run to claim the DuckDB slot", 0.2)
            instance.run_coordinator.cancel_run(ids["victim"])

            def statuses():
                runs = {name: instance.get_run_by_id(rid) for name, rid in ids.items()}
                done = {name: run.status.value for name, run in runs.items()}
                return done if set(done.values()) <= TERMINAL else None

            done = wait_for(statuses, 420, "every run to finish")
            expected = {name: "SUCCESS" for name in ids} | {"victim": "CANCELED"}
            assert done == expected, failures(instance, ids)

            def no_slot_claimed():
                info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
                return not info.claimed_slots and not info.pending_steps

            wait_for(no_slot_claimed, 60, "the DuckDB pool slots to be free")
    finally:
        deployment.stop()

    with psycopg2.connect(dbname=pg_database, **PG) as conn, conn.cursor() as cur:
        cur.execute("SELECT event FROM event_logs")
        events = "\n".join(row[0] for row in cur.fetchall())
    assert "ASSET_MATERIALIZATION" in events
    for message in ("Could not set lock", "Conflicting lock", "database is locked"):
        assert message not in events

    con = duckdb.connect(str(Path(stack.env["SOLAR_DATA_DIR"]) / "solar.duckdb"), read_only=True)
    try:
        intervals, rows, distinct_rows = con.execute(
            "SELECT count(DISTINCT end_at), count(*), count(DISTINCT (end_at, source)) "
            "FROM enphase.production_intervals "
            "WHERE end_at > ? AND end_at <= ?",
            [
                DAILY.time_window_for_partition_key(BACKFILL[0]).start,
                DAILY.time_window_for_partition_key(BACKFILL[1]).end,
            ],
        ).fetchone()
        polls = dict(
            con.execute(
                "SELECT run_id, count(DISTINCT poll_id) FROM raw.envoy_responses GROUP BY run_id"
            ).fetchall()
        )
    finally:
        con.close()
    assert intervals == five_minute_intervals(*BACKFILL)
    assert rows == distinct_rows  # nothing written twice by overlapping runs
    for i in range(ENVOY_RUNS):
        assert polls.get(ids[f"envoy{i}"]) == POLLS
