"""Envoy lifetime counters -> vendor-neutral intervals.

Energy is the difference between consecutive readings (never the gateway's whToday, never
integrated power), with the counter anomaly rules of energy.model.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from solar_pipeline.assets.provider import LOCAL_INVERTERS, LOCAL_METER, Provider
from solar_pipeline.constants import ENVOY_METER_READINGS, ENVOY_PRODUCTION_READINGS
from solar_pipeline.energy.model import DEFAULT_MAX_POWER_W, Interval, counter_intervals
from solar_pipeline.sites import Site
from solar_pipeline.warehouse.db import one_row

# Household consumption and grid flows are not bounded by the array's size, but by the main
# fuse (energy.model.DEFAULT_MAX_POWER_W).
GRID_MAX_W = DEFAULT_MAX_POWER_W
# The largest Enphase microinverters (IQ8H, IQ8X) deliver 384 VA: 500 W each is a ceiling no
# array of them reaches.
MICRO_MAX_W = 500.0
SOURCE_METER = "envoy_meter"
SOURCE_INVERTERS = "envoy_inverters"

# (source, figure, query of (reading_at, counter)) per lifetime counter of the gateway.
ENVOY_COUNTERS = [
    (
        SOURCE_METER,
        "produced_wh",
        "SELECT reading_at, energy_delivered FROM envoy.meter_readings WHERE phase IS NULL "
        "AND measurement_type = 'production' AND state = 'enabled'",
    ),
    (
        SOURCE_METER,
        "imported_wh",
        "SELECT reading_at, energy_delivered FROM envoy.meter_readings WHERE phase IS NULL "
        "AND measurement_type = 'net-consumption' AND state = 'enabled'",
    ),
    (
        SOURCE_METER,
        "exported_wh",
        "SELECT reading_at, energy_received FROM envoy.meter_readings WHERE phase IS NULL "
        "AND measurement_type = 'net-consumption' AND state = 'enabled'",
    ),
    (
        SOURCE_METER,
        "consumed_wh",
        "SELECT reading_at, wh_lifetime FROM envoy.production_readings WHERE phase IS NULL "
        "AND measurement = 'total-consumption' AND source = 'eim'",
    ),
    (
        SOURCE_INVERTERS,
        "produced_wh",
        "SELECT reading_at, wh_lifetime FROM envoy.production_readings WHERE phase IS NULL "
        "AND measurement = 'production' AND source = 'inverters'",
    ),
]


def gateway_site_id(conn: duckdb.DuckDBPyConnection) -> str | None:
    """envoy:<serial> of the gateway that reported last, for a deployment that names no site."""
    row = conn.execute(
        "SELECT envoy_serial FROM envoy.production_readings ORDER BY reading_at DESC LIMIT 1"
    ).fetchone()
    return f"envoy:{row[0]}" if row else None


def max_production_w(conn: duckdb.DuckDBPyConnection) -> float:
    """An upper bound of the array's power, for spike detection in the gateway's counters and
    the cloud's intervals (the gateway and the cloud system are one array): the largest of the
    system size Enphase reports, the sum of the inverters' highest reports, and MICRO_MAX_W per
    microinverter the cloud lists. Unknown size: the grid bound, which still catches the
    multi-MWh glitches but never flags real production."""
    size, modules = one_row(
        conn, "SELECT max(size_w) FILTER (size_w > 0), max(modules) FROM enphase.system_summary"
    )
    micros = one_row(
        conn,
        "SELECT max(try(json_array_length(body, '$.devices.micros'))) "
        "FROM raw.enphase_responses WHERE endpoint = 'devices' AND status = 200 AND valid_json",
    )[0]
    inverters = one_row(
        conn,
        "SELECT sum(m) FROM (SELECT max(max_watts) AS m FROM envoy.inverter_readings "
        "GROUP BY serial_number)",
    )[0]
    counted = max(float(modules or 0), float(micros or 0)) * MICRO_MAX_W
    known = max(float(size or 0), float(inverters or 0), counted)
    return known if known > 0 else GRID_MAX_W


def envoy_intervals(
    conn: duckdb.DuckDBPyConnection, site: Site, start: datetime, end: datetime
) -> list[tuple[str, Interval]]:
    """Counter intervals overlapping [start, end): the readings in range plus the one before
    and the one after, so the intervals across the boundaries (and across outages) exist."""
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


PROVIDER = Provider(
    vendor="envoy",
    deps=(ENVOY_PRODUCTION_READINGS, ENVOY_METER_READINGS),
    intervals=envoy_intervals,
    production={SOURCE_METER: LOCAL_METER, SOURCE_INVERTERS: LOCAL_INVERTERS},
    grid={SOURCE_METER: LOCAL_METER},
)
