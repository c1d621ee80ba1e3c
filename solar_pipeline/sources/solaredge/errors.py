"""Errors of the SolarEdge path. Messages say what to fix and name variables, never keys."""

from __future__ import annotations


class SolarEdgeError(RuntimeError):
    """Base class of every SolarEdge failure."""


class SolarEdgeAuthError(SolarEdgeError):
    """The key was refused (401/403) or belongs to the retired V1 API (410)."""


class DailyLimitReached(SolarEdgeError):
    """SolarEdge answered 429: the 300 requests/day of the key or the site are spent."""


class BudgetExceeded(SolarEdgeError):
    """Our own count says the request would pass the daily budget; nothing was sent."""


class SolarEdgeResponseError(SolarEdgeError):
    """An HTTP error status other than auth and limits; the body excerpt says why."""

    def __init__(self, endpoint: str, status: int | None, detail: str) -> None:
        super().__init__(f"SolarEdge {endpoint} answered {status}: {detail}")
        self.endpoint = endpoint
        self.status = status


class SolarEdgeTransportError(SolarEdgeError):
    """No HTTP response at all (connection refused, timeout) after the retries."""


class ParseError(SolarEdgeError):
    """A body that is not the JSON shape the parser knows; its raw text is kept by the caller."""
