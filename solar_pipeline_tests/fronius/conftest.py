"""Fronius fixtures: a simulator per model on a settable clock, and a client that records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from solar_pipeline.simulator.fronius import FroniusSimulator
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.sources.fronius.client import FroniusClient, FroniusResponse

TZ = "Europe/Amsterdam"
# A recent operational date keeps the lifetime counters cheap to build.
SPEC = SystemSpec(system_id=7301, timezone=TZ, operational_date=date(2026, 1, 1))
NOON = datetime(2026, 6, 15, 10, 0, 3, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_client(
    sim: FroniusSimulator, records: list[FroniusResponse], **overrides
) -> FroniusClient:
    fields: dict[str, Any] = dict(
        realtime_spacing_s=0.0, archive_spacing_s=0.0, retries=2, backoff=0.01
    )
    fields.update(overrides)
    return FroniusClient(sim.base_url, sim.spec.timezone, records.append, **fields)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


@pytest.fixture
def datamanager(clock: Clock) -> Iterator[FroniusSimulator]:
    with FroniusSimulator(SPEC, model_name="datamanager", clock=clock) as sim:
        yield sim


@pytest.fixture
def gen24(clock: Clock) -> Iterator[FroniusSimulator]:
    with FroniusSimulator(SPEC, model_name="gen24", clock=clock) as sim:
        yield sim


@pytest.fixture
def records() -> list[FroniusResponse]:
    return []
