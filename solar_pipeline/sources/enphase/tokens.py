"""OAuth token pair storage and the refresh protocol.

Enphase rotates the refresh token on every refresh and (in the strict reading) invalidates the
old one. So the token pair is a single shared, mutable secret: every refresh happens under a
cross-process lock, re-reads the store first (another run may already have refreshed), proves
the store can take a new pair *before* the refresh is sent, and writes the new pair atomically
*before* the new access token is used (a pair that cannot be written is kept where the next
run finds it: token_file.py).

The SMA path reuses this module as it is: its 5-minute access tokens need other freshness
margins (TokenManager's `max_access_age_s` / `min_access_remaining_s`), its refresh tokens have no
stated lifetime (`refresh_lifetime_s`), and an empty store is filled by a client-credentials
grant instead of needing the owner (`first_pair`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Protocol

from solar_pipeline.sources.enphase.errors import ReauthorizationRequired
from solar_pipeline.sources.enphase.token_file import FileTokenStore
from solar_pipeline.sources.enphase.token_pair import (
    MAX_ACCESS_AGE_S,
    MIN_ACCESS_REMAINING_S,
    REFRESH_TOKEN_LIFETIME_S,
    TokenPair,
    TokenStoreError,
)

__all__ = [
    "MAX_ACCESS_AGE_S",
    "MIN_ACCESS_REMAINING_S",
    "REFRESH_TOKEN_LIFETIME_S",
    "FileTokenStore",
    "TokenManager",
    "TokenPair",
    "TokenStore",
    "TokenStoreError",
    "token_store_from_uri",
]


class Reservation(Protocol):
    def commit(self, pair: TokenPair) -> None: ...


class TokenStore(Protocol):
    """Where the single live token pair is kept, with a lock that spans processes.

    `reserve()` proves, before a new pair is requested, that the store can take it, and its
    `commit()` stores the pair or keeps it somewhere the next `read()` finds it (raising
    TokenStoreError that says where): the refresh token it replaces is already spent.
    """

    def read(self) -> TokenPair | None: ...

    def write(self, pair: TokenPair) -> None: ...

    def reserve(self) -> contextlib.AbstractContextManager[Reservation]: ...

    def lock(self) -> contextlib.AbstractContextManager[None]: ...

    def describe(self) -> str: ...


def token_store_from_uri(
    uri: str, variable: str = "ENPHASE_TOKEN_STORE", remedy: str | None = None
) -> TokenStore:
    """`file:<path>` or `k8s:<namespace>/<secret>`, from the setting named `variable`;
    `remedy` ends the message for a damaged store (default: Enphase's re-authorization)."""
    kind, _, rest = uri.partition(":")
    if kind == "file" and rest:
        return FileTokenStore(rest, remedy=remedy)
    if kind == "k8s" and "/" in rest:
        from solar_pipeline.sources.enphase.tokens_k8s import K8sSecretTokenStore

        namespace, _, name = rest.partition("/")
        return K8sSecretTokenStore(namespace, name, remedy=remedy)
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
                return self.store_new(self.first_pair).access_token
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
            refresh_token = pair.refresh_token
            return self.store_new(lambda: self.oauth.refresh(refresh_token)).access_token

    def store_new(self, obtain: Callable[[], TokenPair]) -> TokenPair:
        """Get a new pair with `obtain` (a refresh, a code exchange) and store it before it is
        used: the old refresh token is spent once the request is answered. The store proves
        it can take the pair before `obtain` sends anything. The caller holds the lock."""
        with self.store.reserve() as reservation:
            new = obtain()
            try:
                reservation.commit(new)
            except TokenStoreError:
                self._pair = None  # read again: the pair kept elsewhere is the live one
                raise
        self._pair = new
        return new
