"""Writes a poll's gateway answers to raw.envoy_responses in one short transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from solar_pipeline.sources.envoy.client import EnvoyResponse
from solar_pipeline.warehouse.db import connect


class EnvoyRawWriter:
    """Collects the answers of one poll (the client calls `add`), then `flush`es them.

    The serial and firmware are known only once /info has been parsed, so rows are written
    at the end of the poll; a poll is a handful of requests, so a crash loses at most one.
    """

    def __init__(self, path: str | Path, run_id: str | None = None) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.pending: list[EnvoyResponse] = []
        self.written = 0

    def add(self, response: EnvoyResponse) -> None:
        self.pending.append(response)

    def flush(self, serial: str, firmware: str | None) -> int:
        if not self.pending:
            return 0
        rows, self.pending = self.pending, []
        poll_id = uuid.uuid4().hex
        with connect(self.path) as conn:
            conn.executemany(
                """
                INSERT INTO raw.envoy_responses (fetched_at, envoy_serial, endpoint, http_status,
                    elapsed_ms, error, content_type, body, firmware, poll_id, run_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    [
                        datetime.fromtimestamp(r.fetched_at, UTC),
                        serial,
                        r.endpoint,
                        r.status,
                        r.elapsed_ms,
                        r.error,
                        r.content_type,
                        r.body,
                        firmware,
                        poll_id,
                        self.run_id,
                    ]
                    for r in rows
                ],
            )
        self.written += len(rows)
        return len(rows)
