"""A SEMS simulator on loopback with a settable clock, and a client that keeps every answer."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest

from solar_pipeline.simulator.goodwe import SemsSimulator
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.sources.goodwe.client import SemsClient, SemsResponse, sems_session

STATION = "0b7e4c52-91d3-4f6a-a8e2-3c5d7f9e1b24"
SITE = SystemSpec(system_id=7310042, timezone="Europe/Amsterdam", operational_date=date(2026, 1, 1))
# Late November 2026, with both 2026 DST days of Amsterdam in the past.
NOW = datetime(2026, 11, 25, 11, 0, 30, tzinfo=UTC).timestamp()
ACCOUNT_NAME = "GOODWE_HOME_ACCOUNT"
PASSWORD_NAME = "GOODWE_HOME_PASSWORD"


@dataclass
class Clock:
    """A clock both sides share, moved by the test (token lifetimes, throttle windows)."""

    now: float = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    """The caller's side of the callback: every answer, in order, as a store would get it."""

    responses: list[SemsResponse] = field(default_factory=list)

    def __call__(self, resp: SemsResponse) -> None:
        self.responses.append(resp)

    @property
    def endpoints(self) -> list[str]:
        return [r.endpoint.rsplit("/", 1)[-1] for r in self.responses]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gw_sim(clock: Clock) -> Iterator[SemsSimulator]:
    with SemsSimulator({STATION: SITE}, clock=clock) as sim:
        yield sim


def make_client(
    sim: SemsSimulator,
    recorder: Recorder,
    *,
    password: str | None = None,
    station_id: str = STATION,
    clock: Clock | None = None,
    **kwargs,
) -> SemsClient:
    return SemsClient(
        sim.account,
        sim.password if password is None else password,
        station_id,
        recorder,
        base_url=sim.api_url,
        session=sems_session(backoff_factor=0.01, retries=2),
        timeout=(2.0, 10.0),
        clock=clock or Clock(),
        account_name=ACCOUNT_NAME,
        password_name=PASSWORD_NAME,
        **kwargs,
    )
