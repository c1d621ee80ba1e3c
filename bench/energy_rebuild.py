"""Rebuild a year of daily energy from readings already in DuckDB, and its error vs truth.

Readings for 365 days are written first (not timed): the cloud's 5- and 15-minute intervals and
the gateway's lifetime counters read every 15 minutes, all from the simulators' deterministic
model, so the true energy of every day is known. Then the energy assets run as one single-run
backfill (timed), and every day's produced and consumed Wh is compared with the truth.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path

os.environ.setdefault("SOLAR_TIMEZONE", "Europe/Amsterdam")
os.environ.setdefault("SOLAR_SITE_ID", "enphase:4021157")

import dagster as dg
import pandas as pd

from solar_pipeline.assets import energy
from solar_pipeline.partitions import DAILY
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.simulator import SystemSpec, solar_model
from solar_pipeline.warehouse import connect

SPEC = SystemSpec(timezone=DAILY.timezone)


def _ts(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def write_readings(db: Path, first: date, last: date) -> None:
    start, _ = solar_model.local_day_bounds(SPEC, first)
    _, end = solar_model.local_day_bounds(SPEC, last)
    micro = solar_model.micro_intervals(SPEC, start, end)
    meter = solar_model.meter_production_intervals(SPEC, start, end)
    cons = solar_model.consumption_intervals(SPEC, start, end)
    sid = SPEC.system_id
    produced = {i["end_at"]: i["wh_del"] for i in meter}
    net = [(i["end_at"], i["enwh"] - produced.get(i["end_at"], 0)) for i in cons]
    # Lifetime counters every 15 minutes from an arbitrary installed base, with a first
    # reading at the first local midnight.
    ends = [start] + [i["end_at"] for i in meter]
    prod_c = list(accumulate((i["wh_del"] for i in meter), initial=5e6))
    cons_c = list(accumulate((i["enwh"] for i in cons), initial=9e6))
    imp_c = list(accumulate((max(n, 0) for _, n in net), initial=2e6))
    exp_c = list(accumulate((max(-n, 0) for _, n in net), initial=3e6))
    total = 4e6
    micro_c = {start: total}
    for i in micro:
        total += i["enwh"]
        micro_c[i["end_at"]] = total
    meters = []
    for n, t in enumerate(ends):
        meters.append((_ts(t), "s", 704643328, "production", "enabled", None, prod_c[n], 0.0))
        meters.append(
            (_ts(t), "s", 704643584, "net-consumption", "enabled", None, imp_c[n], exp_c[n])
        )
    production = []
    for n, t in enumerate(ends):
        production.append((_ts(t), "total-consumption", "eim", cons_c[n]))
        production.append((_ts(t), "production", "inverters", micro_c[t]))
    with connect(db) as conn:
        conn.register(
            "m",
            pd.DataFrame(
                meters,
                columns=[
                    "reading_at",
                    "envoy_serial",
                    "eid",
                    "measurement_type",
                    "state",
                    "phase",
                    "energy_delivered",
                    "energy_received",
                ],
            ),
        )
        conn.execute("INSERT INTO envoy.meter_readings BY NAME SELECT *, 0 AS raw_id FROM m")
        conn.register(
            "p",
            pd.DataFrame(
                production, columns=["reading_at", "measurement", "source", "wh_lifetime"]
            ),
        )
        conn.execute(
            "INSERT INTO envoy.production_readings BY NAME SELECT *, reading_at AS "
            "fetched_at, 's' AS envoy_serial, 0 AS raw_id FROM p"
        )
        conn.register(
            "mi",
            pd.DataFrame(
                [(sid, _ts(i["end_at"]), "micro", i["enwh"]) for i in micro]
                + [(sid, _ts(i["end_at"]), "meter", i["wh_del"]) for i in meter],
                columns=["system_id", "end_at", "source", "wh"],
            ),
        )
        conn.execute("INSERT INTO enphase.production_intervals BY NAME SELECT * FROM mi")
        conn.register(
            "ci",
            pd.DataFrame(
                [(sid, _ts(i["end_at"]), i["enwh"]) for i in cons],
                columns=["system_id", "end_at", "wh"],
            ),
        )
        conn.execute("INSERT INTO enphase.consumption_intervals BY NAME SELECT * FROM ci")


def energy_rebuild(days: int = 365) -> dict:
    today = date.fromisoformat(DAILY.get_partition_key_for_timestamp(time.time()))
    first, last = today - timedelta(days=days), today - timedelta(days=1)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "solar.duckdb"
        write_readings(db, first, last)
        started = time.perf_counter()
        result = dg.materialize(
            energy.assets,
            resources={"warehouse": DuckDBWarehouse(path=str(db))},
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
        )
        wall = time.perf_counter() - started
        assert result.success
        with connect(db) as conn:
            rows = conn.execute(
                "SELECT day, produced_wh, consumed_wh, produced_source, status "
                "FROM energy.daily_energy ORDER BY day"
            ).fetchall()
    errors_p, errors_c = [], []
    for day, produced, consumed, _, _ in rows:
        truth = solar_model.daily_totals(SPEC, day)
        if truth["meter_wh"]:
            errors_p.append(abs(produced - truth["meter_wh"]) / truth["meter_wh"])
        errors_c.append(abs(consumed - truth["consumption_wh"]) / truth["consumption_wh"])
    return {
        "days": len(rows),
        "rebuild_wall_s": round(wall, 2),
        "sources": sorted({r[3] for r in rows}),
        "statuses": sorted({r[4] for r in rows}),
        "produced_max_error_pct": round(max(errors_p) * 100, 5),
        "consumed_max_error_pct": round(max(errors_c) * 100, 5),
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    result = energy_rebuild(int(sys.argv[1]) if len(sys.argv) > 1 else 365)
    for key, value in result.items():
        print(f"{key:<24} {value}")
