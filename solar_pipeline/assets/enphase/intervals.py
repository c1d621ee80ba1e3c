"""Shared by the interval assets: merge the raw answers covering a window into rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from solar_pipeline.energy.model import implausible, one_value
from solar_pipeline.sources.enphase.errors import ParseError
from solar_pipeline.sources.enphase.parse import parse_intervals

# Seconds per interval of each telemetry endpoint (5-minute micro, 15-minute meter data).
STEP_S = {
    "telemetry/production_micro": 300,
    "telemetry/production_meter": 900,
    "telemetry/consumption_meter": 900,
}
COLUMNS = ["end_at", "wh", "devices_reporting", "powr_w", "source", "raw_id", "flags"]


def merge_intervals(
    responses: list[tuple[int, str, str]],
    start: datetime,
    end: datetime,
    source_of: dict[str, str],
    max_power_w: float,
) -> tuple[pd.DataFrame, int, list[dict[str, Any]]]:
    """Rows for the intervals ending in (start, end], the answers' flagged intervals, and the
    number of answers whose JSON did not have the documented shape.

    The newest answer wins per interval: Enphase fills in devices that report late, so a later
    answer about the same interval is the better one. Within one answer, an interval listed
    twice with different energy has no value (`duplicate_conflict`: neither copy is more
    credible); a negative value or more than `max_power_w` could make in the interval has none
    either (`negative`, `spike`). The raw answer (raw_id) keeps what was sent; energy.intervals
    fills such an interval from another source or leaves it out.
    """
    lo, hi = start.timestamp(), end.timestamp()
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    malformed = 0
    for raw_id, endpoint, body in responses:
        try:
            rows = parse_intervals(endpoint, json.loads(body))
        except ParseError:
            malformed += 1
            continue
        source = source_of[endpoint]
        copies: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            if lo < row["end_at"] <= hi:
                copies.setdefault(row["end_at"], []).append(row)
        for end_at, same in copies.items():
            merged[(source, end_at)] = {
                **_one_row(same, STEP_S[endpoint], max_power_w),
                "source": source,
                "raw_id": raw_id,
            }
    flagged = [
        {
            "source": source,
            "end_at": datetime.fromtimestamp(end_at, UTC).isoformat(),
            "flag": r["flags"],
            "values": r["_values"],
            "raw_id": r["raw_id"],
        }
        for (source, end_at), r in sorted(merged.items())
        if r["flags"]
    ]
    frame = pd.DataFrame(
        [
            {**r, "end_at": datetime.fromtimestamp(end_at, UTC)}
            for (_, end_at), r in sorted(merged.items())
        ],
        columns=COLUMNS,
    )
    return frame, malformed, flagged


def _one_row(copies: list[dict[str, Any]], step_s: int, max_power_w: float) -> dict[str, Any]:
    values = [c["wh"] for c in copies]
    wh, flags = one_value(values)
    row = copies[-1] if not flags else {"devices_reporting": None, "powr_w": None}
    if wh is not None and (flag := implausible(wh, step_s, max_power_w)):
        wh, flags = None, (flag,)
    return {**row, "wh": wh, "flags": ",".join(flags) or None, "_values": values}


def expected_intervals(start: datetime, end: datetime, step_s: int) -> int:
    """288 five-minute intervals on a 24-hour day, 276 / 300 on the DST switch days."""
    return int((end - start).total_seconds()) // step_s
