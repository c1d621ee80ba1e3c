"""Shared by the interval assets: merge the raw answers covering a window into rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from solar_pipeline.energy.model import implausible, one_value
from solar_pipeline.sources.enphase.errors import ParseError
from solar_pipeline.sources.enphase.parse import loads, parse_intervals
from solar_pipeline.sources.parsing import reason
from solar_pipeline.warehouse.fit import misfit

# Seconds per interval of each telemetry endpoint (5-minute micro, 15-minute meter data).
STEP_S = {
    "telemetry/production_micro": 300,
    "telemetry/production_meter": 900,
    "telemetry/consumption_meter": 900,
}
COLUMNS = ["end_at", "wh", "devices_reporting", "powr_w", "source", "raw_id", "flags"]


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    """A parsed row as the table holds it (end_at a timestamp)."""
    return {**row, "end_at": datetime.fromtimestamp(row["end_at"], UTC)}


def merge_intervals(
    responses: list[tuple[int, str, str]],
    start: datetime,
    end: datetime,
    source_of: dict[str, str],
    max_power_w: float,
    checks: dict[str, tuple[str, Callable[[Any], bool]]],
) -> tuple[pd.DataFrame, dict[int, str], list[dict[str, Any]]]:
    """Rows for the intervals ending in (start, end], why each unusable answer was not used
    (per raw id), and the answers' flagged intervals.

    An answer is unusable when its JSON does not have the documented shape, when parsing it
    raises anything at all, or when a value does not fit the table's column (`checks`, from
    warehouse.fit.column_checks): whatever goes wrong with one answer, the others are merged.

    The newest answer wins per interval: Enphase fills in devices that report late, so a later
    answer about the same interval is the better one. Within one answer, an interval listed
    twice with different energy has no value (`duplicate_conflict`: neither copy is more
    credible); a negative value or more than `max_power_w` could make in the interval has none
    either (`negative`, `spike`). The raw answer (raw_id) keeps what was sent; energy.intervals
    fills such an interval from another source or leaves it out.
    """
    lo, hi = start.timestamp(), end.timestamp()
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    problems: dict[int, str] = {}
    for raw_id, endpoint, body in responses:
        source = source_of[endpoint]
        try:
            rows = parse_intervals(endpoint, loads(body))
            # The whole answer, not only this window: its verdict is the same for every run.
            why = next((bad for row in rows if (bad := misfit(_typed(row), checks))), None)
        except Exception as exc:  # one answer never fails the partition
            problems[raw_id] = reason(exc, ParseError)
            continue
        if why is not None:
            problems[raw_id] = why
            continue
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
    return frame, problems, flagged


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
