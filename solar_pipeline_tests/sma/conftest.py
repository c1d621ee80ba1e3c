"""An SMA simulator on loopback with a settable clock, the real OAuth/consent code, a token store
in tmp_path, and a client that keeps every answer."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from solar_pipeline.simulator.sma import OWNER, SmaSimulator
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.sources.enphase.tokens import FileTokenStore, TokenManager
from solar_pipeline.sources.http import build_session
from solar_pipeline.sources.sma.client import SmaClient, SmaResponse
from solar_pipeline.sources.sma.oauth import SmaConsent, SmaOAuth, sma_token_manager

PLANT = SystemSpec(
    system_id=8812345, timezone="Europe/Amsterdam", operational_date=date(2026, 1, 1)
)
# Late November 2026: both 2026 DST days of Amsterdam are in the past.
NOW = datetime(2026, 11, 25, 11, 0, 30, tzinfo=UTC).timestamp()


class Clock:
    """One clock for simulator and client, moved by the test."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Recorder:
    """The caller's side of the callback: every answer, in order, as a store would get it."""

    responses: list[SmaResponse] = field(default_factory=list)

    def __call__(self, resp: SmaResponse) -> None:
        self.responses.append(resp)

    @property
    def statuses(self) -> list[int | None]:
        return [r.status for r in self.responses]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sma_sim(clock) -> Iterator[SmaSimulator]:
    with SmaSimulator([PLANT], clock=clock) as sim:
        yield sim


def make_oauth(sim: SmaSimulator, clock, record=None, *, secret: str | None = None) -> SmaOAuth:
    return SmaOAuth(
        sim.client_id,
        sim.client_secret if secret is None else secret,
        build_session(backoff_factor=0.01, retries=2),
        token_url=sim.token_url,
        consent_url=sim.consent_url,
        timeout=(2.0, 10.0),
        clock=clock,
        record=record,
    )


def make_tokens(oauth: SmaOAuth, store_path: Path, clock) -> TokenManager:
    return sma_token_manager(FileTokenStore(store_path), oauth, clock)


def make_client(
    sim: SmaSimulator,
    tokens: TokenManager,
    recorder: Recorder,
    clock,
    *,
    plant_id: int = PLANT.system_id,
    **kwargs,
) -> SmaClient:
    return SmaClient(
        plant_id,
        tokens,
        recorder,
        base_url=sim.base_url,
        session=build_session(backoff_factor=0.01, retries=2),
        timeout=(2.0, 10.0),
        clock=clock,
        **kwargs,
    )


@dataclass
class Setup:
    sim: SmaSimulator
    oauth: SmaOAuth
    tokens: TokenManager
    consent: SmaConsent
    client: SmaClient
    recorder: Recorder
    store_path: Path


def consented(sim: SmaSimulator, tmp_path: Path, clock, plant_id: int = PLANT.system_id) -> Setup:
    """Everything wired, with the owner's consent already given."""
    rec = Recorder()
    oauth = make_oauth(sim, clock, rec)
    tokens = make_tokens(oauth, tmp_path / "sma_tokens.json", clock)
    consent = SmaConsent(oauth, tokens, sleep=lambda s: None)
    consent.request(OWNER)
    sim.approve(OWNER)
    client = make_client(sim, tokens, rec, clock, plant_id=plant_id)
    return Setup(sim, oauth, tokens, consent, client, rec, tmp_path / "sma_tokens.json")
