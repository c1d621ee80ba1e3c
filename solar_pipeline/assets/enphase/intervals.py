"""Shared by the interval assets: merge the raw answers covering a window into rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd

from solar_pipeline.sources.enphase.errors import ParseError
from solar_pipeline.sources.enphase.parse import parse_intervals


def merge_intervals(
    responses: list[tuple[int, str, str]], start: datetime, end: datetime, source_of: dict[str, str]
) -> tuple[pd.DataFrame, int]:
    """Rows for the intervals ending in (start, end]; the newest answer wins per interval.

    Returns the rows and the number of answers whose JSON did not have the documented shape.
    """
    lo, hi = start.timestamp(), end.timestamp()
    merged: dict[tuple[str, int], dict] = {}
    malformed = 0
    for raw_id, endpoint, body in responses:
        try:
            rows = parse_intervals(endpoint, json.loads(body))
        except ParseError:
            malformed += 1
            continue
        source = source_of[endpoint]
        for row in rows:
            if lo < row["end_at"] <= hi:
                merged[(source, row["end_at"])] = {**row, "source": source, "raw_id": raw_id}
    frame = pd.DataFrame(
        [
            {**r, "end_at": datetime.fromtimestamp(end_at, UTC)}
            for (_, end_at), r in sorted(merged.items())
        ],
        columns=["end_at", "wh", "devices_reporting", "powr_w", "source", "raw_id"],
    )
    return frame, malformed


def expected_intervals(start: datetime, end: datetime, step_s: int) -> int:
    """288 five-minute intervals on a 24-hour day, 276 / 300 on the DST switch days."""
    return int((end - start).total_seconds()) // step_s
