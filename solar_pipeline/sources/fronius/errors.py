"""Errors of the Fronius path. Messages say what to fix; the API has no secret to leak."""

from __future__ import annotations


class FroniusError(RuntimeError):
    """Base class of Fronius Solar API failures."""


class FroniusUnreachable(FroniusError):
    """No HTTP answer at all (refused, timeout) after retries."""


class FroniusUnsupported(FroniusError):
    """HTTP 404: the request does not exist on this device, or the Solar API is switched off."""


class FroniusApiError(FroniusError):
    """HTTP 200 but Head.Status.Code is not 0 (OKAY); code and reason as the device said."""

    def __init__(self, endpoint: str, code: int, reason: str) -> None:
        super().__init__(f"Fronius {endpoint} answered Status.Code {code}: {reason or '(none)'}")
        self.endpoint = endpoint
        self.code = code
        self.reason = reason


class FroniusParseError(FroniusError):
    """A body that is not the documented Head/Body JSON; the raw answer is kept by the caller."""
