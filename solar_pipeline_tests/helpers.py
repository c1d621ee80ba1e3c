"""Running the real assets the way the CLI and the UI do: one run, a partition range."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster._core.execution.plan.objects import StepFailureData

from solar_pipeline.assets import enphase
from solar_pipeline.resources import DuckDBWarehouse, EnphaseCloudResource

ROOT = Path(__file__).resolve().parents[1]

ALL_CLOUD = [a.key for a in enphase.assets]
TELEMETRY = [
    dg.AssetKey(["raw", "enphase_responses"]),
    dg.AssetKey(["enphase", "production_intervals"]),
    dg.AssetKey(["enphase", "consumption_intervals"]),
    dg.AssetKey(["enphase", "daily_energy"]),
]


def run_range(
    enphase_resource: EnphaseCloudResource,
    warehouse: DuckDBWarehouse,
    first: str,
    last: str,
    selection: list[dg.AssetKey] | None = None,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
    run_config: dict[str, Any] | None = None,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        enphase.assets,
        selection=selection or TELEMETRY,
        resources={"enphase": enphase_resource, "warehouse": warehouse},
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        instance=instance,
        raise_on_error=raise_on_error,
        run_config=run_config,
    )


def query(warehouse: DuckDBWarehouse, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(warehouse.path, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The step failure with its chain of causes: what a user reads in the UI."""
    parts = []
    for event in result.get_step_failure_events():
        data = event.event_specific_data
        error = data.error if isinstance(data, StepFailureData) else None
        while error is not None:
            parts.append(error.message)
            error = error.cause
    return "\n".join(parts)


def dagster_cli(*args: str, **settings: str) -> subprocess.CompletedProcess:
    """The `dagster` command of this virtualenv, run from the project root as a user would,
    with these settings added to the environment and no DAGSTER_HOME (an ephemeral instance)."""
    env = {**os.environ, **settings}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def free_port() -> int:
    """A loopback port nobody listens on right now (for servers the tests start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
