"""Enphase cloud telemetry -> vendor-neutral intervals: already one row per interval."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb

from solar_pipeline.assets.enphase.intervals import STEP_S
from solar_pipeline.assets.enphase.telemetry import CONSUMPTION_METER, MICRO, PRODUCTION_METER
from solar_pipeline.assets.provider import (
    CLOUD_METER,
    CLOUD_SERIES,
    Provider,
)
from solar_pipeline.constants import (
    ENPHASE_CONSUMPTION_INTERVALS,
    ENPHASE_DAILY_ENERGY,
    ENPHASE_PRODUCTION_INTERVALS,
)
from solar_pipeline.energy.model import Interval
from solar_pipeline.sites import Site

SOURCE_MICRO = "enphase_micro"
SOURCE_METER = "enphase_meter"
SOURCE_LIFETIME = "enphase_lifetime"

# (source, query of (end_at, wh, flags), step seconds, figure); the cloud keeps one system per
# deployment, so its tables carry no site column. A flagged interval has no wh: it comes along
# so energy.intervals can fill it from another source, or show it left out.
CLOUD_SQL = [
    (
        SOURCE_MICRO,
        "SELECT end_at, wh, flags FROM enphase.production_intervals WHERE source = 'micro'",
        STEP_S[MICRO],
        "produced_wh",
    ),
    (
        SOURCE_METER,
        "SELECT end_at, wh, flags FROM enphase.production_intervals WHERE source = 'meter'",
        STEP_S[PRODUCTION_METER],
        "produced_wh",
    ),
    (
        SOURCE_METER,
        "SELECT end_at, wh, flags FROM enphase.consumption_intervals",
        STEP_S[CONSUMPTION_METER],
        "consumed_wh",
    ),
]


def cloud_intervals(
    conn: duckdb.DuckDBPyConnection, site: Site, start: datetime, end: datetime
) -> list[tuple[str, Interval]]:
    out = []
    for source, sql, step, figure in CLOUD_SQL:
        rows = conn.execute(
            f"SELECT * FROM ({sql}) WHERE end_at > ? AND end_at < ? ORDER BY end_at",
            [start, end + timedelta(seconds=step)],
        ).fetchall()
        for end_at, wh, flags in rows:
            interval = Interval(
                end_at - timedelta(seconds=step),
                end_at,
                source,
                flags=tuple(flags.split(",")) if flags else (),
                **{figure: None if wh is None else float(wh)},
            )
            out.append((figure, interval))
    return out


def lifetime_totals(
    conn: duckdb.DuckDBPyConnection, site: Site, first: date, last: date
) -> dict[date, dict[str, float]]:
    rows = conn.execute(
        "SELECT day, produced_wh FROM enphase.daily_energy WHERE day BETWEEN ? AND ?",
        [first, last],
    ).fetchall()
    return {day: {SOURCE_LIFETIME: float(wh)} for day, wh in rows if wh is not None}


PROVIDER = Provider(
    vendor="enphase",
    deps=(ENPHASE_PRODUCTION_INTERVALS, ENPHASE_CONSUMPTION_INTERVALS, ENPHASE_DAILY_ENERGY),
    intervals=cloud_intervals,
    production={SOURCE_METER: CLOUD_METER, SOURCE_MICRO: CLOUD_SERIES},
    grid={SOURCE_METER: CLOUD_METER},
    daily_totals=lifetime_totals,
)
