"""Building days of data the way the pipeline would: the cloud through its assets, the Envoy
through the real client polling the simulator on a fake clock."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from solar_pipeline.assets import energy
from solar_pipeline.assets.envoy.ingest import ingest
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.simulator import solar_model
from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline.sources.envoy.client import EnvoyClient
from solar_pipeline.sources.envoy.poll import poll_once
from solar_pipeline.sources.envoy.tokens import EnvoyTokenProvider
from solar_pipeline.warehouse.envoy_raw import EnvoyRawWriter
from solar_pipeline_tests.conftest import SYSTEM


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def envoy_history(
    warehouse: DuckDBWarehouse,
    state: Path,
    first: date,
    last: date,
    step_s: int = 3600,
    skip: tuple[date, ...] = (),
    simulator: type[EnvoySimulator] = EnvoySimulator,
) -> None:
    """Poll a simulated gateway every `step_s` from local midnight of `first` to the midnight
    after `last` (skipping the `skip` days: the gateway was offline), store and parse.
    `simulator`: a variant of the gateway (one that reports odd serials, say)."""
    start, _ = solar_model.local_day_bounds(SYSTEM, first)
    _, end = solar_model.local_day_bounds(SYSTEM, last)
    clock = Clock(start)
    # Plain HTTP: the TLS path is tested elsewhere, and a handshake per request (the
    # simulator closes every connection) would triple the run time of a week of polls.
    with simulator(SYSTEM, outage=None, clock=clock, tls=False) as sim:
        writer = EnvoyRawWriter(warehouse.path)
        tokens = EnvoyTokenProvider(state / "envoy_token.json", configured=sim.mint_token())
        client = EnvoyClient(
            sim.base_url,
            state,
            tokens,
            writer.add,
            cert_fingerprint=sim.cert_fingerprint,
            clock=clock,
        )
        for t in range(start, end + step_s, step_s):
            clock.now = t
            if solar_model.local_date(SYSTEM, t) in skip and t != end:
                continue
            poll_once(client)
            assert client.info is not None, "the simulated gateway did not answer /info"
            writer.end_poll(client.info.serial, client.info.firmware)
            writer.flush()
    with warehouse.connect() as conn:
        ingest(conn)


def run_energy(
    warehouse: DuckDBWarehouse, first: str, last: str, instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        energy.assets,
        resources={"warehouse": warehouse},
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        instance=instance,
    )


def truth(day: date) -> dict[str, int]:
    return solar_model.daily_totals(SYSTEM, day)
