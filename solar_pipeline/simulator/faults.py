"""Faults armed by a test, each answering the next N matching requests of a simulator."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


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
