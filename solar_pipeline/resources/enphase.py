from __future__ import annotations

import os

import dagster as dg
import requests

from solar_pipeline.sources.enphase.budget import RequestBudget, plan_named
from solar_pipeline.sources.enphase.client import EnphaseClient
from solar_pipeline.sources.enphase.ledger import RequestLog
from solar_pipeline.sources.enphase.oauth import OAuthClient
from solar_pipeline.sources.enphase.tokens import TokenManager, token_store_from_uri
from solar_pipeline.sources.http import build_session

SEED_VARIABLE = "ENPHASE_REFRESH_TOKEN"


class EnphaseCloudResource(dg.ConfigurableResource):
    """Credentials and settings of the Enphase v4 application; builds one client per run."""

    api_url: str = "https://api.enphaseenergy.com"
    api_key: str
    client_id: str
    client_secret: str
    system_id: str
    token_store: str
    plan: str = "watt"
    retry_backoff_s: float = 1.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 45.0

    def system(self) -> int:
        try:
            return int(self.system_id)
        except ValueError:
            raise ValueError("ENPHASE_SYSTEM_ID must be the numeric Enphase system id") from None

    def oauth(
        self, log: RequestLog | None = None, session: requests.Session | None = None
    ) -> OAuthClient:
        return OAuthClient(
            self.api_url,
            self.client_id,
            self.client_secret,
            session or build_session(self.retry_backoff_s),
            log,
            (self.connect_timeout_s, self.read_timeout_s),
        )

    def tokens(
        self, log: RequestLog | None = None, session: requests.Session | None = None
    ) -> TokenManager:
        manager = TokenManager(token_store_from_uri(self.token_store), self.oauth(log, session))
        # Read at run time, only to seed an empty store; afterwards the store is the truth.
        manager.seed_if_empty(os.environ.get(SEED_VARIABLE, "").strip() or None)
        return manager

    def client(self, log: RequestLog) -> EnphaseClient:
        """One HTTP session per run, shared by the token and the data calls."""
        session = build_session(self.retry_backoff_s)
        return EnphaseClient(
            base_url=self.api_url,
            api_key=self.api_key,
            system_id=self.system(),
            tokens=self.tokens(log, session),
            budget=RequestBudget(plan_named(self.plan), log),
            log_=log,
            session=session,
            timeout=(self.connect_timeout_s, self.read_timeout_s),
        )
