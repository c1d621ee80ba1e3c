"""OAuth token pair storage and the refresh protocol.

Enphase rotates the refresh token on every refresh and (in the strict reading) invalidates the
old one. So the token pair is a single shared, mutable secret: every refresh happens under a
cross-process lock, re-reads the store first (another run may already have refreshed), and
writes the new pair atomically *before* the new access token is used.

The SMA path reuses this module as it is: its 5-minute access tokens need other freshness
margins (TokenManager's `max_access_age_s` / `min_access_remaining_s`), its refresh tokens have no
stated lifetime (`refresh_lifetime_s`), and an empty store is filled by a client-credentials
grant instead of needing the owner (`first_pair`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from filelock import FileLock

from solar_pipeline.sources.enphase.errors import ReauthorizationRequired
from solar_pipeline.sources.files import private_dir, write_private_file
from solar_pipeline.sources.jwt_claims import jwt_expiry

# Enphase refresh tokens live ~30 days from the refresh that minted them (a new rolling window
# per refresh); used when a token is not a JWT we can read.
REFRESH_TOKEN_LIFETIME_S = 30 * 86400
# Proactive refresh: the access token lives a day; refresh when older than 12 h or within 1 h
# of expiry so a long backfill never starts with a token about to die.
MAX_ACCESS_AGE_S = 12 * 3600
MIN_ACCESS_REMAINING_S = 3600


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access_expires_at: int
    refresh_expires_at: int
    obtained_at: int
    origin: str = "refresh"  # refresh | code | seed

    def __repr__(self) -> str:  # never let a token reach a log through repr()
        return f"TokenPair(origin={self.origin!r}, obtained_at={self.obtained_at})"

    @classmethod
    def from_token_response(
        cls,
        body: dict,
        now: int,
        origin: str,
        refresh_lifetime_s: int = REFRESH_TOKEN_LIFETIME_S,
    ) -> TokenPair:
        access = str(body["access_token"])
        refresh = str(body["refresh_token"])
        access_exp = jwt_expiry(access) or now + int(body.get("expires_in") or 86400)
        refresh_exp = jwt_expiry(refresh) or now + refresh_lifetime_s
        return cls(access, refresh, access_exp, refresh_exp, now, origin)

    @classmethod
    def seed(cls, refresh_token: str, now: int) -> TokenPair:
        exp = jwt_expiry(refresh_token) or now + REFRESH_TOKEN_LIFETIME_S
        return cls("", refresh_token, 0, exp, now, "seed")

    def access_is_fresh(
        self,
        now: float,
        max_age_s: float = MAX_ACCESS_AGE_S,
        min_remaining_s: float = MIN_ACCESS_REMAINING_S,
    ) -> bool:
        return (
            bool(self.access_token)
            and now - self.obtained_at < max_age_s
            and self.access_expires_at - now > min_remaining_s
        )

    def status(self, now: float) -> dict[str, float]:
        """Ages and lifetimes for metadata (numbers only: safe to show)."""
        return {
            "refresh_token_age_days": round((now - self.obtained_at) / 86400, 2),
            "refresh_token_expires_in_days": round((self.refresh_expires_at - now) / 86400, 2),
            "access_token_expires_in_hours": round(max(0, self.access_expires_at - now) / 3600, 2),
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TokenPair:
        return cls(**json.loads(text))


class TokenStore(Protocol):
    """Where the single live token pair is kept, with a lock that spans processes."""

    def read(self) -> TokenPair | None: ...

    def write(self, pair: TokenPair) -> None: ...

    def lock(self) -> contextlib.AbstractContextManager[None]: ...

    def describe(self) -> str: ...


class FileTokenStore:
    """A JSON file (mode 0600) replaced atomically; a sibling .lock file serialises refreshes."""

    def __init__(self, path: str | Path, lock_timeout_s: float = 300) -> None:
        self.path = Path(path)
        self._lock = FileLock(str(self.path) + ".lock", timeout=lock_timeout_s)

    def describe(self) -> str:
        return f"file:{self.path}"

    def read(self) -> TokenPair | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        return TokenPair.from_json(text)

    def write(self, pair: TokenPair) -> None:
        write_private_file(self.path, pair.to_json())

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        private_dir(self.path.parent)
        with self._lock:
            yield


def token_store_from_uri(uri: str, variable: str = "ENPHASE_TOKEN_STORE") -> TokenStore:
    """`file:<path>` or `k8s:<namespace>/<secret>`, from the setting named `variable`."""
    kind, _, rest = uri.partition(":")
    if kind == "file" and rest:
        return FileTokenStore(rest)
    if kind == "k8s" and "/" in rest:
        from solar_pipeline.sources.enphase.tokens_k8s import K8sSecretTokenStore

        namespace, _, name = rest.partition("/")
        return K8sSecretTokenStore(namespace, name)
    raise ValueError(
        f"{variable}={uri!r} is not understood: use file:<path> or k8s:<namespace>/<secret>"
    )


class Refresher(Protocol):
    def refresh(self, refresh_token: str) -> TokenPair: ...


class TokenManager:
    """Hands out a usable access token, refreshing at most once per need across processes.

    `first_pair`, when given, fills an empty store (under the lock) instead of failing: right
    for an API whose app credentials alone get a token (SMA), wrong for Enphase, whose first
    pair needs the owner's consent in a browser.
    """

    def __init__(
        self,
        store: TokenStore,
        oauth: Refresher,
        clock: Callable[[], float] = time.time,
        *,
        max_access_age_s: float = MAX_ACCESS_AGE_S,
        min_access_remaining_s: float = MIN_ACCESS_REMAINING_S,
        first_pair: Callable[[], TokenPair] | None = None,
    ) -> None:
        self.store = store
        self.oauth = oauth
        self.clock = clock
        self.max_access_age_s = max_access_age_s
        self.min_access_remaining_s = min_access_remaining_s
        self.first_pair = first_pair
        self._pair: TokenPair | None = None

    def _fresh(self, pair: TokenPair, now: float) -> bool:
        return pair.access_is_fresh(now, self.max_access_age_s, self.min_access_remaining_s)

    def seed_if_empty(self, refresh_token: str | None) -> bool:
        """Write ENPHASE_REFRESH_TOKEN to an empty store; ignored once the store holds a pair."""
        if not refresh_token or self.store.read() is not None:
            return False
        with self.store.lock():
            if self.store.read() is not None:
                return False
            self.store.write(TokenPair.seed(refresh_token, int(self.clock())))
            return True

    def current(self) -> TokenPair | None:
        return self._pair or self.store.read()

    def access_token(self) -> str:
        pair = self._pair or self.store.read()
        if pair is not None and self._fresh(pair, self.clock()):
            self._pair = pair
            return pair.access_token
        return self._refresh(rejected=None)

    def refresh_after_401(self, rejected: str) -> str:
        """The API refused `rejected`: refresh unless another process already replaced it."""
        return self._refresh(rejected=rejected)

    def _refresh(self, rejected: str | None) -> str:
        with self.store.lock():
            pair = self.store.read()
            if pair is None and self.first_pair is not None:
                new = self.first_pair()
                self.store.write(new)
                self._pair = new
                return new.access_token
            if pair is None:
                raise ReauthorizationRequired(
                    f"the token store {self.store.describe()} is empty and "
                    "ENPHASE_REFRESH_TOKEN is not set"
                )
            now = self.clock()
            if rejected is None and self._fresh(pair, now):
                self._pair = pair  # another process refreshed while we waited for the lock
                return pair.access_token
            # After a 401: if the store already holds another live token, someone else
            # refreshed; use theirs rather than spend the refresh token again.
            if (
                rejected is not None
                and pair.access_token not in ("", rejected)
                and pair.access_expires_at > now
            ):
                self._pair = pair
                return pair.access_token
            new = self.oauth.refresh(pair.refresh_token)
            # Persist before use: the old refresh token is now spent.
            self.store.write(new)
            self._pair = new
            return new.access_token
