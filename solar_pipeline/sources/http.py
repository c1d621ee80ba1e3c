"""The HTTP layer every client shares: a session that never follows a redirect, answers read
up to a size cap, and retries that still account for every attempt.

- Redirects: requests would follow a redirect to any host, stripping only `Authorization`: an
  API key in `key` / `X-API-Key` / `Token`, a form with a refresh token or a password (307/308
  re-send it), a key in the query string and cookies would all go there. No credential may
  leave the configured host, so a redirect is never followed (`GuardedSession`, and `receive`
  asks for none); it is an answer like any other, recorded and judged as an error.
- Size: an answer is streamed and its *decoded* bytes counted as they arrive (a gzip bomb is
  small on the wire), and reading stops at SOLAR_MAX_ANSWER_BYTES. The truncated answer is an
  error with no body (a prefix could pass for a complete answer); the error names the cap and
  shows how the answer began.
- Retries: urllib3's Retry retries connection errors and 5xx answers inside the adapter,
  invisible to the caller. Each attempt is an HTTP request that a vendor may count, so a small
  Retry subclass tells an observer about every attempt that is about to be retried (the final
  one is seen by the caller as usual).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_encoding_from_headers
from urllib3.util.retry import Retry

from solar_pipeline.settings import InvalidSettingError, env

MAX_ANSWER_BYTES_VAR = "SOLAR_MAX_ANSWER_BYTES"
# The largest answer the clients ask for is well under 1 MB (a month of SolarEdge quarter-hours
# for five meters, ~0.7 MB); 8 MiB leaves ten times that, and 8 MiB of JSON parsed stays
# under ~100 MB of Python objects, which a Raspberry Pi with 1 GB affords next to Dagster.
DEFAULT_MAX_ANSWER_BYTES = 8 * 1024 * 1024
MIN_MAX_ANSWER_BYTES = 64 * 1024
READ_CHUNK_BYTES = 64 * 1024
REDACTED = "***"


def max_answer_bytes() -> int:
    """SOLAR_MAX_ANSWER_BYTES: the most decoded bytes of one answer that are read."""
    raw = env(MAX_ANSWER_BYTES_VAR)
    if raw is None:
        return DEFAULT_MAX_ANSWER_BYTES
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < MIN_MAX_ANSWER_BYTES:
        raise InvalidSettingError(
            f"{MAX_ANSWER_BYTES_VAR}={raw!r} is not a whole number of bytes of at least "
            f"{MIN_MAX_ANSWER_BYTES} (default {DEFAULT_MAX_ANSWER_BYTES}, 8 MiB)"
        )
    return value


def scrub(text: str | None, secrets: Iterable[str]) -> str | None:
    """`text` with each secret replaced by '***', also in its JSON-escaped and URL-encoded
    spellings (a server may echo a request in either)."""
    if not text:
        return text
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for spelling in {secret, json.dumps(secret)[1:-1], quote(secret, safe="")}:
            text = text.replace(spelling, REDACTED)
    return text


def _read_capped(chunks: Iterator[bytes], limit: int) -> tuple[bytes, bool]:
    """(the bytes, whether there were more than `limit`): at most `limit` + one chunk is held."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            return bytes(buf[:READ_CHUNK_BYTES]), True
    return bytes(buf), False


def _text(data: bytes, headers: Mapping[str, str]) -> str:
    # The declared charset, else what requests assumes (JSON: UTF-8; text/*: ISO-8859-1), else
    # UTF-8: no guessing over the whole body (requests' fallback reads it all again).
    encoding = get_encoding_from_headers(headers) or "utf-8"
    try:
        return data.decode(encoding, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def truncated_error(limit: int, prefix: bytes) -> str:
    began = excerpt(prefix.decode("utf-8", errors="replace"), 120)
    return (
        f"answer truncated at {limit} bytes ({MAX_ANSWER_BYTES_VAR}): not read further and not "
        f"stored; it began {began!r}"
    )


def shown_location(location: str | None, request_url: str) -> str:
    """Where a redirect pointed, without userinfo, query or fragment (they may hold a key)."""
    if not location:
        return "(no Location)"
    parts = urlsplit(urljoin(request_url, location))
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    dropped = " (query left out)" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{dropped}"


@dataclass(frozen=True)
class Received:
    """One answer as a client records it. `error` is set when it is not usable as received:
    a redirect (not followed) or a body over the cap (`body` None then)."""

    status: int
    headers: Mapping[str, str]
    body: str | None
    error: str | None = None

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


def receive(
    session: requests.Session,
    method: str,
    url: str,
    *,
    secrets: Iterable[str] = (),
    max_bytes: int | None = None,
    **kwargs: Any,
) -> Received:
    """Send one request and read its answer: never following a redirect, reading at most
    `max_bytes` (default SOLAR_MAX_ANSWER_BYTES) decoded bytes. `secrets` (credentials sent that
    no genuine answer contains: an API key, a client secret; not a token a token endpoint may
    answer with) become '***' in what is returned, in case the server echoes the request.
    Raises requests.RequestException when no answer came."""
    limit = max_bytes or max_answer_bytes()
    resp = session.request(method, url, stream=True, allow_redirects=False, **kwargs)
    try:
        data, truncated = _read_capped(resp.iter_content(READ_CHUNK_BYTES), limit)
    finally:
        resp.close()  # an unread rest closes the connection instead of returning it to the pool
    secrets = list(secrets)
    if truncated:
        return Received(
            resp.status_code, resp.headers, None, scrub(truncated_error(limit, data), secrets)
        )
    body = scrub(_text(data, resp.headers), secrets)
    error = None
    if 300 <= resp.status_code < 400:
        where = shown_location(resp.headers.get("Location"), url)
        error = scrub(
            f"redirect (HTTP {resp.status_code}) to {where} not followed: credentials go to "
            "the configured host only",
            secrets,
        )
    return Received(resp.status_code, resp.headers, body, error)


@dataclass(frozen=True)
class RetriedAttempt:
    """An attempt urllib3 is about to retry, as a client records it: the answer (status,
    content type, body; a body over the cap is left out and named in `error`) or, when
    nothing came back, the transport error's class name."""

    status: int | None
    content_type: str | None
    body: str | None
    error: str | None

    @classmethod
    def of(cls, response: Any, error: BaseException | None) -> RetriedAttempt:
        if response is None:
            return cls(None, None, None, type(error).__name__ if error else "retry")
        content_type = response.headers.get("Content-Type")
        try:
            limit = max_answer_bytes()
            chunks = response.stream(READ_CHUNK_BYTES, decode_content=True)
            data, truncated = _read_capped(chunks, limit)
        except Exception:  # the body is diagnostic only; never let it break the retry
            return cls(response.status, content_type, None, None)
        if truncated:
            response.close()  # urllib3 would otherwise drain the rest before retrying
            return cls(response.status, content_type, None, truncated_error(limit, data))
        return cls(response.status, content_type, _text(data, response.headers), None)


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
    ):
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


class GuardedSession(requests.Session):
    """A Session that never follows a redirect, whatever the caller asks (see the module notes):
    the redirect itself comes back as the answer."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["allow_redirects"] = False
        return super().send(request, **kwargs)


def build_session(
    backoff_factor: float = 1.0, retries: int = 3, fingerprint: str | None = None
) -> requests.Session:
    """Retries connection errors and 5xx with exponential backoff.

    POST is not in urllib3's idempotent methods, so a token refresh is retried only when the
    connection failed before anything was sent: re-sending a refresh whose answer was lost would
    spend the single-use refresh token twice.

    With `fingerprint`, HTTPS trusts exactly the certificate with that SHA-256 fingerprint
    (the Envoy's self-signed one) instead of a CA chain. The session never follows a redirect.
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
    session = GuardedSession()
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
    """The body as JSON, or None when it is empty, not JSON or nested too deeply to read.
    NaN, Infinity and 1e400 are read (as float nan/inf): judging values is the parsers' job."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python reads
        return None


def excerpt(body: str | None, limit: int = 160) -> str:
    """The start of a body on one line, for error messages."""
    text = " ".join((body or "").split())
    return text[:limit] + ("..." if len(text) > limit else "")
