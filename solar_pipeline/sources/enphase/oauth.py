"""The OAuth2 token endpoint: authorization-code exchange and refresh (Basic client auth)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import requests

from solar_pipeline.sources.enphase.errors import (
    EnphaseResponseError,
    EnphaseTransportError,
    ReauthorizationRequired,
)
from solar_pipeline.sources.enphase.ledger import LedgerEntry, RequestLog
from solar_pipeline.sources.enphase.tokens import TokenPair
from solar_pipeline.sources.http import Received, json_or_none, receive
from solar_pipeline.sources.parsing import nonnegative_number

# Enphase's own page that shows the code for manual copying.
DEFAULT_REDIRECT_PATH = "/oauth/redirect_uri"


@dataclass
class OAuthClient:
    base_url: str
    client_id: str
    client_secret: str
    session: requests.Session
    log: RequestLog | None = None
    timeout: tuple[float, float] = (10.0, 30.0)
    clock: Callable[[], float] = time.time

    def __repr__(self) -> str:
        return f"OAuthClient(base_url={self.base_url!r})"

    def default_redirect_uri(self) -> str:
        return self.base_url.rstrip("/") + DEFAULT_REDIRECT_PATH

    def authorize_url(self, redirect_uri: str | None = None, state: str | None = None) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri or self.default_redirect_uri(),
        }
        if state:
            params["state"] = state
        return f"{self.base_url.rstrip('/')}/oauth/authorize?{urlencode(params)}"

    def exchange_code(self, code: str, redirect_uri: str | None = None) -> TokenPair:
        params = {
            "grant_type": "authorization_code",
            "redirect_uri": redirect_uri or self.default_redirect_uri(),
            "code": code,
        }
        return self._token_call(params, origin="code")

    def refresh(self, refresh_token: str) -> TokenPair:
        return self._token_call(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, origin="refresh"
        )

    def _token_call(self, params: dict[str, str], origin: str) -> TokenPair:
        url = f"{self.base_url.rstrip('/')}/oauth/token"
        started = self.clock()
        status: int | None = None
        error: str | None = None
        try:
            # Enphase's sample puts the grant in the query string, but a URL ends up in debug
            # logs (urllib3 logs every request line) and proxy logs; the form body, which
            # Enphase accepts as well, keeps the refresh token out of them. Client credentials
            # go only in the Basic header. A redirect is not followed (a 307 would re-send the
            # form to wherever it points).
            resp = receive(
                self.session,
                "POST",
                url,
                data=params,
                auth=(self.client_id, self.client_secret),
                timeout=self.timeout,
                # Not the refresh token: a non-rotating server answers the same one back.
                secrets=(self.client_secret,),
            )
            status, error = resp.status, resp.error
        except requests.RequestException as exc:
            error = type(exc).__name__
            raise EnphaseTransportError(
                f"Enphase token endpoint unreachable ({type(exc).__name__})"
            ) from None
        finally:
            if self.log is not None:
                self.log.record(
                    LedgerEntry(
                        api="enphase",
                        endpoint="oauth/token",
                        kind="token",
                        requested_at=started,
                        status=status,
                        duration_ms=(self.clock() - started) * 1000,
                        error=error,
                    )
                )
        if resp.error is not None:
            raise EnphaseResponseError(
                "oauth/token", status, f"{resp.error}; check ENPHASE_API_URL"
            )
        if status in (400, 401, 403):
            # The body names the grant problem; it never contains our secrets, but keep only the
            # OAuth error code to be sure nothing token-like lands in a log.
            reason = _oauth_error(resp) or f"HTTP {status}"
            raise ReauthorizationRequired(reason)
        if status != 200:
            raise EnphaseResponseError("oauth/token", status, "token endpoint error; retry later")
        try:
            body = json_or_none(resp.body)
            if isinstance(body, dict) and nonnegative_number(body.get("expires_in")) is None:
                # NaN, Infinity, 1e400: the default lifetime, not a lost (rotated) pair.
                body.pop("expires_in", None)
            return TokenPair.from_token_response(body, int(self.clock()), origin)
        except (ValueError, KeyError, TypeError, OverflowError):  # OverflowError: 1e400
            raise EnphaseResponseError(
                "oauth/token", status, "token response is not the expected JSON"
            ) from None


def _oauth_error(resp: Received) -> str | None:
    body = json_or_none(resp.body)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"][:40]
    return None
