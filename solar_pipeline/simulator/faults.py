"""Faults armed by a test, each answering the next N matching requests of a simulator."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from werkzeug.wrappers import Response


class Fault(Protocol):
    remaining: int


F = TypeVar("F", bound=Fault)


class FaultQueue(Generic[F]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[F] = []

    def add(self, fault: F) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, matches: Callable[[F], bool]) -> F | None:
        """The first armed fault that matches this request, spending one of its uses."""
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and matches(fault):
                    fault.remaining -= 1
                    self._faults = [f for f in self._faults if f.remaining > 0]
                    return fault
        return None


@dataclass
class HttpFault:
    """The next `remaining` requests whose path contains `path_contains` (any, if None)
    answer `status` with `body`."""

    remaining: int
    status: int
    body: str | None
    content_type: str
    path_contains: str | None = None

    def matches(self, path: str) -> bool:
        return not self.path_contains or self.path_contains in path


class ArmsHttpFaults:
    """Mixin for a simulator: `fail_next` arms faults; `_fault_answer(path)` serves the next
    one that matches. Each simulator sets its defaults; a cut-off answer of its own API makes
    the default body (a malformed answer the client must keep and report)."""

    fault_status: int = 200
    fault_body: str | None = None
    fault_content_type: str = "application/json"

    def __init__(self) -> None:
        self._faults: FaultQueue[HttpFault] = FaultQueue()

    def fail_next(
        self,
        count: int = 1,
        status: int | None = None,
        body: str | None = None,
        content_type: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with `status` and `body`."""
        self._faults.add(
            HttpFault(
                count,
                self.fault_status if status is None else status,
                self.fault_body if body is None else body,
                content_type or self.fault_content_type,
                path_contains,
            )
        )

    def _fault_answer(self, path: str) -> Response | None:
        fault = self._faults.take(lambda f: f.matches(path))
        if fault is None:
            return None
        return Response(fault.body or "", fault.status, content_type=fault.content_type)
