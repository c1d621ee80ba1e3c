"""What the client reports about every HTTP request, and the protocol of whoever stores it.

The store (DuckDB, in the assets layer) writes the ledger row and, for data calls, the raw
response in one go, and answers how many requests the current minute and month have used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class LedgerEntry:
    api: str
    endpoint: str
    kind: str  # data | token
    requested_at: float
    status: int | None
    duration_ms: float
    error: str | None = None


@dataclass(frozen=True)
class RawResponse:
    """A data response (or its absence) exactly as received, before any parsing."""

    system_id: int
    endpoint: str
    query: dict[str, str | int]
    fetched_at: float
    status: int | None
    content_type: str | None
    body: str | None
    elapsed_ms: float
    error: str | None = None
    covers: tuple[int, int] | None = None
    valid_json: bool = field(default=False)


@dataclass(frozen=True)
class Usage:
    minute_count: int
    month_count: int


class RequestLog(Protocol):
    def record(self, entry: LedgerEntry, raw: RawResponse | None = None) -> int | None:
        """Store the entry (and raw response); return the raw row id if one was stored."""
        ...

    def usage(self, now: float) -> Usage:
        """Data requests already made in the clock minute and the calendar month of `now`."""
        ...

    def close(self) -> None:
        """Make everything recorded so far durable."""
        ...
