"""Errors of the GoodWe SEMS path. Messages say what to fix and name variables, never secrets."""

from __future__ import annotations


class SemsError(RuntimeError):
    """Base class of every GoodWe SEMS failure."""


class SemsAuthError(SemsError):
    """The login was refused, or a fresh token was refused again at once."""


class SemsRateLimited(SemsError):
    """SEMS answered its rate-limit code (GY0429) or HTTP 429; wait `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SemsResponseError(SemsError):
    """An HTTP error status or a SEMS error code other than auth and limits."""

    def __init__(self, endpoint: str, status: int | None, code: str | None, detail: str) -> None:
        shown = f"code {code}" if code is not None else f"HTTP {status}"
        super().__init__(f"GoodWe SEMS {endpoint} answered {shown}: {detail}")
        self.endpoint = endpoint
        self.status = status
        self.code = code


class SemsTransportError(SemsError):
    """No HTTP response at all (connection refused, timeout) after the retries."""


class ParseError(SemsError):
    """A body that is not the JSON shape the parser knows; its raw text is kept by the caller."""
