"""How often the cloud can be polled without running out of the plan's monthly requests.

A poll ("tick") costs 7 requests: summary, events, open alarms (open_alarms) and newly cleared
alarms, today's micro telemetry, and the production and consumption meters' week, however long
an alarm has been open (see assets/enphase/snapshot_fetch.py). Now and then a tick costs one
or two more (open_events; the week a cleared alarm started in), and after downtime the event
and alarm windows catch up two weeks per tick; the reserve below covers that. The daily
completion run costs 4 more per day (yesterday's micro day, the two meter weeks,
energy_lifetime). We keep 20 % of the month in reserve for backfills and retries and pick the
shortest cron-friendly interval that fits in a 31-day month:

    watt      1,000/month -> every 8 hours   (3 ticks/day: 31 x (3x7 + 4) =   775)
    kilowatt 50,000/month -> every 10 minutes (144 ticks/day: 31 x (144x7 + 4) = 31,372)

Enphase gateways upload every 15 minutes at best (every 6 hours on cellular), so polling more
often than every 10 minutes only spends quota.
"""

from __future__ import annotations

from solar_pipeline.sources.enphase.budget import Plan

CALLS_PER_TICK = 7
CALLS_PER_DAY_COMPLETION = 4
RESERVE = 0.2
DAYS_PER_MONTH = 31
# Intervals (minutes) that divide an hour or a day evenly, so the cron stays regular.
CANDIDATE_MINUTES = (10, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440)


def monthly_calls(minutes: int) -> int:
    ticks_per_day = 1440 // minutes
    return DAYS_PER_MONTH * (ticks_per_day * CALLS_PER_TICK + CALLS_PER_DAY_COMPLETION)


def tick_minutes(plan: Plan) -> int:
    budget = plan.per_month * (1 - RESERVE)
    for minutes in CANDIDATE_MINUTES:
        if monthly_calls(minutes) <= budget:
            return minutes
    return CANDIDATE_MINUTES[-1]


def cron_for(minutes: int) -> str:
    if minutes == 1:
        return "* * * * *"
    if minutes < 60:
        return f"*/{minutes} * * * *"
    if minutes < 1440:
        return f"0 */{minutes // 60} * * *"
    return "0 12 * * *"
