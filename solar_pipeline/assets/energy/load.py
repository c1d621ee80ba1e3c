"""Each source's readings -> vendor-neutral intervals: the one module that knows them all.

Cloud telemetry is already per interval. Envoy readings are lifetime counters: energy is the
difference between consecutive readings (never the gateway's whToday, never integrated
power), with the anomaly rules of energy.model. A new vendor adds its mapping here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from solar_pipeline.energy.model import Interval, counter_intervals

# Household consumption and grid flows are not bounded by the array's size; a main fuse of
# 3 x 63 A at 230 V is about 43 kW.
GRID_MAX_W = 50_000.0

CLOUD_SQL = {
    "enphase_micro": (
        "SELECT end_at, wh FROM enphase.production_intervals WHERE source = 'micro'",
        300,
        "produced_wh",
    ),
    "enphase_meter_production": (
        "SELECT end_at, wh FROM enphase.production_intervals WHERE source = 'meter'",
        900,
        "produced_wh",
    ),
    "enphase_meter_consumption": (
        "SELECT end_at, wh FROM enphase.consumption_intervals WHERE true",
        900,
        "consumed_wh",
    ),
}

# (source, figure, query of (reading_at, counter)) per lifetime counter of the gateway.
ENVOY_COUNTERS = [
    (
        "envoy_meter",
        "produced_wh",
        "SELECT reading_at, energy_delivered FROM envoy.meter_readings WHERE phase IS NULL "
        "AND measurement_type = 'production' AND state = 'enabled'",
    ),
    (
        "envoy_meter",
        "imported_wh",
        "SELECT reading_at, energy_delivered FROM envoy.meter_readings WHERE phase IS NULL "
        "AND measurement_type = 'net-consumption' AND state = 'enabled'",
    ),
    (
        "envoy_meter",
        "exported_wh",
        "SELECT reading_at, energy_received FROM envoy.meter_readings WHERE phase IS NULL "
        "AND measurement_type = 'net-consumption' AND state = 'enabled'",
    ),
    (
        "envoy_meter",
        "consumed_wh",
        "SELECT reading_at, wh_lifetime FROM envoy.production_readings WHERE phase IS NULL "
        "AND measurement = 'total-consumption' AND source = 'eim'",
    ),
    (
        "envoy_inverters",
        "produced_wh",
        "SELECT reading_at, wh_lifetime FROM envoy.production_readings WHERE phase IS NULL "
        "AND measurement = 'production' AND source = 'inverters'",
    ),
]


def site_id(conn: duckdb.DuckDBPyConnection, configured: str | None) -> str | None:
    """The configured site (enphase:<system_id>), else the gateway's serial, else None."""
    if configured:
        return configured
    row = conn.execute(
        "SELECT envoy_serial FROM envoy.production_readings ORDER BY reading_at DESC LIMIT 1"
    ).fetchone()
    return f"envoy:{row[0]}" if row else None


def max_production_w(conn: duckdb.DuckDBPyConnection) -> float:
    """An upper bound of the array's power, for spike detection: the larger of the system size
    Enphase reports and the sum of the inverters' highest reports. Unknown size: the grid bound,
    which still catches the multi-MWh glitches but never flags real production."""
    size = conn.execute(
        "SELECT max(size_w) FROM enphase.system_summary WHERE size_w > 0"
    ).fetchone()[0]
    inverters = conn.execute(
        "SELECT sum(m) FROM (SELECT max(max_watts) AS m FROM envoy.inverter_readings "
        "GROUP BY serial_number)"
    ).fetchone()[0]
    known = max(float(size or 0), float(inverters or 0))
    return known if known > 0 else GRID_MAX_W


def cloud_intervals(
    conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime
) -> list[tuple[str, Interval]]:
    """(figure, interval) pairs: each interval measures one figure."""
    out = []
    for name, (sql, step, figure) in CLOUD_SQL.items():
        source = "enphase_micro" if name == "enphase_micro" else "enphase_meter"
        rows = conn.execute(
            f"SELECT * FROM ({sql}) WHERE end_at > ? AND end_at < ? ORDER BY end_at",
            [start, end + timedelta(seconds=step)],
        ).fetchall()
        for end_at, wh in rows:
            interval = Interval(
                end_at - timedelta(seconds=step),
                end_at,
                source,
                **{figure: None if wh is None else float(wh)},
            )
            out.append((figure, interval))
    return out


def envoy_intervals(
    conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime
) -> list[tuple[str, Interval]]:
    """Counter intervals overlapping [start, end): the readings in range plus the one before
    and the one after, so the intervals across the boundaries (and across outages) exist.
    The figure travels with each interval: an anomalous one has no value to tell it."""
    production_w = max_production_w(conn)
    out: list[tuple[str, Interval]] = []
    for source, figure, sql in ENVOY_COUNTERS:
        rows = conn.execute(
            f"""
            WITH s AS ({sql})
            (SELECT * FROM s WHERE reading_at >= ? AND reading_at <= ?)
            UNION ALL (SELECT * FROM s WHERE reading_at < ? ORDER BY reading_at DESC LIMIT 1)
            UNION ALL (SELECT * FROM s WHERE reading_at > ? ORDER BY reading_at LIMIT 1)
            """,
            [start, end, start, end],
        ).fetchall()
        readings = sorted((at, float(v)) for at, v in rows if v is not None)
        max_w = production_w if figure == "produced_wh" else GRID_MAX_W
        for i in counter_intervals(readings, source=source, figure=figure, max_power_w=max_w):
            if i.end_at > start and i.start_at < end:
                out.append((figure, i))
    return out
