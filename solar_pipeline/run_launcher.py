"""Dagster's DefaultRunLauncher with a run-worker health check, so a run whose process was
killed is failed and its duckdb pool slot comes back.

Why: with DefaultRunLauncher a run executes as a subprocess of the code server that launched
it. A live code server notices a dead subprocess and fails the run itself, but when the server
dies too (container restart, power cut, OOM kill, `dagster dev` stopped) nobody does: the run
stays STARTED forever, keeps its slot in the limit-1 duckdb pool, and every later writer waits
("Step still blocked by limit for pool duckdb"). Dagster's run monitoring can fail such runs,
but it only asks launchers that support `check_run_worker_health`, which DefaultRunLauncher
does not. This one asks the run's code server (the address DefaultRunLauncher stored in the
run's tags) whether it is still executing the run:

- the server answers and does not know the run -> the worker died: FAILED;
- the server cannot be reached -> RUNNING for `unreachable_grace_seconds` (a restart or a busy
  server is no reason to fail a live run), then FAILED: its subprocesses went with it;
- a run without that tag (started in-process by `dagster asset materialize`) cannot be asked:
  RUNNING, left to `run_monitoring.max_runtime_seconds`.

Run monitoring then marks the run failed, and frees its slots `free_slots_after_run_end_seconds`
later (dagster.yaml). Configure it in dagster.yaml:

    run_launcher:
      module: solar_pipeline.run_launcher
      class: SupervisedRunLauncher
      config: {unreachable_grace_seconds: 120}
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Self

from dagster import Field, IntSource
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._serdes import ConfigurableClassData

# A code server restarting (the Compose healthcheck's 60 s start period, a Helm pod
# rescheduled) must not fail live runs; past two minutes its run subprocesses are gone.
DEFAULT_UNREACHABLE_GRACE_S = 120
ASK_TIMEOUT_S = 15


class SupervisedRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose runs run monitoring can see die."""

    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        unreachable_grace_seconds: int = DEFAULT_UNREACHABLE_GRACE_S,
    ):
        super().__init__(inst_data=inst_data)
        self._grace_s = unreachable_grace_seconds
        # run id -> when its code server first failed to answer (kept by the daemon's process).
        self._unreachable_since: dict[str, float] = {}

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "unreachable_grace_seconds": Field(
                IntSource, is_required=False, default_value=DEFAULT_UNREACHABLE_GRACE_S
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
        # Deferred like DefaultRunLauncher's own: the webserver imports launchers at start-up.
        from dagster._grpc.client import DagsterGrpcClient
        from dagster._grpc.types import CanCancelExecutionRequest, CanCancelExecutionResult
        from dagster._serdes import deserialize_value

        raw = run.tags.get(GRPC_INFO_TAG)
        if not raw:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not launched through a code server")
        info = json.loads(raw)
        where = info.get("socket") or f"{info.get('host')}:{info.get('port')}"
        client = DagsterGrpcClient(
            port=info.get("port"),
            socket=info.get("socket"),
            host=info.get("host", "localhost"),
            use_ssl=bool(info.get("use_ssl", False)),
        )
        try:
            answer = deserialize_value(
                client.can_cancel_execution(
                    CanCancelExecutionRequest(run_id=run.run_id), timeout=ASK_TIMEOUT_S
                ),
                CanCancelExecutionResult,
            )
        except Exception as exc:  # any transport error means "no answer", never "dead"
            first = self._unreachable_since.setdefault(run.run_id, time.time())
            silent_s = time.time() - first
            if silent_s < self._grace_s:
                return CheckRunHealthResult(
                    WorkerStatus.RUNNING,
                    f"code server {where} not answering for {silent_s:.0f} s "
                    f"({type(exc).__name__}); waiting up to {self._grace_s} s",
                    transient=True,
                )
            self._unreachable_since.pop(run.run_id, None)
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"the code server {where} that ran this run has not answered for "
                f"{silent_s:.0f} s: the run's process is gone with it",
            )
        self._unreachable_since.pop(run.run_id, None)
        if answer.can_cancel:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the code server {where} is not running this run: its process was killed "
            "(out of memory, container or server restart, kill -9)",
        )
