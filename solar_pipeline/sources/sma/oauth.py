"""SMA API access: app token (OAuth2 client credentials), the owner's consent by e-mail, and the
token pair kept in the shared token store (solar_pipeline.sources.enphase.tokens, reused as is).

Documented (developer.sma.de: api-access-control "custom flow", FAQ, field notes §3):
- the app gets a token with its client credentials from `auth.smaapis.de/oauth2/token`;
- it asks for a plant owner's consent with `POST async-auth.smaapis.de/oauth2/v2/bc-authorize`,
  bearer = that token, JSON `{"loginHint": "<owner's SMA e-mail>"}`; SMA e-mails the owner, who
  approves; the consent lasts until the owner revokes it;
- access tokens live 5 minutes (the code-flow page refreshes "every 5 minutes").

Taken from integrators' code, not from SMA's pages (so: inferred): the token answer is Keycloak's
(`access_token`, `expires_in`: 300, `refresh_token`, `refresh_expires_in`: 0 = no stated expiry);
the bc-authorize answer is `201 {"loginHint", "state", "expirationDate", "interval"}` with state
Pending | Accepted | Revoked, and POSTing it again returns the current state (there is no GET);
after consent the *same app token* reads the owner's plants, so the "token after consent" is
simply a new app token; refresh tokens rotate, and a refused one is replaced by a new
client-credentials grant (consent belongs to the app, not to a token).

Secrets (client secret, access and refresh tokens) go only into the form body or the
Authorization header, never into a URL, a recorded answer, a log line or an error message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from solar_pipeline.settings import env
from solar_pipeline.sources.enphase.tokens import (
    TokenManager,
    TokenPair,
    TokenStore,
    token_store_from_uri,
)
from solar_pipeline.sources.http import Received, build_session, json_or_none, receive
from solar_pipeline.sources.parsing import nonnegative_number
from solar_pipeline.sources.sma.client import (
    SmaResponse,
    problem_detail,
    retry_after_seconds,
)
from solar_pipeline.sources.sma.errors import (
    CLIENT_ID_VAR,
    CLIENT_SECRET_VAR,
    SmaAuthError,
    SmaConsentPending,
    SmaConsentRequired,
    SmaRateLimited,
    SmaResponseError,
    SmaTransportError,
)

DEFAULT_TOKEN_URL = "https://auth.smaapis.de/oauth2/token"
DEFAULT_CONSENT_URL = "https://async-auth.smaapis.de/oauth2/v2/bc-authorize"
SANDBOX_TOKEN_URL = "https://sandbox-auth.smaapis.de/oauth2/token"
SANDBOX_CONSENT_URL = "https://sandbox.smaapis.de/oauth2/v2/bc-authorize"
TOKEN_STORE_VAR = "SMA_TOKEN_STORE"
# Access tokens live 300 s: use one while more than a minute is left, whatever its age.
MAX_ACCESS_AGE_S = 300
MIN_ACCESS_REMAINING_S = 60
# `refresh_expires_in: 0` means no stated expiry (an offline token): a year is a placeholder
# for the status output; the pipeline refreshes far more often than that.
REFRESH_LIFETIME_S = 365 * 86400
DEFAULT_POLL_S = 30.0
# What gets a pair back once a damaged token file is out of the way: an empty store is filled
# by a client-credentials grant, and the owners' consent belongs to the app, not to a token.
STORE_REMEDY = (
    f"the next run gets a new app token with {CLIENT_ID_VAR} and {CLIENT_SECRET_VAR} (the "
    "owners' consent stays with SMA)."
)

ACCEPTED, PENDING, REVOKED = "Accepted", "Pending", "Revoked"


@dataclass(frozen=True)
class ConsentStatus:
    """SMA's answer to a consent request for one owner e-mail (no secret in it)."""

    login_hint: str
    state: str  # Pending | Accepted | Revoked, or whatever SMA sent (kept verbatim)
    expires: str | None = None  # `expirationDate` as sent
    interval_s: float | None = None  # how often SMA allows polling

    @property
    def accepted(self) -> bool:
        return self.state.lower() == ACCEPTED.lower()

    @property
    def pending(self) -> bool:
        return self.state.lower() == PENDING.lower()

    @property
    def revoked(self) -> bool:
        return self.state.lower() == REVOKED.lower()

    def instructions(self) -> str:
        """What has to happen next, for a person."""
        if self.accepted:
            return (
                f"The owner ({self.login_hint}) has approved: the pipeline can read their plants "
                "until they revoke the consent."
            )
        if self.pending:
            until = f" before {self.expires}" if self.expires else ""
            return (
                f"SMA has e-mailed the plant owner at {self.login_hint}. The owner opens that "
                f"e-mail and approves the data access{until}; nothing else is needed here (run "
                "again with --wait to block until they have)."
            )
        if self.revoked:
            return (
                f"The owner ({self.login_hint}) revoked the consent. Request it again and have "
                "them approve the new e-mail."
            )
        return f"SMA reports the consent state {self.state!r} for {self.login_hint}."


class SmaOAuth:
    """The token endpoint (implements TokenManager's Refresher) and the consent endpoint."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        session: requests.Session | None = None,
        *,
        token_url: str = DEFAULT_TOKEN_URL,
        consent_url: str = DEFAULT_CONSENT_URL,
        timeout: tuple[float, float] = (10.0, 30.0),
        clock: Callable[[], float] = time.time,
        record: Callable[[SmaResponse], None] | None = None,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.session = session or build_session()
        self.token_url = token_url
        self.consent_url = consent_url
        self.timeout = timeout
        self.clock = clock
        self.record = record  # counts token and consent calls against the rate limit
        self.requests_sent = 0

    def __repr__(self) -> str:
        return f"SmaOAuth(token_url={self.token_url!r}, consent_url={self.consent_url!r})"

    # ---- tokens ----------------------------------------------------------------------------

    def client_token(self) -> TokenPair:
        """A new app token from the client credentials (origin "client")."""
        return self._token_call({"grant_type": "client_credentials"}, origin="client")

    def refresh(self, refresh_token: str) -> TokenPair:
        """TokenManager's refresh: the refresh grant, or client credentials when there is no
        usable refresh token (none issued, or SMA refused it: the consent is the app's, so a
        new app token reads the same plants)."""
        if not refresh_token:
            return self.client_token()
        try:
            return self._token_call(
                {"grant_type": "refresh_token", "refresh_token": refresh_token}, origin="refresh"
            )
        except _GrantRefused:
            return self.client_token()

    def _token_call(self, params: dict[str, str], origin: str) -> TokenPair:
        form = {**params, "client_id": self.client_id, "client_secret": self._client_secret}
        resp = self._post("oauth2/token", self.token_url, data=form)
        status = resp.status
        if resp.error is not None:  # a redirect (not followed) or an answer over the size cap
            raise SmaResponseError("oauth2/token", status, f"{resp.error}; check SMA_TOKEN_URL")
        if status == 200:
            body = json_or_none(resp.body)
            if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
                raise SmaResponseError(
                    "oauth2/token", status, "token answer is not the expected JSON"
                )
            # Lifetimes that are no number (NaN, Infinity, 1e400, text) fall back to SMA's
            # documented ones: the tokens themselves are good, and a rotated refresh token
            # must not be dropped over a broken lifetime.
            refresh_s = _seconds(body.get("refresh_expires_in"))
            body = {
                **body,
                "refresh_token": body.get("refresh_token") or "",
                "expires_in": _seconds(body.get("expires_in")) or MAX_ACCESS_AGE_S,
            }
            return TokenPair.from_token_response(
                body,
                int(self.clock()),
                origin,
                refresh_lifetime_s=refresh_s or REFRESH_LIFETIME_S,
            )
        data = json_or_none(resp.body)
        code = data.get("error") if isinstance(data, dict) else None
        code = code[:40] if isinstance(code, str) else f"HTTP {status}"
        if status == 400 and code == "invalid_grant" and params["grant_type"] == "refresh_token":
            raise _GrantRefused(code)
        if status == 429:
            raise _rate_limited("oauth2/token", resp)
        if status in (400, 401, 403):
            raise SmaAuthError(
                f"SMA's token endpoint refused the app credentials ({code}). Check that "
                f"{CLIENT_ID_VAR} and {CLIENT_SECRET_VAR} hold the credentials SMA issued for "
                "this app (production and sandbox credentials differ)."
            )
        raise SmaResponseError("oauth2/token", status, "token endpoint error; retry later")

    # ---- consent ---------------------------------------------------------------------------

    def request_consent(self, login_hint: str, access_token: str) -> Received:
        """POST bc-authorize for the owner e-mail `login_hint`; the raw answer (judged by
        SmaConsent, which can refresh the token after a 401)."""
        headers = {"Authorization": f"Bearer {access_token}"}
        return self._post(
            "bc-authorize", self.consent_url, json={"loginHint": login_hint}, headers=headers
        )

    # ---- transport -------------------------------------------------------------------------

    def _post(self, endpoint: str, url: str, **kwargs) -> Received:
        started = self.clock()
        try:
            # A redirect is not followed: a 307 would re-send the client secret to its target.
            resp = receive(
                self.session,
                "POST",
                url,
                timeout=self.timeout,
                secrets=(self._client_secret,),
                **kwargs,
            )
        except requests.RequestException as exc:
            self._log(endpoint, started, None, None, None, type(exc).__name__)
            raise SmaTransportError(f"SMA {endpoint} unreachable ({type(exc).__name__})") from None
        # Token answers carry tokens: recorded without their body.
        body = resp.body if endpoint != "oauth2/token" else None
        self._log(
            endpoint,
            started,
            resp.status,
            resp.content_type,
            body,
            resp.error,
            retry_after_seconds(resp.headers.get("Retry-After")),
        )
        return resp

    def _log(
        self,
        endpoint: str,
        started: float,
        status: int | None,
        content_type: str | None,
        body: str | None,
        error: str | None,
        retry_after_s: float | None = None,
    ) -> None:
        self.requests_sent += 1
        if self.record is None:
            return
        self.record(
            SmaResponse(
                plant_id="",
                endpoint=endpoint,
                query={},
                fetched_at=started,
                status=status,
                content_type=content_type,
                body=body,
                elapsed_ms=(self.clock() - started) * 1000,
                error=error,
                retry_after_s=retry_after_s,
            )
        )


class _GrantRefused(Exception):
    """The refresh token was refused (invalid_grant): fall back to client credentials."""


def _seconds(value: object) -> int:
    """Whole seconds (at most a year) from an answer; 0 (none stated) unless a finite,
    non-negative number."""
    seconds = nonnegative_number(value)
    return int(min(seconds, REFRESH_LIFETIME_S)) if seconds is not None else 0


def _rate_limited(endpoint: str, resp: Received) -> SmaRateLimited:
    after = retry_after_seconds(resp.headers.get("Retry-After"))
    wait = f"retry after {after:.0f} s" if after is not None else "wait for the next window"
    return SmaRateLimited(
        f"SMA answered 429 for {endpoint}: this credential's requests for the current 5-minute "
        f"window are spent; {wait}.",
        after,
    )


def sma_token_manager(
    store: TokenStore, oauth: SmaOAuth, clock: Callable[[], float] = time.time
) -> TokenManager:
    """The shared TokenManager with SMA's margins; an empty store gets a client-credentials
    token (the app alone may have one; what it may read depends on owners' consent)."""
    return TokenManager(
        store,
        oauth,
        clock,
        max_access_age_s=MAX_ACCESS_AGE_S,
        min_access_remaining_s=MIN_ACCESS_REMAINING_S,
        first_pair=oauth.client_token,
    )


class SmaConsent:
    """Request the owner's consent, poll until approved, then take a token made after it."""

    def __init__(
        self,
        oauth: SmaOAuth,
        tokens: TokenManager,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.oauth = oauth
        self.tokens = tokens
        self.sleep = sleep
        self.clock = clock

    def request(self, login_hint: str, plant_id: str | None = None) -> ConsentStatus:
        """Ask SMA to e-mail the owner (or, once asked, read the current state)."""
        token = self.tokens.access_token()
        resp = self.oauth.request_consent(login_hint, token)
        if resp.status == 401:
            resp = self.oauth.request_consent(login_hint, self.tokens.refresh_after_401(token))
        return self._judge(resp, login_hint, plant_id)

    def wait(
        self,
        login_hint: str,
        timeout_s: float = 900.0,
        poll_s: float | None = None,
        plant_id: str | None = None,
    ) -> ConsentStatus:
        """Poll until the owner approved; then store a token obtained after the consent."""
        deadline = self.clock() + timeout_s
        while True:
            status = self.request(login_hint, plant_id)
            if status.accepted:
                self.renew_token()
                return status
            if status.revoked:
                raise SmaConsentRequired(
                    f"the owner ({login_hint}) revoked the consent", plant_id, status.state
                )
            step = poll_s if poll_s is not None else (status.interval_s or DEFAULT_POLL_S)
            if self.clock() + step > deadline:
                raise SmaConsentPending(
                    f"the owner ({login_hint}) has not approved the consent e-mail yet "
                    f"(state {status.state})",
                    plant_id,
                    status.state,
                )
            self.sleep(step)

    def renew_token(self) -> None:
        """Replace the stored pair (rotating it), so no token from before the consent is used."""
        current = self.tokens.current()
        self.tokens.refresh_after_401(current.access_token if current else "")

    def _judge(self, resp: Received, login_hint: str, plant_id: str | None) -> ConsentStatus:
        status = resp.status
        if resp.error is not None:  # a redirect (not followed) or an answer over the size cap
            raise SmaResponseError("bc-authorize", status, f"{resp.error}; check SMA_CONSENT_URL")
        if status in (200, 201):
            data = json_or_none(resp.body)
            if isinstance(data, dict) and isinstance(data.get("state"), str):
                interval = data.get("interval")
                return ConsentStatus(
                    str(data.get("loginHint") or login_hint),
                    data["state"],
                    data.get("expirationDate")
                    if isinstance(data.get("expirationDate"), str)
                    else None,
                    # NaN or a negative interval would make the poll's sleep raise.
                    float(_seconds(interval)) if _seconds(interval) > 0 else None,
                )
            raise SmaResponseError("bc-authorize", status, "answer has no consent state")
        detail = problem_detail(resp.body, resp.content_type)
        if status == 429:
            raise _rate_limited("bc-authorize", resp)
        if status == 401:
            raise SmaAuthError(
                f"SMA refused a fresh app token for the consent request ({detail}). Check "
                f"{CLIENT_ID_VAR} and {CLIENT_SECRET_VAR}."
            )
        if status in (400, 404):
            raise SmaConsentRequired(
                f"SMA did not accept the consent request for {login_hint} ({status}: {detail}); "
                "it must be the e-mail of the plant's owner account in Sunny Portal",
                plant_id,
            )
        raise SmaResponseError("bc-authorize", status, detail)


def sma_auth(
    client_id: str,
    client_secret: str,
    data_dir: str | Path,
    record: Callable[[SmaResponse], None] | None = None,
) -> tuple[SmaOAuth, TokenManager]:
    """The app's OAuth client and its token manager, as every caller (the consent command, the
    assets) must build them: one token store per app, SMA_TOKEN_STORE (default
    `file:<data dir>/sma_tokens.json`); SMA_TOKEN_URL / SMA_CONSENT_URL for the sandbox."""
    default_store = f"file:{Path(data_dir) / 'sma_tokens.json'}"
    uri = env(TOKEN_STORE_VAR, default_store) or default_store
    oauth = SmaOAuth(
        client_id,
        client_secret,
        token_url=env("SMA_TOKEN_URL") or DEFAULT_TOKEN_URL,
        consent_url=env("SMA_CONSENT_URL") or DEFAULT_CONSENT_URL,
        record=record,
    )
    store = token_store_from_uri(uri, TOKEN_STORE_VAR, remedy=STORE_REMEDY)
    return oauth, sma_token_manager(store, oauth)
