"""The OAuth token pair as stored, and the error of a store that cannot hold it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from solar_pipeline.sources.jwt_claims import jwt_expiry

# Enphase refresh tokens live ~30 days from the refresh that minted them (a new rolling window
# per refresh); used when a token is not a JWT we can read.
REFRESH_TOKEN_LIFETIME_S = 30 * 86400
# Proactive refresh: the access token lives a day; refresh when older than 12 h or within 1 h
# of expiry so a long backfill never starts with a token about to die.
MAX_ACCESS_AGE_S = 12 * 3600
MIN_ACCESS_REMAINING_S = 3600
# Stored times are Unix seconds; anything past this (year 36812) is damage, not a date.
MAX_EPOCH_S = 2**40


def _clamp(epoch: int) -> int:
    return min(max(epoch, 0), MAX_EPOCH_S)


class TokenStoreError(RuntimeError):
    """The token store cannot be read or written as it is. The message names the store and
    what to do, and never carries a token."""


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
        # Whatever the answer claims, store times from_json reads back: an unreadable store
        # would cost the pair just received.
        return cls(access, refresh, _clamp(access_exp), _clamp(refresh_exp), now, origin)

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
        """Parse a stored pair; ValueError says what is wrong in words that quote nothing of
        the text (it holds tokens): only field names and kinds."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise ValueError("not valid JSON") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        wanted = {f.name: f.type for f in fields(cls)}
        missing = [name for name in wanted if name != "origin" and name not in data]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        for name, kind in wanted.items():
            value = data.get(name, "refresh")
            if kind == "str" and not isinstance(value, str):
                raise ValueError(f"{name} is not text")
            if kind == "int" and not (type(value) is int and 0 <= value <= MAX_EPOCH_S):
                raise ValueError(f"{name} is not a time in whole seconds")
        if not data["refresh_token"]:
            raise ValueError("refresh_token is empty")
        # Fields a newer version may add are ignored rather than refused.
        return cls(**{name: data[name] for name in wanted if name in data})
