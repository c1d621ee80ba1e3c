"""A SolarEdge simulator on loopback with a fixed clock, and a client that keeps every answer."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest

from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.simulator.solaredge import SolarEdgeSimulator
from solar_pipeline.sources.http import build_session
from solar_pipeline.sources.solaredge.budget import DailyBudget
from solar_pipeline.sources.solaredge.client import SolarEdgeClient, SolarEdgeResponse

SITE = SystemSpec(system_id=3179485, timezone="Europe/Amsterdam", operational_date=date(2026, 1, 1))
# Late November 2026: after V1's retirement, with both 2026 DST days of Amsterdam in the past.
NOW = datetime(2026, 11, 25, 11, 0, 30, tzinfo=UTC).timestamp()
KEY_NAME = "SOLAREDGE_HOME_KEY"


@dataclass
class Recorder:
    """The caller's side of the callback: every answer, in order, as a store would get it."""

    responses: list[SolarEdgeResponse] = field(default_factory=list)

    def __call__(self, resp: SolarEdgeResponse) -> None:
        self.responses.append(resp)


@pytest.fixture
def se_sim() -> Iterator[SolarEdgeSimulator]:
    with SolarEdgeSimulator([SITE], clock=lambda: NOW) as sim:
        yield sim


def make_client(
    sim: SolarEdgeSimulator,
    recorder: Recorder,
    *,
    key: str | None = None,
    auth: str = "v2",
    budget: DailyBudget | None = None,
    site_id: int = SITE.system_id,
) -> SolarEdgeClient:
    return SolarEdgeClient(
        site_id,
        sim.api_key if key is None else key,
        recorder,
        base_url=sim.base_url,
        auth=auth,  # type: ignore[arg-type]
        key_name=KEY_NAME,
        budget=budget,
        session=build_session(backoff_factor=0.01, retries=2),
        timeout=(2.0, 10.0),
        clock=lambda: NOW,
    )
