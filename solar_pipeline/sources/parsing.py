"""What the vendor parsers share: naive site-local labels read as instants, and the numbers
they carry.

SolarEdge, GoodWe and SMA send wall-clock times without an offset. On the 25-hour day the
repeated hour's labels come twice, in time order; on the 23-hour day the skipped hour has no
labels (a label inside it is kept, flagged). Reading them with the site's IANA zone, never
as UTC, is what puts each value in the right local day (field notes §1.12, §4.6).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo


class NaiveLocaliser:
    """Naive local labels of one series, in time order -> UTC instants.

    A label of the repeated hour is the earlier instant the first time, the later the second;
    any further copy (or a second copy of any other label) gives None: the caller reports it
    and leaves the value out. A label in the skipped hour gives the instant it would be at the
    earlier offset, flagged `nonexistent_local_time`."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.seen: Counter[datetime] = Counter()

    def __call__(self, naive: datetime) -> tuple[datetime | None, tuple[str, ...]]:
        self.seen[naive] += 1
        times = self.seen[naive]
        early = naive.replace(tzinfo=self.zone, fold=0)
        late = naive.replace(tzinfo=self.zone, fold=1)
        instant = early.astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) != naive:
            # In the skipped hour of the 23-hour day: no such wall-clock time exists.
            return (instant, ("nonexistent_local_time",)) if times == 1 else (None, ())
        if early.utcoffset() != late.utcoffset():  # ambiguous: the hour that comes twice
            if times > 2:
                return None, ()
            return (early if times == 1 else late).astimezone(UTC), ()
        if times > 1:
            return None, ()
        return instant, ()


def nonnegative_number(value: Any, strings: bool = False) -> float | None:
    """A finite, non-negative number (with `strings`, also one spelled as text), else None:
    the caller says why."""
    if isinstance(value, bool):
        return None
    if strings and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)
