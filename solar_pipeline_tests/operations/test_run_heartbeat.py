"""The run heartbeat and the launcher's verdict on it, on a real (SQLite) Dagster instance: runs
executed with the project's executor are stamped while they run, and SupervisedRunLauncher calls
a run dead only when its own process has been silent past the timeout. The full story (a real
daemon, a real SIGKILL, a code reload) is in test_killed_run.py."""

from __future__ import annotations

import json
import time

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from solar_pipeline.definitions import defs
from solar_pipeline.run_heartbeat import HEARTBEAT_TAG, heartbeat, heartbeat_of, with_heartbeat
from solar_pipeline.run_launcher import MIN_HEARTBEAT_TIMEOUT_S, SupervisedRunLauncher

TIMEOUT_S = 60
LAUNCHER = {
    "module": "solar_pipeline.run_launcher",
    "class": "SupervisedRunLauncher",
    "config": {"heartbeat_timeout_seconds": TIMEOUT_S},
}


@pytest.fixture
def instance():
    with dg.instance_for_test(overrides={"run_launcher": LAUNCHER}) as instance:
        assert isinstance(instance.run_launcher, SupervisedRunLauncher)
        yield instance


def _started_run(
    instance: dg.DagsterInstance, ago_s: float, tags=None, launched: bool = True
) -> dg.DagsterRun:
    """A run whose RUN_START was stored `ago_s` seconds ago, as its run worker would have;
    `launched`: through a code server (DefaultRunLauncher tags it with the server's address),
    not in the foreground."""

    @dg.op
    def noop() -> None: ...

    @dg.job
    def job() -> None:
        noop()

    if launched:
        tags = {GRPC_INFO_TAG: json.dumps({"host": "127.0.0.1", "port": 4000}), **(tags or {})}
    run = instance.create_run_for_job(job_def=job, tags=tags or {})
    start = DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name=run.job_name)
    instance.handle_new_event(
        EventLogEntry(
            error_info=None,
            level="DEBUG",
            user_message="",
            run_id=run.run_id,
            timestamp=time.time() - ago_s,
            dagster_event=start,
        )
    )
    stored = instance.get_run_by_id(run.run_id)
    assert stored is not None
    return stored


def _verdict(instance: dg.DagsterInstance, run: dg.DagsterRun):
    fresh = instance.get_run_by_id(run.run_id)  # what the daemon reads on its poll
    assert fresh is not None
    return instance.run_launcher.check_run_worker_health(fresh)


def test_a_launched_run_is_stamped_while_it_runs(instance) -> None:
    """A run executed the way the daemon's run worker executes it (not execute_in_process,
    which swaps the executor) carries a stamp from inside its own span."""
    before = time.time()
    with dg.execute_job(dg.reconstructable(_stamped_job), instance=instance) as result:
        assert result.success
        seen = result.output_for_node("read_own_stamp")
    run = instance.get_run_by_id(result.run_id)
    assert seen is not None and before - 1 <= seen <= time.time() + 1
    assert heartbeat_of(run) is not None


def test_every_job_of_the_code_location_stamps_its_runs() -> None:
    definitions = defs()
    jobs = [job.name for job in definitions.resolve_all_job_defs()]
    assert "enphase_cloud_job" in jobs and "envoy_job" in jobs
    for name in jobs:
        create = definitions.resolve_job_def(name).executor_def.executor_creation_fn
        assert getattr(create, "__qualname__", "").startswith("with_heartbeat."), name


@dg.op
def read_own_stamp(context) -> float | None:  # no annotation: this module's are strings
    return heartbeat_of(context.instance.get_run_by_id(context.run_id))


def _stamped_job() -> dg.JobDefinition:
    @dg.job(executor_def=with_heartbeat(dg.in_process_executor))
    def stamped() -> None:
        read_own_stamp()

    return stamped


def test_the_stamp_is_renewed_until_the_block_ends(instance) -> None:
    run = _started_run(instance, ago_s=0)
    stamps: list[str] = []
    original = instance.add_run_tags

    def recorded(run_id, new_tags):
        stamps.append(new_tags[HEARTBEAT_TAG])
        return original(run_id, new_tags)

    instance.add_run_tags = recorded  # count real writes
    with heartbeat(instance, run.run_id, every_s=0.2):
        time.sleep(1.1)
    after = len(stamps)
    time.sleep(0.5)
    assert after >= 4, stamps
    assert len(stamps) == after, "stamps after the run's block ended"
    assert heartbeat_of(instance.get_run_by_id(run.run_id)) == float(stamps[-1])


def test_a_broken_run_storage_does_not_fail_the_run(instance, caplog) -> None:
    run = _started_run(instance, ago_s=0)

    def broken(run_id, new_tags):
        raise OSError("disk I/O error")

    instance.add_run_tags = broken
    with heartbeat(instance, run.run_id, every_s=0.05):  # raises nothing
        time.sleep(0.3)
    warnings = [r for r in caplog.records if "could not stamp run" in r.getMessage()]
    assert len(warnings) == 1, "one warning per outage, not one per beat"


def test_a_fresh_stamp_is_alive(instance) -> None:
    run = _started_run(instance, ago_s=600)
    instance.add_run_tags(run.run_id, {HEARTBEAT_TAG: f"{time.time() - 5:.0f}"})
    assert _verdict(instance, run).status == WorkerStatus.RUNNING


def test_a_stale_stamp_is_dead_and_says_why(instance) -> None:
    run = _started_run(instance, ago_s=600)
    instance.add_run_tags(run.run_id, {HEARTBEAT_TAG: f"{time.time() - TIMEOUT_S - 30:.0f}"})
    verdict = _verdict(instance, run)
    assert verdict.status == WorkerStatus.FAILED
    assert "no heartbeat from the run's process for" in (verdict.msg or "")
    assert f"limit {TIMEOUT_S} s" in (verdict.msg or "")


def test_a_run_just_started_has_time_for_its_first_stamp(instance) -> None:
    run = _started_run(instance, ago_s=5)
    assert _verdict(instance, run).status == WorkerStatus.RUNNING


def test_a_run_that_never_stamped_is_dead_after_the_timeout(instance) -> None:
    run = _started_run(instance, ago_s=TIMEOUT_S + 30)
    verdict = _verdict(instance, run)
    assert verdict.status == WorkerStatus.FAILED
    assert "has not sent a heartbeat" in (verdict.msg or "")


def test_a_foreground_run_without_a_stamp_is_left_to_max_runtime(instance) -> None:
    """`dg.materialize` and `envoy-reparse` run in the foreground with Dagster's own executor,
    which does not stamp: a long one must not be failed while it runs."""
    run = _started_run(instance, ago_s=TIMEOUT_S * 10, launched=False)
    verdict = _verdict(instance, run)
    assert verdict.status == WorkerStatus.RUNNING
    assert "cannot be checked" in (verdict.msg or "")
    # A stamp it did write still counts (a `dagster asset materialize` run that was killed).
    instance.add_run_tags(run.run_id, {HEARTBEAT_TAG: f"{time.time() - TIMEOUT_S - 30:.0f}"})
    assert _verdict(instance, run).status == WorkerStatus.FAILED


def test_an_inherited_stamp_does_not_count(instance) -> None:
    """A re-executed run copies its parent's tags: the parent's last stamp is no proof of life,
    whether it is recent enough to pass or not."""
    parent_beat = f"{time.time() - TIMEOUT_S - 200:.0f}"
    # Just started: not a stale stamp of its own, only no stamp yet.
    young = _started_run(instance, ago_s=5, tags={HEARTBEAT_TAG: parent_beat})
    assert _verdict(instance, young).status == WorkerStatus.RUNNING
    # Started long ago and never stamped: dead, and said so as "never", not "stale".
    dead = _started_run(instance, ago_s=TIMEOUT_S + 30, tags={HEARTBEAT_TAG: parent_beat})
    verdict = _verdict(instance, dead)
    assert verdict.status == WorkerStatus.FAILED
    assert "has not sent a heartbeat" in (verdict.msg or "")


@pytest.mark.parametrize("value", ["", "yesterday", "nan", "inf", "-inf", "1e400"])
def test_an_unreadable_stamp_counts_as_none(instance, value) -> None:
    run = _started_run(instance, ago_s=TIMEOUT_S + 30, tags={HEARTBEAT_TAG: value})
    assert heartbeat_of(instance.get_run_by_id(run.run_id)) is None
    assert _verdict(instance, run).status == WorkerStatus.FAILED


def test_a_timeout_below_three_beats_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="heartbeat_timeout_seconds must be at least"):
        SupervisedRunLauncher(heartbeat_timeout_seconds=MIN_HEARTBEAT_TIMEOUT_S - 1)
