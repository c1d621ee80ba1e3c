"""The gateway client: /info probe, auth chosen by firmware, pinned TLS, every answer recorded.

pyenphase-style bootstrap: `/info` needs no auth and tells the serial and firmware; firmware 7+
wants an owner JWT (checked once at `/auth/check_jwt`, which sets a `sessionId` cookie the
later calls use), R3.9 to < 7 wants HTTP Digest as user `envoy` with the serial's last six
digits, anything older has no JSON API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.auth import HTTPDigestAuth

from solar_pipeline.sources.envoy.errors import (
    CertificateChanged,
    EnvoyAuthError,
    EnvoyError,
    EnvoyUnreachable,
    UnsupportedFirmware,
)
from solar_pipeline.sources.envoy.parse import EnvoyInfo, EnvoyParseError, parse_info
from solar_pipeline.sources.envoy.tls import CertificatePin
from solar_pipeline.sources.envoy.tokens import EnvoyTokenProvider
from solar_pipeline.sources.http import (
    RetriedAttempt,
    build_session,
    receive,
    set_retry_observer,
)

MIN_JSON_VERSION = (3, 9)
MIN_JWT_VERSION = (7,)


@dataclass(frozen=True)
class EnvoyResponse:
    endpoint: str
    fetched_at: float
    status: int | None
    content_type: str | None
    body: str | None
    elapsed_ms: float
    error: str | None = None


class EnvoyClient:
    def __init__(
        self,
        url: str,
        state_dir: Path,
        tokens: EnvoyTokenProvider,
        record: Callable[[EnvoyResponse], None],
        cert_fingerprint: str | None = None,
        serial: str | None = None,
        timeout: tuple[float, float] = (10.0, 45.0),
        retries: int = 2,
        backoff: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        self.serial = serial  # ENVOY_SERIAL, for the Entrez token; else the one /info reports
        self.tokens = tokens
        self.record = record
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.clock = clock
        self.https = urlsplit(self.url).scheme == "https"
        self.pin = CertificatePin(self.url, cert_fingerprint, state_dir / "envoy_cert_pin.json")
        self.fingerprint: str | None = None
        self.pin_origin: str | None = None
        self.info: EnvoyInfo | None = None
        self.session: requests.Session | None = None
        self._jwt = False
        self._pending: tuple[str, float] | None = None

    def __repr__(self) -> str:
        return f"EnvoyClient(url={self.url!r})"

    # -- connection ------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        if self.session is None:
            if self.https:
                try:
                    self.fingerprint, self.pin_origin = self.pin.fingerprint()
                except OSError as exc:
                    raise EnvoyUnreachable(
                        f"Envoy at {self.url} unreachable for its certificate "
                        f"({type(exc).__name__})"
                    ) from None
            self.session = build_session(self.backoff, self.retries, self.fingerprint)
            set_retry_observer(self.session, self._on_retried_attempt)
        return self.session

    def connect(self) -> EnvoyInfo:
        """Probe /info and authenticate; raises for what a person must fix."""
        resp = self.get("/info", authenticated=False)
        if resp.status != 200 or resp.body is None or resp.error is not None:
            raise EnvoyUnreachable(
                f"Envoy at {self.url}: /info answered {resp.error or resp.status}"
            )
        try:
            info = parse_info(resp.body)
        except EnvoyParseError as exc:
            raise EnvoyError(f"{self.url}/info is not an Envoy's answer ({exc})") from None
        self.info = info  # known even when refused below, so the raw rows carry the serial
        if info.version[:2] < MIN_JSON_VERSION:
            raise UnsupportedFirmware(
                f"Envoy {info.serial} runs firmware {info.firmware}, older than R3.9: it has no "
                "JSON API, only an HTML page, which solar_pipeline does not scrape. Ask Enphase "
                "for a firmware update, or use the Enphase cloud source (ENPHASE_* settings)."
            )
        session = self._session()
        if info.version[:1] >= MIN_JWT_VERSION:
            self._jwt = True
            session.auth = None
            if not self._check_jwt(self.tokens.token(self.serial or info.serial)):
                self._reauthenticate()
        else:
            self._jwt = False
            # R3.9 to < 7: the owner-level account is `envoy` with the serial's last 6 digits.
            session.auth = HTTPDigestAuth("envoy", info.serial[-6:])
        return info

    def _check_jwt(self, token: str) -> bool:
        resp = self._send("/auth/check_jwt", {"Authorization": f"Bearer {token}"}, (token,))
        return resp.status == 200 and resp.error is None

    def _reauthenticate(self) -> bool:
        """After a 401: re-check the token (new session cookie), renew it if refused."""
        serial = self.serial or (self.info.serial if self.info else "")
        if self._check_jwt(self.tokens.token(serial)):
            return True
        if self.tokens.can_renew() and self._check_jwt(self.tokens.renew(serial)):
            return True
        raise EnvoyAuthError(
            f"The Envoy at {self.url} refuses ENVOY_TOKEN: it may have expired or belong to "
            "another gateway. Create a new owner token at https://entrez.enphaseenergy.com, or "
            "set ENLIGHTEN_USERNAME and ENLIGHTEN_PASSWORD so the pipeline renews it."
        )

    # -- requests --------------------------------------------------------------------------

    def get(self, endpoint: str, authenticated: bool = True) -> EnvoyResponse:
        resp = self._send(endpoint)
        if authenticated and self._jwt and resp.status in (401, 403) and self._reauthenticate():
            resp = self._send(endpoint)
        return resp

    def _send(
        self, endpoint: str, headers: dict[str, str] | None = None, secrets: tuple[str, ...] = ()
    ) -> EnvoyResponse:
        session = self._session()
        started = self.clock()
        self._pending = (endpoint, started)
        try:
            # Missing endpoints can redirect to error pages or to https://localhost/: a redirect
            # is recorded, never followed (the session cookie would go along).
            got = receive(
                session,
                "GET",
                self.url + endpoint,
                headers=headers,
                timeout=self.timeout,
                secrets=secrets,
            )
        except requests.exceptions.SSLError:
            if self.fingerprint:
                raise self.pin.changed(self.fingerprint) from None
            raise
        except requests.RequestException as exc:
            resp = EnvoyResponse(
                endpoint,
                started,
                None,
                None,
                None,
                (self.clock() - started) * 1000,
                type(exc).__name__,
            )
            self.record(resp)
            return resp
        finally:
            self._pending = None
        resp = EnvoyResponse(
            endpoint,
            started,
            got.status,
            got.content_type,
            got.body,
            (self.clock() - started) * 1000,
            got.error,
        )
        self.record(resp)
        return resp

    def _on_retried_attempt(self, attempt: RetriedAttempt) -> None:
        if self._pending is None:
            return
        endpoint, started = self._pending
        self.record(
            EnvoyResponse(
                endpoint,
                started,
                attempt.status,
                attempt.content_type,
                attempt.body,
                (self.clock() - started) * 1000,
                attempt.error,
            )
        )
        self._pending = (endpoint, self.clock())


__all__ = ["CertificateChanged", "EnvoyClient", "EnvoyResponse"]
