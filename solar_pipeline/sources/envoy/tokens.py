"""The gateway's owner JWT (firmware 7+): configured, stored, or fetched from Enlighten.

Owner tokens last about a year and are bound to one gateway serial. With ENLIGHTEN_USERNAME and
ENLIGHTEN_PASSWORD the token is fetched (Enlighten login, then Entrez `/tokens`) and renewed a
month before it expires; a token pasted into ENVOY_TOKEN (the only way for accounts with
multi-factor authentication) is used as it is.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeGuard

import requests

from solar_pipeline.sources.enphase.token_pair import MAX_EPOCH_S
from solar_pipeline.sources.envoy.errors import EnvoyAuthError
from solar_pipeline.sources.files import (
    PrivateFileError,
    damaged,
    read_private_text,
    write_private_file,
)
from solar_pipeline.sources.http import json_or_none, receive
from solar_pipeline.sources.jwt_claims import jwt_expiry

RENEW_MARGIN_S = 30 * 86400
WHAT = "gateway token file"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnvoyToken:
    token: str
    expires_at: int | None
    origin: str  # setting | enlighten
    obtained_at: int

    def __repr__(self) -> str:
        return f"EnvoyToken(origin={self.origin!r}, expires_at={self.expires_at})"

    def days_left(self, now: float) -> float | None:
        return None if self.expires_at is None else round((self.expires_at - now) / 86400, 2)


def _epoch(value: object) -> TypeGuard[int]:
    return type(value) is int and 0 <= value <= MAX_EPOCH_S


def _parse(text: str) -> EnvoyToken:
    """A stored token; ValueError names what is wrong without quoting the file."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    token, expires, origin, obtained = (
        data.get(k) for k in ("token", "expires_at", "origin", "obtained_at")
    )
    if not isinstance(token, str) or not token:
        raise ValueError("no token")
    if not (_epoch(obtained) and (expires is None or _epoch(expires))):
        raise ValueError("expires_at or obtained_at is not a time in whole seconds")
    return EnvoyToken(token, expires, origin if isinstance(origin, str) else "enlighten", obtained)


class EnlightenTokenFetcher:
    """Enlighten login, then an owner token for one gateway serial from Entrez."""

    def __init__(
        self,
        enlighten_url: str,
        entrez_url: str,
        username: str,
        password: str,
        session: requests.Session,
        timeout: tuple[float, float] = (10.0, 30.0),
    ) -> None:
        self.enlighten_url = enlighten_url.rstrip("/")
        self.entrez_url = entrez_url.rstrip("/")
        self.username = username
        self._password = password
        self.session = session
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"EnlightenTokenFetcher(enlighten_url={self.enlighten_url!r})"

    def fetch(self, serial: str) -> str:
        try:
            # A redirect is not followed: a 307 would re-send the password to its target.
            login = receive(
                self.session,
                "POST",
                f"{self.enlighten_url}/login/login.json",
                data={"user[email]": self.username, "user[password]": self._password},
                timeout=self.timeout,
                secrets=(self._password,),
            )
        except requests.RequestException as exc:
            raise EnvoyAuthError(f"Enlighten login unreachable ({type(exc).__name__})") from None
        if login.error is not None:
            raise EnvoyAuthError(f"Enlighten login: {login.error}; check ENLIGHTEN_URL")
        if login.status in (401, 403):
            raise EnvoyAuthError(
                "Enlighten refused the login: check ENLIGHTEN_USERNAME and ENLIGHTEN_PASSWORD"
            )
        answer = json_or_none(login.body)
        session_id = answer.get("session_id") if isinstance(answer, dict) else None
        if not session_id or not isinstance(session_id, str):
            raise EnvoyAuthError(
                "Enlighten login gave no session id (accounts with multi-factor authentication "
                "cannot log in this way): create an owner token at https://entrez.enphaseenergy.com"
                " and set ENVOY_TOKEN"
            )
        try:
            resp = receive(
                self.session,
                "POST",
                f"{self.entrez_url}/tokens",
                json={
                    "session_id": session_id,
                    "serial_num": serial,
                    "username": self.username,
                },
                timeout=self.timeout,
                secrets=(self._password, session_id),
            )
        except requests.RequestException as exc:
            raise EnvoyAuthError(f"Entrez unreachable ({type(exc).__name__})") from None
        if resp.error is not None:
            raise EnvoyAuthError(f"Entrez: {resp.error}; check ENTREZ_URL")
        token = (resp.body or "").strip()
        if resp.status != 200 or token.count(".") != 2:
            raise EnvoyAuthError(
                f"Entrez gave no token for gateway {serial} (HTTP {resp.status}): "
                "check ENVOY_SERIAL and that the account owns that gateway"
            )
        return token


class EnvoyTokenProvider:
    def __init__(
        self,
        store_path: Path,
        configured: str | None = None,
        fetcher: EnlightenTokenFetcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store_path = store_path
        self._configured = configured
        self.fetcher = fetcher
        self.clock = clock
        self.current: EnvoyToken | None = None

    def _stored(self) -> EnvoyToken | None:
        """The stored token; None when there is none. A damaged file is replaced by a token
        fetched anew when that is possible; otherwise it, like a directory in its place, is an
        error that names the file and the fix (never its contents)."""
        try:
            text = read_private_text(self.store_path, WHAT)
        except PrivateFileError as exc:
            message = f"{exc}, then {self._remedy()}" if exc.replaceable else str(exc)
            raise EnvoyAuthError(message) from None
        if text is None:
            return None
        try:
            return _parse(text)
        except ValueError as exc:
            problem = damaged(self.store_path, WHAT, str(exc))
        if self.fetcher is None:
            raise EnvoyAuthError(f"{problem}, then {self._remedy()}")
        log.warning("%s: fetching a new token from Enlighten to replace it", problem)
        return None

    def _remedy(self) -> str:
        if self.fetcher is not None:
            return "the next run fetches a new token from Enlighten."
        return (
            "set ENVOY_TOKEN to an owner token (https://entrez.enphaseenergy.com), or "
            "ENLIGHTEN_USERNAME and ENLIGHTEN_PASSWORD so one is fetched."
        )

    def token(self, serial: str) -> str:
        now = self.clock()
        if self._configured:
            self.current = EnvoyToken(
                self._configured, jwt_expiry(self._configured), "setting", int(now)
            )
            return self._configured
        stored = self._stored()
        if stored and (stored.expires_at is None or stored.expires_at - now > RENEW_MARGIN_S):
            self.current = stored
            return stored.token
        return self.renew(serial)

    def renew(self, serial: str) -> str:
        """A new token from Enlighten, stored (0600) before it is used."""
        if self.fetcher is None:
            raise EnvoyAuthError(
                "Firmware 7+ needs an owner token: set ENVOY_TOKEN, or ENLIGHTEN_USERNAME and "
                "ENLIGHTEN_PASSWORD (and ENVOY_SERIAL) so it can be fetched and renewed"
            )
        token = self.fetcher.fetch(serial)
        now = int(self.clock())
        self.current = EnvoyToken(token, jwt_expiry(token), "enlighten", now)
        write_private_file(self.store_path, json.dumps(asdict(self.current)))
        return token

    def can_renew(self) -> bool:
        return self.fetcher is not None
