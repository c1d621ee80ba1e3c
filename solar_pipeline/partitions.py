"""Daily partitions in the site's time zone.

A partition is one local calendar day (23, 24 or 25 hours long) and owns the intervals whose
end lies in (local midnight, next local midnight]. ``end_offset=1`` adds today's partition so
the 10-minute schedule can refresh the day while it is still running.
"""

from __future__ import annotations

import dagster as dg

from solar_pipeline.settings import Settings


def daily_partitions(settings: Settings | None = None) -> dg.DailyPartitionsDefinition:
    settings = settings or Settings.from_env()
    return dg.DailyPartitionsDefinition(
        start_date=settings.start_date.isoformat(),
        timezone=settings.timezone,
        end_offset=1,
    )


DAILY = daily_partitions()
