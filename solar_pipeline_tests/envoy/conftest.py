"""Fixtures for the gateway path: the Envoy simulator (live or replaying a fixture folder)
and the resource pointed at it, as definitions.py builds it."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from solar_pipeline.assets import envoy
from solar_pipeline.resources import DuckDBWarehouse, EnvoyResource
from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline_tests.conftest import SYSTEM

ENVOY_KEYS = [k for a in envoy.assets for k in a.keys]


def make_envoy(sim: EnvoySimulator, state_dir: Path, **overrides) -> EnvoyResource:
    fields: dict[str, Any] = dict(
        url=sim.base_url,
        state_dir=str(state_dir),
        enlighten_url=sim.enlighten_url,
        entrez_url=sim.entrez_url,
        retries=1,
        retry_backoff_s=0.01,
        read_timeout_s=5.0,
    )
    fields.update(overrides)
    return EnvoyResource(**fields)


def run_envoy(
    resource: EnvoyResource,
    warehouse: DuckDBWarehouse,
    polls: int = 1,
    interval_s: float = 0.0,
    selection: list[dg.AssetKey] | None = None,
    run_config: dict | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    config = run_config
    if config is None and (selection is None or selection[0].path[0] == "raw"):
        config = {
            "ops": {"raw__envoy_responses": {"config": {"polls": polls, "interval_s": interval_s}}}
        }
    return dg.materialize(
        envoy.assets,
        selection=selection or ENVOY_KEYS,
        resources={"envoy": resource, "warehouse": warehouse},
        run_config=config,
        raise_on_error=raise_on_error,
    )


@pytest.fixture
def live_envoy(monkeypatch) -> Iterator[EnvoySimulator]:
    """A firmware-8 gateway with the cloud simulator's system, a pasted owner token."""
    with EnvoySimulator(SYSTEM, firmware="D8.2.4345", outage=None) as sim:
        monkeypatch.setenv("ENVOY_TOKEN", sim.mint_token())
        yield sim
