from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from solar_pipeline.settings import MissingSettingError
from solar_pipeline.sources.envoy.client import EnvoyClient, EnvoyResponse
from solar_pipeline.sources.envoy.tokens import EnlightenTokenFetcher, EnvoyTokenProvider
from solar_pipeline.sources.http import build_session


class EnvoyResource(dg.ConfigurableResource):
    """The gateway on the owner's LAN. Secrets (ENVOY_TOKEN, ENLIGHTEN_PASSWORD) are read from
    the environment when a run builds its client, so they never enter Dagster config."""

    url: str | None = None
    serial: str | None = None
    state_dir: str
    enlighten_url: str = "https://enlighten.enphaseenergy.com"
    entrez_url: str = "https://entrez.enphaseenergy.com"
    cert_fingerprint: str | None = None
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 45.0
    retries: int = 2
    retry_backoff_s: float = 1.0

    def client(self, record: Callable[[EnvoyResponse], None]) -> EnvoyClient:
        if not self.url:
            raise MissingSettingError(
                "ENVOY_URL",
                "the gateway's address, e.g. https://envoy.local or http://192.168.1.50",
            )
        state = Path(self.state_dir)
        username = os.environ.get("ENLIGHTEN_USERNAME", "").strip()
        password = os.environ.get("ENLIGHTEN_PASSWORD", "").strip()
        fetcher = (
            EnlightenTokenFetcher(
                self.enlighten_url, self.entrez_url, username, password, build_session(0.5, 1)
            )
            if username and password
            else None
        )
        tokens = EnvoyTokenProvider(
            state / "envoy_token.json",
            configured=os.environ.get("ENVOY_TOKEN", "").strip() or None,
            fetcher=fetcher,
        )
        return EnvoyClient(
            self.url,
            state,
            tokens,
            record,
            cert_fingerprint=self.cert_fingerprint,
            serial=self.serial,
            timeout=(self.connect_timeout_s, self.read_timeout_s),
            retries=self.retries,
            backoff=self.retry_backoff_s,
        )
