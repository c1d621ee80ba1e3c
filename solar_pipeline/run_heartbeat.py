"""A run's heartbeat: the process that executes a run's steps stamps the run every few seconds,
so anyone sharing the Dagster instance can tell a live run from one whose process was killed.

Why a heartbeat and not "ask the code server": a run executes as a subprocess of the code
server that launched it, and `dagster code-server start` (our image's command, the Compose and
Helm deployments) replaces its inner server on every "Reload definitions" while the old one
finishes its runs; asked about such a run, the new server says "not mine" although the run is
alive. A stamp written by the run's own process is true whatever happened to the servers, and
it is the same on every host: it lives in the instance's run storage (SQLite under
DAGSTER_HOME, or Postgres), which the daemon reads.

The stamp is a run tag, so it goes away with the run when run retention purges it, and it shows
in the UI's run tags as the time the run was last seen alive. It is the run host's clock that
the daemon compares with its own: hosts whose clocks disagree by more than the timeout (no NTP)
would see live runs as dead.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.base import Executor

# Unix seconds of the run process's last sign of life.
HEARTBEAT_TAG = "solar_pipeline/heartbeat"
# A stamp per 15 s is a few writes a minute per running run; the daemon calls a run dead only
# after several missed stamps (SupervisedRunLauncher's heartbeat_timeout_seconds).
HEARTBEAT_EVERY_S = 15

log = logging.getLogger(__name__)


def heartbeat_of(run: dg.DagsterRun) -> float | None:
    """The run's last stamp in Unix seconds, or None if it has none (or an unreadable one)."""
    raw = run.tags.get(HEARTBEAT_TAG)
    try:
        stamp = float(raw) if raw is not None else None
    except ValueError:
        return None
    # "inf" parses, and would keep a dead run alive forever.
    return stamp if stamp is not None and math.isfinite(stamp) else None


@contextmanager
def heartbeat(instance: dg.DagsterInstance, run_id: str, every_s: float = HEARTBEAT_EVERY_S):
    """Stamp the run now and then every `every_s` seconds until the block ends."""
    stop = threading.Event()

    def beat() -> None:
        failing = False
        while True:
            try:
                instance.add_run_tags(run_id, {HEARTBEAT_TAG: f"{time.time():.0f}"})
                failing = False
            except Exception as exc:  # a storage hiccup must not fail the run
                if not failing:  # once per outage, not every 15 s
                    log.warning("could not stamp run %s as alive: %s", run_id, exc)
                failing = True
            if stop.wait(every_s):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{run_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every_s)


class HeartbeatExecutor(Executor):
    """Any executor, plus the run's heartbeat for as long as its orchestration loop runs (which
    includes the time a step waits for its pool slot)."""

    def __init__(self, inner: Executor):
        self._inner = inner

    @property
    def retries(self) -> RetryMode:
        return self._inner.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._inner.step_dependency_config

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[dg.DagsterEvent]:
        with heartbeat(plan_context.instance, plan_context.run_id):
            yield from self._inner.execute(plan_context, execution_plan)


def with_heartbeat(base: dg.ExecutorDefinition) -> dg.ExecutorDefinition:
    """`base` (same name and config) whose runs stamp their heartbeat."""
    create = base.executor_creation_fn
    assert create is not None, f"executor {base.name} has no creation function"

    def create_with_heartbeat(init_context: dg.InitExecutorContext) -> Executor:
        return HeartbeatExecutor(create(init_context))

    return dg.ExecutorDefinition(
        name=base.name,
        # Dagster takes the base's schema object as is (a configured executor's keeps its
        # config mapping); its annotation leaves that type out.
        config_schema=base.config_schema,  # type: ignore[arg-type]
        requirements=base.get_requirements,
        executor_creation_fn=create_with_heartbeat,
        description=base.description,
    )
