"""Request budgets per Enphase plan, enforced from our own ledger before anything is sent."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from solar_pipeline.sources.enphase.errors import BudgetExceeded
from solar_pipeline.sources.enphase.ledger import RequestLog


@dataclass(frozen=True)
class Plan:
    name: str
    per_minute: int
    per_month: int


# Enphase developer plans (v4). The Watt figures are confirmed by several users; the paid
# tiers come from a third-party copy of the plans page.
PLANS: dict[str, Plan] = {
    "watt": Plan("watt", 10, 1_000),
    "kilowatt": Plan("kilowatt", 50, 50_000),
    "megawatt": Plan("megawatt", 100, 300_000),
    "partner": Plan("partner", 300, 1_500_000),
}


def plan_named(name: str) -> Plan:
    try:
        return PLANS[name.strip().lower()]
    except KeyError:
        raise ValueError(
            f"ENPHASE_PLAN={name!r} is not a plan: use one of {', '.join(PLANS)}"
        ) from None


def next_month_start(now: float) -> datetime:
    t = datetime.fromtimestamp(now, UTC)
    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


class RequestBudget:
    """Waits out the per-minute limit and refuses to start what the month cannot afford."""

    def __init__(
        self,
        plan: Plan,
        log: RequestLog,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.plan = plan
        self.log = log
        self.clock = clock
        self.sleep = sleep
        self.waited_s = 0.0

    def remaining_this_month(self) -> int:
        return self.plan.per_month - self.log.usage(self.clock()).month_count

    def ensure_available(self, planned: int) -> None:
        """Stop before sending when a run's planned requests would overrun the month."""
        remaining = self.remaining_this_month()
        if planned > remaining:
            raise BudgetExceeded(
                f"This run needs {planned} Enphase requests but only {max(remaining, 0)} of the "
                f"{self.plan.per_month} monthly requests of ENPHASE_PLAN={self.plan.name} remain "
                f"until {next_month_start(self.clock()):%Y-%m-%d} (UTC), by the ledger "
                "ops.api_requests. Nothing was sent. Backfill a shorter range, wait for the "
                "next month, or set ENPHASE_PLAN to the plan you pay for."
            )

    def before_request(self) -> None:
        now = self.clock()
        usage = self.log.usage(now)
        if usage.month_count >= self.plan.per_month:
            raise BudgetExceeded(
                f"The {self.plan.per_month} monthly Enphase requests of ENPHASE_PLAN="
                f"{self.plan.name} are used up until {next_month_start(now):%Y-%m-%d} (UTC)."
            )
        if usage.minute_count >= self.plan.per_minute:
            # Enphase counts per fixed clock minute: wait for the next one.
            wait = 60 - (now % 60) + 0.05
            self.waited_s += wait
            self.sleep(wait)
