"""Which requests cover a range of days with the fewest calls the API allows.

- production_micro answers at most 24 h from `start_at` (288 five-minute intervals), so a range
  is covered by requests chained every 24 h. Chaining in absolute seconds (not at each local
  midnight) also covers the 25-hour DST day, which one `granularity=day` call would not.
- production_meter / consumption_meter take `granularity=week`: 7 days of 15-minute intervals.
- energy_lifetime returns a whole date range of daily totals in one call.
- events and alarms allow 7 days per call and keep about 6 months; open_events and open_alarms
  list everything open now in one call (reference enphase-cloud-api-v4.md §3.13). A tick reads
  open_alarms for the alarms still open and only the new window for the rest, so an alarm open
  for a year costs no more than one opened today.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

DAY_S = 86_400
WEEK_S = 7 * DAY_S
# The spec lets a window start 9 months back; the release notes say 6 months are kept (§3.13).
EVENT_LOOKBACK_S = 180 * DAY_S
EVENT_OVERLAP_S = 3600
# After downtime, events and alarms catch up two weeks per tick, oldest first, so no tick costs
# more than a constant; the next tick resumes where this one stopped.
MAX_WINDOWS_PER_TICK = 2
# Reads per tick of the week a cleared alarm started in, to learn when it ended (see
# clear_time_fetches).
MAX_CLEAR_READS = 1


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


def window_chunks(
    since: int | None, now: int, first_run_s: int = WEEK_S, limit: int = MAX_WINDOWS_PER_TICK
) -> list[tuple[int, int]]:
    """7-day windows from the last time seen (with overlap), or the last 7 days on a first run;
    at most `limit` of them, oldest first."""
    start = (
        now - first_run_s if since is None else max(since - EVENT_OVERLAP_S, now - EVENT_LOOKBACK_S)
    )
    chunks: list[tuple[int, int]] = []
    while start < now and len(chunks) < limit:
        chunks.append((start, min(start + WEEK_S, now)))
        start += WEEK_S
    return chunks


def event_window_fetches(since: int | None, now: int) -> list[Fetch]:
    return [Fetch("events", {"start_time": a, "end_time": b}) for a, b in window_chunks(since, now)]


def alarm_window_fetches(since: int | None, now: int) -> list[Fetch]:
    """Cleared alarms of the new windows: those that opened and cleared between two ticks never
    show in open_alarms. Alarms still open come from open_alarms, so `cleared=false` (the
    default, §3.13) is not asked."""
    return [
        Fetch("alarms", {"start_time": a, "end_time": b, "cleared": "true"})
        for a, b in window_chunks(since, now)
    ]


def clear_time_fetches(
    starts: list[int], resume_at: int, until: int, now: int, limit: int = MAX_CLEAR_READS
) -> list[Fetch]:
    """Reads of the week an alarm started in, for alarms gone from open_alarms whose end time
    no window of this tick returned.

    If the API selects alarms by start time, a cleared alarm is only in the window holding its
    start (the reference does not say which; see simulator/enphase_alarms.py). Starts at or
    after `resume_at` were in this tick's windows already; starts beyond the look-back cannot
    be asked for. One read covers every alarm that started in its week; `until` (the end of
    this tick's alarm windows) caps it so the next tick still resumes where this one stopped.
    """
    fetches: list[Fetch] = []
    covered_to = None
    for started in sorted(starts):
        a = started - EVENT_OVERLAP_S
        if started >= resume_at or a < now - EVENT_LOOKBACK_S:
            continue
        if covered_to is not None and started < covered_to:
            continue
        if len(fetches) == limit:
            break
        b = min(a + WEEK_S, until)
        if b <= started:
            continue
        fetches.append(Fetch("alarms", {"start_time": a, "end_time": b, "cleared": "true"}))
        covered_to = b
    return fetches
