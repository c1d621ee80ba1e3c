"""The daily request budget of a SolarEdge key, enforced before anything is sent.

SolarEdge allows 300 requests a day per key and per site; the 429 that follows gives no time
to wait for, so a run must stop *before* it starts what the day cannot afford. The Enphase
RequestBudget is not reused: its Plan, Usage and RequestLog.usage know only a clock minute and
a calendar month (see the report of issue 7 for the generalisation it needs).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from solar_pipeline.sources.solaredge.errors import BudgetExceeded

PER_DAY = 300
# Which day SolarEdge's counter resets on is not documented; UTC is the assumption.
QUOTA_ZONE = "UTC"


class DailyBudget:
    """At most `per_day` requests per quota day for one key.

    `used_today(now)` is the caller's ledger (requests already made today with this key, by any
    process); without it only this process's own requests are counted.
    """

    def __init__(
        self,
        per_day: int = PER_DAY,
        used_today: Callable[[float], int] | None = None,
        *,
        key_name: str = "SOLAREDGE_API_KEY",
        zone: str = QUOTA_ZONE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_day = per_day
        self.used_today = used_today
        self.key_name = key_name
        self.zone = ZoneInfo(zone)
        self.clock = clock
        self._sent: Counter[date] = Counter()

    def _day(self, now: float) -> date:
        return datetime.fromtimestamp(now, self.zone).date()

    def used(self) -> int:
        now = self.clock()
        if self.used_today is not None:
            return self.used_today(now)
        return self._sent[self._day(now)]

    def remaining(self) -> int:
        return max(self.per_day - self.used(), 0)

    def next_reset(self) -> datetime:
        day = self._day(self.clock()) + timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=self.zone)

    def ensure_available(self, planned: int) -> None:
        """Refuse a run whose planned requests would pass the day's budget."""
        remaining = self.remaining()
        if planned > remaining:
            raise BudgetExceeded(
                f"This run needs {planned} SolarEdge requests but only {remaining} of the "
                f"{self.per_day} daily requests of the key in {self.key_name} remain until "
                f"{self.next_reset():%Y-%m-%d %H:%M %Z}. Nothing was sent: fetch a shorter "
                "range or wait for the next day."
            )

    def before_request(self) -> None:
        if self.remaining() <= 0:
            raise BudgetExceeded(
                f"The {self.per_day} daily SolarEdge requests of the key in {self.key_name} are "
                f"used up until {self.next_reset():%Y-%m-%d %H:%M %Z}; nothing was sent."
            )

    def note_sent(self) -> None:
        """Count a request this process made (the ledger, when given, counts it itself)."""
        self._sent[self._day(self.clock())] += 1
