"""Writes the gateway's answers to raw.envoy_responses, one poll per batch.

The serial and firmware are known only once /info has been parsed, so a poll's answers are
collected (the client calls `add`), sealed with them at the end of the poll (`end_poll`), and
written in one short transaction (`flush`). A flush that cannot get the database (another
writer holds it longer than the lock wait) keeps the sealed polls in memory for the next
flush, so a busy database delays raw rows instead of losing them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from solar_pipeline.sources.envoy.client import EnvoyResponse
from solar_pipeline.warehouse.db import connect


@dataclass(frozen=True)
class _Poll:
    poll_id: str
    serial: str
    firmware: str | None
    responses: list[EnvoyResponse]


class EnvoyRawWriter:
    def __init__(self, path: str | Path, run_id: str | None = None) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self._current: list[EnvoyResponse] = []
        self._sealed: list[_Poll] = []
        self.written = 0

    def add(self, response: EnvoyResponse) -> None:
        self._current.append(response)

    def end_poll(self, serial: str, firmware: str | None) -> None:
        if self._current:
            self._sealed.append(_Poll(uuid.uuid4().hex, serial, firmware, self._current))
            self._current = []

    @property
    def waiting(self) -> int:
        return sum(len(p.responses) for p in self._sealed)

    def flush(self) -> int:
        """Write every sealed poll in one transaction; on failure they stay for the next try."""
        if not self._sealed:
            return 0
        rows = [
            [
                datetime.fromtimestamp(r.fetched_at, UTC),
                p.serial,
                r.endpoint,
                r.status,
                r.elapsed_ms,
                r.error,
                r.content_type,
                r.body,
                p.firmware,
                p.poll_id,
                self.run_id,
            ]
            for p in self._sealed
            for r in p.responses
        ]
        with connect(self.path) as conn:
            conn.executemany(
                """
                INSERT INTO raw.envoy_responses (fetched_at, envoy_serial, endpoint, http_status,
                    elapsed_ms, error, content_type, body, firmware, poll_id, run_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                rows,
            )
        self._sealed = []
        self.written += len(rows)
        return len(rows)
