"""A requests.Session with retries that still account for every attempt.

urllib3's Retry retries connection errors and 5xx answers inside the adapter, invisible to the
caller. Each attempt is an HTTP request that Enphase may count, so a small Retry subclass tells
an observer about every attempt that is about to be retried (the final one is seen by the
caller as usual).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


@dataclass(frozen=True)
class RetriedAttempt:
    """An attempt urllib3 is about to retry, as a client records it: the answer (status,
    content type, body) or, when nothing came back, the transport error's class name."""

    status: int | None
    content_type: str | None
    body: str | None
    error: str | None

    @classmethod
    def of(cls, response: Any, error: BaseException | None) -> RetriedAttempt:
        if response is None:
            return cls(None, None, None, type(error).__name__ if error else "retry")
        try:
            body = response.data.decode("utf-8", errors="replace")
        except Exception:  # the body is diagnostic only; never let it break the retry
            body = None
        return cls(response.status, response.headers.get("Content-Type"), body, None)


RetryObserver = Callable[[RetriedAttempt], None]

RETRY_STATUSES = (500, 502, 503, 504)


class ObservedRetry(Retry):
    observer: RetryObserver | None = None
    # urllib3 would retry a 429 carrying Retry-After by itself, sleeping unseen for as long as
    # the header says (minutes on SMA). A rate limit is the client's to record and judge.
    RETRY_AFTER_STATUS_CODES = frozenset({413, 503})

    def new(self, **kw: Any) -> ObservedRetry:
        retry = super().new(**kw)
        retry.observer = self.observer
        return retry

    def increment(
        self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None
    ):  # type: ignore[override]
        # Raises MaxRetryError when exhausted; then the caller sees (and records) the outcome.
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if self.observer is not None:
            self.observer(RetriedAttempt.of(response, error))
        return retry


class RecordsRetriedAttempts:
    """For a client that records every HTTP attempt (clients of metered APIs: each attempt may
    count). While a request is in flight, `_pending` holds `(*request, started)`; an attempt
    urllib3 is about to retry inside the adapter goes to
    `_record(*request, started, status, content_type, body, error)` like any answer, and the
    next attempt's time starts then. Register it with `set_retry_observer(session,
    self._on_retried_attempt)`."""

    _pending: tuple[Any, ...] | None = None
    clock: Callable[[], float]

    def _on_retried_attempt(self, attempt: RetriedAttempt) -> None:
        if self._pending is None:
            return
        *request, started = self._pending
        self._record(  # type: ignore[attr-defined]
            *request, started, attempt.status, attempt.content_type, attempt.body, attempt.error
        )
        self._pending = (*request, self.clock())


class PinnedAdapter(HTTPAdapter):
    """HTTPS adapter that trusts exactly one certificate, whatever its issuer or hostname.

    requests is told not to verify a chain (urllib3 then checks the fingerprint on every new
    connection instead). That is forced per request: REQUESTS_CA_BUNDLE in the environment
    would otherwise override a session's `verify=False` and reject the self-signed certificate.
    """

    def __init__(self, fingerprint: str, **kwargs) -> None:
        self.fingerprint = fingerprint
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["assert_fingerprint"] = self.fingerprint
        kwargs["assert_hostname"] = False
        return super().init_poolmanager(*args, **kwargs)

    def send(self, request, **kwargs):
        kwargs["verify"] = False  # the fingerprint is the verification
        return super().send(request, **kwargs)


def build_session(
    backoff_factor: float = 1.0, retries: int = 3, fingerprint: str | None = None
) -> requests.Session:
    """Retries connection errors and 5xx with exponential backoff.

    POST is not in urllib3's idempotent methods, so a token refresh is retried only when the
    connection failed before anything was sent: re-sending a refresh whose answer was lost would
    spend the single-use refresh token twice.

    With `fingerprint`, HTTPS trusts exactly the certificate with that SHA-256 fingerprint
    (the Envoy's self-signed one) instead of a CA chain.
    """
    retry = ObservedRetry(
        total=retries + 1,
        connect=retries,
        read=1,
        status=retries,
        backoff_factor=backoff_factor,
        status_forcelist=RETRY_STATUSES,
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    if fingerprint:
        session.mount("https://", PinnedAdapter(fingerprint, max_retries=retry))
    else:
        session.mount("https://", HTTPAdapter(max_retries=retry))
    session.headers["User-Agent"] = "solar_pipeline"
    return session


def set_retry_observer(session: requests.Session, observer: RetryObserver | None) -> None:
    for adapter in session.adapters.values():
        if isinstance(adapter, HTTPAdapter) and isinstance(adapter.max_retries, ObservedRetry):
            adapter.max_retries.observer = observer


def json_or_none(body: str | None) -> Any:
    """The body as JSON, or None when it is empty or not JSON."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def excerpt(body: str | None, limit: int = 160) -> str:
    """The start of a body on one line, for error messages."""
    text = " ".join((body or "").split())
    return text[:limit] + ("..." if len(text) > limit else "")
