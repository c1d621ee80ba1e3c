"""Shared by the interval assets: merge the raw answers covering a window into rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from solar_pipeline.sources.enphase.errors import ParseError
from solar_pipeline.sources.enphase.parse import loads, parse_intervals
from solar_pipeline.sources.parsing import reason
from solar_pipeline.warehouse.fit import misfit

COLUMNS = ["end_at", "wh", "devices_reporting", "powr_w", "source", "raw_id"]


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    """A parsed row as the table holds it (end_at a timestamp)."""
    return {**row, "end_at": datetime.fromtimestamp(row["end_at"], UTC)}


def merge_intervals(
    responses: list[tuple[int, str, str]],
    start: datetime,
    end: datetime,
    source_of: dict[str, str],
    checks: dict[str, tuple[str, Callable[[Any], bool]]],
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Rows for the intervals ending in (start, end]; the newest answer wins per interval.

    Returns the rows and, per raw id, why an answer was not used: its JSON did not have the
    documented shape, or a value does not fit the table's column (`checks`, from
    warehouse.fit.column_checks). Whatever goes wrong with one answer, the others are merged.
    """
    lo, hi = start.timestamp(), end.timestamp()
    merged: dict[tuple[str, int], dict] = {}
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
        for row in rows:
            if lo < row["end_at"] <= hi:
                merged[(source, row["end_at"])] = {**row, "source": source, "raw_id": raw_id}
    frame = pd.DataFrame(
        [_typed(row) for _, row in sorted(merged.items())],
        columns=COLUMNS,
    )
    return frame, problems


def expected_intervals(start: datetime, end: datetime, step_s: int) -> int:
    """288 five-minute intervals on a 24-hour day, 276 / 300 on the DST switch days."""
    return int((end - start).total_seconds()) // step_s
