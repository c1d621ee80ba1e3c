"""Which requests cover a range of days with the fewest calls the API allows.

- production_micro answers at most 24 h from `start_at` (288 five-minute intervals), so a range
  is covered by requests chained every 24 h. Chaining in absolute seconds (not at each local
  midnight) also covers the 25-hour DST day, which one `granularity=day` call would not.
- production_meter / consumption_meter take `granularity=week`: 7 days of 15-minute intervals.
- energy_lifetime returns a whole date range of daily totals in one call.
- events and alarms allow 7 days per call and keep about 6 months.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

DAY_S = 86_400
WEEK_S = 7 * DAY_S
EVENT_LOOKBACK_S = 180 * DAY_S
EVENT_OVERLAP_S = 3600


@dataclass(frozen=True)
class Fetch:
    endpoint: str
    params: dict[str, Any] = field(default_factory=dict)
    covers: tuple[int, int] | None = None


def _chained(endpoint: str, start: int, end: int, now: int, span: int, granularity: str):
    t = start
    while t < end and t < now:
        yield Fetch(endpoint, {"start_at": t, "granularity": granularity}, (t, t + span))
        t += span


def telemetry_fetches(
    start: int, end: int, now: int, has_production_meter: bool, has_consumption_meter: bool
) -> list[Fetch]:
    """Requests for the interval telemetry whose intervals end in (start, end]."""
    fetches = list(_chained("telemetry/production_micro", start, end, now, DAY_S, "day"))
    if has_production_meter:
        fetches += _chained("telemetry/production_meter", start, end, now, WEEK_S, "week")
    if has_consumption_meter:
        fetches += _chained("telemetry/consumption_meter", start, end, now, WEEK_S, "week")
    return fetches


def lifetime_fetch(first: date, last: date, today: date, covers: tuple[int, int]) -> list[Fetch]:
    if first > today:
        return []
    end = min(last, today)
    params = {"start_date": first.isoformat(), "end_date": end.isoformat(), "production": "all"}
    return [Fetch("energy_lifetime", params, covers)]


def window_chunks(since: int | None, now: int, first_run_s: int = WEEK_S) -> list[tuple[int, int]]:
    """7-day windows from the last time seen (with overlap), or the last 7 days on a first run."""
    start = (
        now - first_run_s if since is None else max(since - EVENT_OVERLAP_S, now - EVENT_LOOKBACK_S)
    )
    chunks = []
    while start < now:
        chunks.append((start, min(start + WEEK_S, now)))
        start += WEEK_S
    return chunks


def event_fetches(events_since: int | None, alarms_since: int | None, now: int) -> list[Fetch]:
    fetches = [
        Fetch("events", {"start_time": a, "end_time": b})
        for a, b in window_chunks(events_since, now)
    ]
    for a, b in window_chunks(alarms_since, now):
        # Active and cleared alarms are separate queries; both are needed to see a clear.
        fetches.append(Fetch("alarms", {"start_time": a, "end_time": b, "cleared": "false"}))
        fetches.append(Fetch("alarms", {"start_time": a, "end_time": b, "cleared": "true"}))
    return fetches
