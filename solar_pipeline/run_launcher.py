"""Dagster's DefaultRunLauncher with a run-worker health check, so a run whose process was
killed is failed and its duckdb pool slot comes back.

Why: with DefaultRunLauncher a run executes as a subprocess of the code server that launched
it. A live code server notices a dead subprocess and fails the run itself, but when the server
dies too (container restart, power cut, OOM kill, `dagster dev` stopped) nobody does: the run
stays STARTED forever, keeps its slot in the limit-1 duckdb pool, and every later writer waits
("Step still blocked by limit for pool duckdb"). Dagster's run monitoring can fail such runs,
but it only asks launchers that support `check_run_worker_health`, which DefaultRunLauncher
does not.

This one judges a run by its heartbeat (solar_pipeline/run_heartbeat.py), which the run's own
process stamps every 15 s into the instance's run storage:

- a stamp younger than `heartbeat_timeout_seconds` -> RUNNING;
- an older one -> FAILED: the process that wrote it is gone;
- no stamp yet on a run launched through a code server: RUNNING for
  `heartbeat_timeout_seconds` after the run started (its process is still starting up), then
  FAILED;
- no stamp on a run started in the foreground with `execute_in_process` (`dg.materialize`,
  `solar-pipeline envoy-reparse`): such runs swap in Dagster's own executor, so they never
  stamp, and silence proves nothing; RUNNING, left to `run_monitoring.max_runtime_seconds`.
  (`dagster asset materialize` uses the job's executor, so its runs do stamp.)

Asking the code server instead would fail live runs: `dagster code-server start` replaces its
inner server on "Reload definitions", and the new one does not know the old one's runs.

Run monitoring then marks the run failed, and frees its slots `free_slots_after_run_end_seconds`
later (dagster.yaml). Configure it in dagster.yaml:

    run_launcher:
      module: solar_pipeline.run_launcher
      class: SupervisedRunLauncher
      config: {heartbeat_timeout_seconds: 120}
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Self

from dagster import Field, IntSource
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._serdes import ConfigurableClassData

from solar_pipeline.run_heartbeat import HEARTBEAT_EVERY_S, heartbeat_of

# Eight missed stamps: a run process starved by a busy Raspberry Pi for a minute is not dead.
DEFAULT_HEARTBEAT_TIMEOUT_S = 120
# Below three missed stamps one slow write would fail a live run.
MIN_HEARTBEAT_TIMEOUT_S = 3 * HEARTBEAT_EVERY_S


class SupervisedRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose runs run monitoring can see die."""

    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        heartbeat_timeout_seconds: int = DEFAULT_HEARTBEAT_TIMEOUT_S,
    ):
        if heartbeat_timeout_seconds < MIN_HEARTBEAT_TIMEOUT_S:
            raise ValueError(
                f"run_launcher.config.heartbeat_timeout_seconds must be at least "
                f"{MIN_HEARTBEAT_TIMEOUT_S} (runs stamp their heartbeat every "
                f"{HEARTBEAT_EVERY_S} s), not {heartbeat_timeout_seconds}"
            )
        super().__init__(inst_data=inst_data)
        self._timeout_s = heartbeat_timeout_seconds

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "heartbeat_timeout_seconds": Field(
                IntSource, is_required=False, default_value=DEFAULT_HEARTBEAT_TIMEOUT_S
            )
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        return cls(inst_data=inst_data, **config_value)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        now = time.time()
        record = self._instance.get_run_record_by_id(run.run_id)
        started = (record.start_time if record else None) or now
        beat = heartbeat_of(run)
        # A re-executed run inherits its parent's tags, stamp included: only its own count.
        if beat is not None and beat >= started - 1:
            silent_s = now - beat
            if silent_s <= self._timeout_s:
                return CheckRunHealthResult(WorkerStatus.RUNNING, f"alive {silent_s:.0f} s ago")
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"no heartbeat from the run's process for {silent_s:.0f} s (limit "
                f"{self._timeout_s} s): it was killed (out of memory, container or server "
                "restart, kill -9)",
            )
        if GRPC_INFO_TAG not in run.tags:
            return CheckRunHealthResult(
                WorkerStatus.RUNNING,
                "started in the foreground without a heartbeat: cannot be checked",
            )
        running_s = now - started
        if running_s <= self._timeout_s:
            return CheckRunHealthResult(
                WorkerStatus.RUNNING, f"started {running_s:.0f} s ago, no heartbeat yet"
            )
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the run's process has not sent a heartbeat in the {running_s:.0f} s since the "
            f"run started (limit {self._timeout_s} s): it died while starting",
        )
