"""The v4 data client: token handling, budget, 429 handling, and raw capture of every answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from solar_pipeline.sources.enphase.budget import RequestBudget
from solar_pipeline.sources.enphase.errors import (
    EnphaseAuthError,
    EnphaseResponseError,
    EnphaseTransportError,
    QuotaExhausted,
)
from solar_pipeline.sources.enphase.ledger import LedgerEntry, RawResponse, RequestLog
from solar_pipeline.sources.enphase.tokens import TokenManager
from solar_pipeline.sources.http import (
    RecordsRetriedAttempts,
    excerpt,
    json_or_none,
    receive,
    set_retry_observer,
)
from solar_pipeline.sources.parsing import nonnegative_number

log = logging.getLogger(__name__)

# A minute-limit 429 is waited out up to this long; anything longer is not a minute limit.
MAX_MINUTE_WAIT_S = 90
MAX_429_RETRIES = 3
# datetime's last second (9999-12-31): a later `period_end` is no time at all.
MAX_EPOCH_S = 253402300799


@dataclass(frozen=True)
class Fetched:
    raw_id: int | None
    data: Any


class EnphaseClient(RecordsRetriedAttempts):
    def __init__(
        self,
        base_url: str,
        api_key: str,
        system_id: int,
        tokens: TokenManager,
        budget: RequestBudget,
        log_: RequestLog,
        session: requests.Session,
        timeout: tuple[float, float] = (10.0, 45.0),
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.system_id = system_id
        self.tokens = tokens
        self.budget = budget
        self.log = log_
        self.session = session
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.requests_sent = 0
        self._pending: tuple[str, dict, tuple[int, int] | None, float] | None = None
        set_retry_observer(session, self._on_retried_attempt)

    def __repr__(self) -> str:
        return f"EnphaseClient(base_url={self.base_url!r}, system_id={self.system_id})"

    def get(
        self,
        endpoint: str,
        params: dict[str, Any] | None = None,
        covers: tuple[int, int] | None = None,
    ) -> Fetched:
        """GET /api/v4/systems/{id}/{endpoint}; every answer is stored raw before it is judged."""
        params = dict(params or {})
        token = self.tokens.access_token()
        refreshed = False
        throttled = 0
        while True:
            self.budget.before_request()
            status, raw_id, body, content_type, error = self._send(endpoint, params, covers, token)
            if error is not None:  # a redirect (never followed) or an answer over the size cap
                raise EnphaseResponseError(endpoint, status, error, raw_id)
            if status == 401 and not refreshed:
                refreshed = True
                token = self.tokens.refresh_after_401(token)
                continue
            if status == 401:
                raise EnphaseAuthError(
                    f"Enphase {endpoint} stays 401 with a freshly refreshed token: check that "
                    "ENPHASE_API_KEY and ENPHASE_CLIENT_ID belong to the same application and "
                    f"that system {self.system_id} is shared with it."
                )
            if status == 429:
                throttled += 1
                self._wait_out_429(body, endpoint, throttled)
                continue
            return self._judge(endpoint, status, raw_id, body, content_type)

    def _judge(
        self,
        endpoint: str,
        status: int,
        raw_id: int | None,
        body: str | None,
        content_type: str | None,
    ) -> Fetched:
        data = json_or_none(body)
        if status >= 400:
            detail = _error_detail(data, body, content_type)
            raise EnphaseResponseError(endpoint, status, detail, raw_id)
        if data is None:
            raise EnphaseResponseError(
                endpoint,
                status,
                f"body is not JSON ({content_type or 'no content type'}): {excerpt(body)}",
                raw_id,
            )
        return Fetched(raw_id, data)

    def _wait_out_429(self, body: str | None, endpoint: str, attempt: int) -> None:
        data = json_or_none(body) or {}
        period = data.get("period") if isinstance(data, dict) else None
        period_end = data.get("period_end") if isinstance(data, dict) else None
        # NaN, Infinity, 1e400, a year past 9999 or a bool are no period end: wait for the
        # next minute as if none were given (time.sleep(nan) would raise).
        period_end = nonnegative_number(period_end)
        if period_end is not None and not 0 < period_end <= MAX_EPOCH_S:
            period_end = None
        if period == "month":
            raise QuotaExhausted(int(period_end) if period_end is not None else None)
        now = self.clock()
        wait = (period_end - now + 1) if period_end is not None else 60 - now % 60 + 1
        if attempt > MAX_429_RETRIES or wait > MAX_MINUTE_WAIT_S:
            raise EnphaseResponseError(
                endpoint, 429, f"still throttled after {attempt} waits ({excerpt(body)})"
            )
        log.info("Enphase minute limit reached; waiting %.0f s (until period_end)", wait)
        self.budget.waited_s += max(wait, 0)
        self.sleep(max(wait, 0))

    def _send(
        self,
        endpoint: str,
        params: dict[str, Any],
        covers: tuple[int, int] | None,
        token: str,
    ) -> tuple[int, int | None, str | None, str | None, str | None]:
        url = f"{self.base_url}/api/v4/systems/{self.system_id}/{endpoint}"
        # The API key goes in a header (documented by Enphase) so it never appears in a URL,
        # a proxy log or the raw table's query column.
        headers = {"Authorization": f"Bearer {token}", "key": self._api_key}
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
                secrets=(self._api_key, token),
            )
        except requests.RequestException as exc:
            self._record(endpoint, params, covers, started, None, None, None, type(exc).__name__)
            raise EnphaseTransportError(
                f"Enphase {endpoint}: no response after retries ({type(exc).__name__})"
            ) from None
        finally:
            self._pending = None
        raw_id = self._record(
            endpoint, params, covers, started, got.status, got.content_type, got.body, got.error
        )
        return got.status, raw_id, got.body, got.content_type, got.error

    def _record(
        self,
        endpoint: str,
        params: dict[str, Any],
        covers: tuple[int, int] | None,
        started: float,
        status: int | None,
        content_type: str | None,
        body: str | None,
        error: str | None,
    ) -> int | None:
        self.requests_sent += 1
        elapsed = (self.clock() - started) * 1000
        raw = RawResponse(
            system_id=self.system_id,
            endpoint=endpoint,
            query={k: v for k, v in params.items()},
            fetched_at=started,
            status=status,
            content_type=content_type,
            body=body,
            elapsed_ms=elapsed,
            error=error,
            covers=covers,
            # A redirect or a truncated answer is never usable, whatever its body.
            valid_json=error is None and body is not None and json_or_none(body) is not None,
        )
        entry = LedgerEntry("enphase", endpoint, "data", started, status, elapsed, error)
        return self.log.record(entry, raw)


def _error_detail(data: Any, body: str | None, content_type: str | None) -> str:
    if isinstance(data, dict):
        parts = [str(data.get(k)) for k in ("message", "details") if data.get(k)]
        if parts:
            return ": ".join(parts)
    return f"{content_type or 'no content type'}: {excerpt(body)}"
