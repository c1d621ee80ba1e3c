"""A run killed with SIGKILL while it holds the duckdb pool slot, under the real daemon and code
server of a deployment: the next writer must get the slot back within a bounded time, on the
local (SQLite) instance file and on the Postgres one. And the other side of that verdict: a live
run is not failed when the code server is reloaded under it (the UI's "Reload definitions").

Two kills: the run's worker process alone (the code server notices), and the code server with
its run subprocesses (a container restart, a power cut: nobody is left to notice, so before
SupervisedRunLauncher the run stayed STARTED and held the slot forever). The instance files are
the shipped ones with only their waits shortened (poll interval, slot-freeing delay, heartbeat
timeout), so the bound the test checks scales to the one dagster.yaml states."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef

from solar_pipeline.constants import DUCKDB_POOL
from solar_pipeline.run_heartbeat import HEARTBEAT_TAG
from solar_pipeline.run_launcher import MIN_HEARTBEAT_TIMEOUT_S
from solar_pipeline_tests.helpers import ROOT
from solar_pipeline_tests.operations.conftest import (
    Deployment,
    cli_env,
    postgres_instance_home,
    wait_for,
)
from solar_pipeline_tests.operations.test_concurrent_runs import failures, launch

pytestmark = pytest.mark.slow

# Shortened waits; the shipped ones are asserted in deploy/test_deploy_files.py.
WAITS = {"poll_interval_seconds": 2, "free_slots_after_run_end_seconds": 3}
TIMEOUT_S = MIN_HEARTBEAT_TIMEOUT_S
# timeout + poll + free slots + poll, with room for a loaded 2-core machine and a run's start-up.
BOUND_S = TIMEOUT_S + 75


def _instance_home(kind: str, home: Path, pg_database: str) -> dict[str, str]:
    if kind == "postgres":
        settings = postgres_instance_home(home, pg_database)
    else:
        home.mkdir()
        (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
        settings = {"DAGSTER_HOME": str(home)}
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    config["run_monitoring"].update(WAITS)
    if "run_launcher" in config:
        config["run_launcher"].setdefault("config", {})["heartbeat_timeout_seconds"] = TIMEOUT_S
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return settings


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    for event in instance.all_logs(run_id):
        message = (event.dagster_event.message if event.dagster_event else "") or ""
        if message.startswith("Started process for run (pid: "):
            return int(message.split("pid: ")[1].split(")")[0])
    raise AssertionError("no 'Started process for run' event")


@pytest.mark.parametrize(
    ("kind", "kill"),
    [("sqlite", "code server"), ("postgres", "code server"), ("sqlite", "run worker")],
)
def test_a_killed_run_gives_its_pool_slot_back(
    stack, pg_database, tmp_path, monkeypatch, kind, kill
):
    home = tmp_path / "dagster_home"
    settings = _instance_home(kind, home, pg_database)
    for key, value in settings.items():  # this process reads the same instance
        monkeypatch.setenv(key, value)
    env = cli_env(**stack.env, **settings)
    deployment = Deployment(tmp_path, env)
    code = deployment.start_code_server()
    deployment.start_daemon()
    ids = {"killed": str(uuid.uuid4()), "next": str(uuid.uuid4())}
    try:
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:

            def holders() -> set[str]:
                info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
                return {slot.run_id for slot in info.claimed_slots}

            # Every cloud answer slow, so the run is surely inside a pooled step when killed.
            stack.cloud.slow_next(60, 100)
            tags = {"dagster/partition": "2026-11-20"}
            assert launch(env, "enphase_cloud_job", ids["killed"], tags).wait(120) == 0
            wait_for(lambda: ids["killed"] in holders(), 180, "the run to hold the slot")
            if kill == "run worker":
                os.kill(_worker_pid(instance, ids["killed"]), signal.SIGKILL)
            else:
                os.killpg(code.pid, signal.SIGKILL)
                code.wait()
                deployment.start_code_server()  # what Compose's restart or Kubernetes does
            stack.cloud.clear_slow()

            tags = {"dagster/partition": "2026-11-21"}
            assert launch(env, "enphase_cloud_job", ids["next"], tags).wait(120) == 0

            def finished(run_id: str) -> str | None:
                run = instance.get_run_by_id(run_id)
                return run.status.value if run and run.is_finished else None

            try:
                wait_for(lambda: finished(ids["next"]), BOUND_S, "the next run to finish", 1.0)
            except AssertionError as exc:
                killed = instance.get_run_by_id(ids["killed"])
                raise AssertionError(
                    f"{exc}: the killed run is {killed.status.value if killed else None} and "
                    f"the duckdb slot is held by {holders()}"
                ) from None
            assert finished(ids["next"]) == "SUCCESS", failures(instance, ids)
            assert finished(ids["killed"]) == "FAILURE"
            if kill == "code server":
                # The launcher's verdict, not the code server's or a timeout's.
                said = " ".join(e.message for e in instance.all_logs(ids["killed"]))
                assert re.search(r"no heartbeat from the run's process for \d+ s", said), said
            wait_for(lambda: not holders(), 30, "every slot to be free")
    finally:
        deployment.stop()


def test_a_live_run_survives_a_code_reload(stack, tmp_path, monkeypatch):
    """ "Reload definitions" makes `dagster code-server start` replace its inner server; the old
    one finishes its runs. The run must go on and succeed, not be failed as dead."""
    from dagster._grpc.client import DagsterGrpcClient

    home = tmp_path / "dagster_home"
    settings = _instance_home("sqlite", home, "")
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    env = cli_env(**stack.env, **settings)
    deployment = Deployment(tmp_path, env)
    deployment.start_code_server()
    deployment.start_daemon()
    run_id = str(uuid.uuid4())
    try:
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
            # Every answer slow (within the client's read timeout), so the run outlives the
            # heartbeat timeout by several polls of the daemon.
            stack.cloud.slow_next(20, 1000)
            tags = {"dagster/partition": "2026-11-20"}
            assert launch(env, "enphase_cloud_job", run_id, tags).wait(120) == 0

            def status() -> str:
                run = instance.get_run_by_id(run_id)
                return run.status.value if run else "NONE"

            wait_for(lambda: status() == "STARTED", 180, "the run to start")
            DagsterGrpcClient(port=deployment.port, host="127.0.0.1").reload_code(timeout=120)
            # Past the timeout, and every poll of the daemon in it found the run alive.
            time.sleep(TIMEOUT_S + 3 * WAITS["poll_interval_seconds"])
            stack.cloud.clear_slow()
            assert status() == "STARTED", failures(instance, {"run": run_id})
            run = instance.get_run_by_id(run_id)
            assert run is not None and HEARTBEAT_TAG in run.tags
            wait_for(lambda: instance.get_run_by_id(run_id).is_finished, 300, "the run to end")
            assert status() == "SUCCESS", failures(instance, {"run": run_id})
    finally:
        deployment.stop()
