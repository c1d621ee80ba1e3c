"""Reading a JWT's expiry without verifying it: we only schedule renewals with it."""

from __future__ import annotations

import math

import jwt


def jwt_expiry(token: str) -> int | None:
    """The `exp` claim, or None when the token is not a JWT we can read."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        return None  # Infinity or NaN from a misbehaving issuer: no expiry we can use
    return int(exp)
