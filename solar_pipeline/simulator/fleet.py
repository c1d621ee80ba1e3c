"""A mixed fleet for the demo: one simulated site per fleet vendor (SolarEdge, Fronius, GoodWe,
SMA), each in its own time zone, and the sites file plus credentials that point the pipeline
at them."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import yaml

from solar_pipeline.simulator.fronius import FroniusSimulator
from solar_pipeline.simulator.goodwe import SemsSimulator
from solar_pipeline.simulator.sma import OWNER, SmaSimulator
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.simulator.solaredge import SolarEdgeSimulator

START = date(2025, 1, 1)


def _spec(system_id: int, tz: str, size_w: int, name: str) -> SystemSpec:
    return SystemSpec(
        system_id=system_id, timezone=tz, size_w=size_w, name=name, operational_date=START
    )


COTTAGE = _spec(3179485, "America/Denver", 8200, "Cottage")
WORKSHOP = _spec(5150002, "Europe/Vienna", 9800, "Workshop")
FARM = _spec(5150003, "Australia/Sydney", 12000, "Farm")
BARN = _spec(5150004, "Europe/Berlin", 7400, "Barn")
FARM_STATION = "7d1c0e6a-2b55-4a0e-9f4e-5a1c2b3d4e5f"


@dataclass
class FleetSimulators:
    """Started on loopback ports of their own; `sites` and `settings` describe them."""

    host: str = "127.0.0.1"
    sims: list[Any] = field(default_factory=list)
    sites: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    # vendor -> its simulator, e.g. to arm `misbehave_next` (simulator/faults.py) on one of them
    vendors: dict[str, Any] = field(default_factory=dict)

    def start(self) -> FleetSimulators:
        solaredge = SolarEdgeSimulator([COTTAGE], api_key=_key())
        fronius = FroniusSimulator(WORKSHOP)
        goodwe = SemsSimulator({FARM_STATION: FARM}, password=f"sems-{secrets.token_hex(6)}")
        sma = SmaSimulator([BARN], client_secret=f"sma-{secrets.token_hex(12)}")
        self.vendors.update(solaredge=solaredge, fronius=fronius, goodwe=goodwe, sma=sma)
        for sim in (solaredge, fronius, goodwe, sma):
            sim.start(self.host, 0)
            self.sims.append(sim)
        self.sites += [
            {
                "site_id": "cottage",
                "vendor": "solaredge",
                "timezone": COTTAGE.timezone,
                "ids": {"site_id": COTTAGE.system_id, "api_url": solaredge.base_url},
                "credentials": {"api_key": "SOLAREDGE_COTTAGE_KEY"},
            },
            {
                "site_id": "workshop",
                "vendor": "fronius",
                "timezone": WORKSHOP.timezone,
                "ids": {"url": fronius.base_url},
            },
            {
                "site_id": "farm",
                "vendor": "goodwe",
                "timezone": FARM.timezone,
                "ids": {"station_id": FARM_STATION, "api_url": goodwe.api_url},
                "credentials": {
                    "account": "GOODWE_FARM_ACCOUNT",
                    "password": "GOODWE_FARM_PASSWORD",
                },
            },
        ]
        # The owner has already approved the consent e-mail (`solar-pipeline sma-consent`).
        sma.approve(OWNER)
        self.sites.append(
            {
                "site_id": "barn",
                "vendor": "sma",
                "timezone": BARN.timezone,
                "ids": {"plant_id": BARN.system_id, "api_url": sma.base_url},
                "credentials": {"client_id": "SMA_CLIENT_ID", "client_secret": "SMA_CLIENT_SECRET"},
            }
        )
        self.settings.update(
            SMA_CLIENT_ID=sma.client_id,
            SMA_CLIENT_SECRET=sma.client_secret,
            SMA_TOKEN_URL=sma.token_url,
            SMA_CONSENT_URL=sma.consent_url,
            SOLAREDGE_COTTAGE_KEY=solaredge.api_key,
            GOODWE_FARM_ACCOUNT=goodwe.account,
            GOODWE_FARM_PASSWORD=goodwe.password,
        )
        return self

    def sites_yaml(self, home: list[dict[str, Any]] | None = None) -> str:
        """The sites file: `home` (the Enphase system and its gateway) first, then the fleet."""
        sites = (home or []) + self.sites
        return yaml.safe_dump({"sites": sites}, sort_keys=False)

    def stop(self) -> None:
        for sim in self.sims:
            with contextlib.suppress(Exception):
                sim.stop()


def _key() -> str:
    # SolarEdge keys are 32 upper-case letters and digits; a fresh one per demo.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(32))
