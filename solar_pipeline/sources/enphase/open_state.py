"""Which alarms and events are open: parsed answers applied in the order they were fetched.

Window answers (`alarms`, `events`) say what they hold. The open lists (`open_alarms`,
`open_events`, reference enphase-cloud-api-v4.md §3.13) say more: everything open now, so an
item we knew open that is missing from a later list has cleared (alarms) or closed (events),
however long ago it started. Enphase's end time then comes from a window answer if one holds
it; until then an alarm keeps `ended_at` NULL and `seen_cleared_at` = when the list first
missed it (the clear happened before that).

Pure functions: rows in, rows out. The caller loads the known rows and writes the result.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

Row = dict[str, Any]
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Answer:
    endpoint: str
    raw_id: int
    fetched_at: datetime
    rows: list[Row]


def _merge(
    known: dict[K, Row],
    answers: Iterable[Answer],
    key: Callable[[Row], K],
    open_list: str,
    is_open: Callable[[Row], bool],
    close: Callable[[Row, Answer], Row],
    reopen: dict[str, Any],
) -> dict[K, Row]:
    state = dict(known)
    changed: dict[K, Row] = {}
    for answer in answers:  # oldest first: a later answer wins
        if answer.endpoint == open_list:
            listed = {key(r) for r in answer.rows}
            for k, row in list(state.items()):
                if is_open(row) and k not in listed:
                    state[k] = changed[k] = close(row, answer)
        for r in answer.rows:
            k = key(r)
            row = {**state.get(k, {}), **r, "raw_id": answer.raw_id}
            if answer.endpoint == open_list:
                row |= reopen
            state[k] = changed[k] = row
    return changed


def merge_alarms(known: dict[str, Row], answers: Iterable[Answer]) -> dict[str, Row]:
    """Rows to write, by alarm_id. `known`: the stored rows of every alarm that is open or
    that the answers mention (so a stored `seen_cleared_at` survives)."""

    def close(row: Row, answer: Answer) -> Row:
        return {**row, "cleared": True, "seen_cleared_at": answer.fetched_at}

    changed = _merge(
        known,
        answers,
        key=lambda r: r["alarm_id"],
        open_list="open_alarms",
        is_open=lambda r: not r.get("cleared"),
        close=close,
        reopen={"cleared": False, "ended_at": None, "seen_cleared_at": None},
    )
    return {k: {"seen_cleared_at": None, **row} for k, row in changed.items()}


EVENT_KEY = ("system_id", "event_type_id", "serial_number", "started_at")


def merge_events(known: dict[tuple, Row], answers: Iterable[Answer]) -> dict[tuple, Row]:
    """Rows to write, by (system_id, event_type_id, serial_number, started_at); an event gone
    from open_events is `closed`, its `ended_at` known only if a window answer gave it."""
    return _merge(
        known,
        answers,
        key=lambda r: tuple(r[c] for c in EVENT_KEY),
        open_list="open_events",
        is_open=lambda r: r.get("status") == "open",
        close=lambda row, _: {**row, "status": "closed"},
        reopen={"status": "open", "ended_at": None},
    )
