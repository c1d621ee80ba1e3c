"""The SMA Monitoring API client: bearer tokens from the shared token store, every answer
recorded verbatim, 401/403/429 told apart.

Each HTTP answer (also error pages, 401s before a token refresh, 429s and retried 5xx attempts)
goes to `record` before it is judged, so the caller can store it raw and parse it later. The
bearer token never goes into a recorded query, a log line or an error message.

Paths and parameters (field notes §3; SMA's Monitoring API Swagger as used by integrators,
e.g. SolarNetwork's `SmaCloudDatumStreamService`):
- daily energy of a month: `GET /v1/plants/{id}/measurements/sets/EnergyAndPowerPv/Month
  ?Date=YYYY-MM` (one value per local day);
- 5-minute series of a day: `.../EnergyAndPowerPv/Day?Date=YYYY-MM-DD`. `ReturnEnergyValues=true`
  asks for Wh per period instead of average W (the parameter is SolarNetwork's reading of the
  Swagger, not in SMA's overview pages: inferred). Dates are the plant's local dates.
- Rate limit (developer.sma.de/announcements/ratelimit): a token bucket per credential that
  refills every 5 minutes, size not published; beyond it a 429 with a `Retry-After` header.

Inferred, not documented: an expired or unknown token answers 401 (Keycloak behaviour), a plant
whose owner has not consented or revoked the consent answers 403.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import requests

from solar_pipeline.sources.http import (
    RecordsRetriedAttempts,
    build_session,
    excerpt,
    json_or_none,
    receive,
    set_retry_observer,
)
from solar_pipeline.sources.sma.errors import (
    SmaAuthError,
    SmaConsentRequired,
    SmaRateLimited,
    SmaResponseError,
    SmaTransportError,
)

DEFAULT_URL = "https://monitoring.smaapis.de"
PV_SET = "EnergyAndPowerPv"
# Longest Retry-After a client waits out by itself (0: never wait, raise SmaRateLimited).
DEFAULT_MAX_WAIT_S = 0.0


class Tokens(Protocol):
    """What the client needs of solar_pipeline.sources.enphase.tokens.TokenManager."""

    def access_token(self) -> str: ...

    def refresh_after_401(self, rejected: str) -> str: ...


@dataclass(frozen=True)
class SmaResponse:
    """One answer (or its absence) exactly as received; neither `query` nor `body` of a token
    call holds a secret (token answers are recorded without their body)."""

    plant_id: str
    endpoint: str  # e.g. "EnergyAndPowerPv/Month", "oauth2/token", "bc-authorize"
    query: dict[str, str]
    fetched_at: float
    status: int | None
    content_type: str | None
    body: str | None
    elapsed_ms: float
    error: str | None = None
    covers: tuple[date, date] | None = None  # local days, inclusive
    retry_after_s: float | None = None


def month_bounds(month: date) -> tuple[date, date]:
    """First and last local day of the month containing `month`."""
    first = month.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return first, nxt - timedelta(days=1)


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds (the delta-seconds form; an HTTP date is not expected here)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None  # "nan", "inf": none given


class SmaClient(RecordsRetriedAttempts):
    def __init__(
        self,
        plant_id: str | int,
        tokens: Tokens,
        record: Callable[[SmaResponse], None],
        *,
        base_url: str = DEFAULT_URL,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (10.0, 45.0),
        clock: Callable[[], float] = time.time,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.plant_id = str(plant_id)
        self.tokens = tokens
        self.record = record
        self.base_url = base_url.rstrip("/")
        self.session = session or build_session()
        self.timeout = timeout
        self.clock = clock
        self.max_wait_s = max_wait_s
        self.sleep = sleep
        self.requests_sent = 0
        self._last_token = ""
        self._pending: tuple[str, dict[str, str], tuple[date, date] | None, float] | None = None
        set_retry_observer(self.session, self._on_retried_attempt)

    def __repr__(self) -> str:
        return f"SmaClient(base_url={self.base_url!r}, plant_id={self.plant_id!r})"

    # ---- endpoints -------------------------------------------------------------------------

    def month_days(self, month: date, set_type: str = PV_SET) -> SmaResponse:
        """Daily energy of the local month containing `month` (one request)."""
        first, last = month_bounds(month)
        params = {"Date": f"{first:%Y-%m}", "ReturnEnergyValues": "true"}
        return self.get(f"{set_type}/Month", params, covers=(first, last))

    def day_series(self, day: date, set_type: str = PV_SET) -> SmaResponse:
        """5-minute energy of one local day (one request)."""
        params = {"Date": day.isoformat(), "ReturnEnergyValues": "true"}
        return self.get(f"{set_type}/Day", params, covers=(day, day))

    @staticmethod
    def requests_needed(first: date, last: date, series: bool = True, daily: bool = True) -> int:
        """Calls a backfill of local days [first, last] costs (a month each for daily energy, a
        day each for 5-minute series), to plan against the 5-minute rate limit."""
        months = (last.year - first.year) * 12 + last.month - first.month + 1
        return (months if daily else 0) + (((last - first).days + 1) if series else 0)

    # ---- transport -------------------------------------------------------------------------

    def get(
        self, endpoint: str, params: dict[str, str], covers: tuple[date, date] | None = None
    ) -> SmaResponse:
        """GET /v1/plants/{id}/measurements/sets/{endpoint}; every answer is recorded before it
        is judged; returns only a 2xx answer."""
        token = self.tokens.access_token()
        resp = self._send(endpoint, dict(params), covers, token)
        self._last_token = token
        if resp.status == 401:
            # The token expired early or was revoked: refresh once (unless another process
            # already did) and try again; a second 401 is an auth problem, not a stale token.
            token = self._last_token = self.tokens.refresh_after_401(token)
            resp = self._send(endpoint, dict(params), covers, token)
        if resp.status == 429 and self._can_wait(resp.retry_after_s):
            self.sleep(resp.retry_after_s or 0.0)
            token = self._last_token = self.tokens.access_token()
            resp = self._send(endpoint, dict(params), covers, token)
        self._judge(resp)
        return resp

    def _can_wait(self, retry_after_s: float | None) -> bool:
        return retry_after_s is not None and 0 < retry_after_s <= self.max_wait_s

    def _send(
        self,
        endpoint: str,
        params: dict[str, str],
        covers: tuple[date, date] | None,
        token: str,
    ) -> SmaResponse:
        url = f"{self.base_url}/v1/plants/{self.plant_id}/measurements/sets/{endpoint}"
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        started = self.clock()
        self._pending = (endpoint, params, covers, started)
        try:
            got = receive(
                self.session,
                "GET",
                url,
                params=params,
                headers=headers,
                timeout=self.timeout,
                secrets=(token,),
            )
        except requests.RequestException as exc:
            # Only the class name: requests' messages can carry the URL and headers.
            self._record(endpoint, params, covers, started, None, None, None, type(exc).__name__)
            raise SmaTransportError(
                f"SMA {endpoint} for plant {self.plant_id}: no response after retries "
                f"({type(exc).__name__})"
            ) from None
        finally:
            self._pending = None
        return self._record(
            endpoint,
            params,
            covers,
            started,
            got.status,
            got.content_type,
            got.body,
            got.error,
            retry_after_s=retry_after_seconds(got.headers.get("Retry-After")),
        )

    def _record(
        self,
        endpoint: str,
        params: dict[str, str],
        covers: tuple[date, date] | None,
        started: float,
        status: int | None,
        content_type: str | None,
        body: str | None,
        error: str | None = None,
        retry_after_s: float | None = None,
    ) -> SmaResponse:
        self.requests_sent += 1
        resp = SmaResponse(
            plant_id=self.plant_id,
            endpoint=endpoint,
            query=dict(params),
            fetched_at=started,
            status=status,
            content_type=content_type,
            body=body,
            elapsed_ms=(self.clock() - started) * 1000,
            error=error,
            covers=covers,
            retry_after_s=retry_after_s,
        )
        self.record(resp)
        return resp

    # ---- judging ---------------------------------------------------------------------------

    def _judge(self, resp: SmaResponse) -> None:
        status = resp.status
        if status is not None and resp.error is not None:
            # A redirect (never followed: the token stays home) or an answer over the size cap.
            raise SmaResponseError(resp.endpoint, status, resp.error)
        if status is None or status < 400:
            return
        detail = problem_detail(resp.body, resp.content_type)
        if self._last_token:  # a server that echoes the request must not leak the token
            detail = detail.replace(self._last_token, "***")
        where = f"plant {self.plant_id}"
        if status == 401:
            raise SmaAuthError(
                f"SMA refused a freshly obtained token for {where} ({detail}). Check that "
                "SMA_CLIENT_ID and SMA_CLIENT_SECRET hold the app's current credentials and "
                "that the token store belongs to that app."
            )
        if status == 403:
            raise SmaConsentRequired(
                f"no consent to read {where} (403: {detail}); the owner has not approved the "
                "app or revoked the consent",
                plant_id=self.plant_id,
            )
        if status == 429:
            wait = (
                f"retry after {resp.retry_after_s:.0f} s"
                if resp.retry_after_s is not None
                else "no Retry-After given; wait for the next 5-minute window"
            )
            raise SmaRateLimited(
                f"SMA answered 429 for {where} ({detail}): the requests this credential may make "
                f"in a 5-minute window (SMA does not publish the number) are spent; {wait}. "
                "Nothing more is fetched in this run.",
                resp.retry_after_s,
            )
        raise SmaResponseError(resp.endpoint, status, detail)


def problem_detail(body: str | None, content_type: str | None) -> str:
    """A short reason from an error body: problem+json fields, an OAuth error code, or a start."""
    data = json_or_none(body)
    text = ""
    if isinstance(data, dict):
        keys = ("title", "detail", "message", "error", "error_description")
        text = ": ".join(str(data[k]) for k in keys if isinstance(data.get(k), str) and data[k])
    return text or f"{content_type or 'no content type'}: {excerpt(body)}"
