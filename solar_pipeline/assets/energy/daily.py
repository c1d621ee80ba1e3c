import json
from datetime import date

import dagster as dg
import pandas as pd

from solar_pipeline.assets.common import daily_duckdb_asset
from solar_pipeline.assets.energy.load import site_id
from solar_pipeline.constants import (
    ENERGY_DAILY,
    ENERGY_GROUP,
    ENERGY_INTERVALS,
    ENPHASE_DAILY_ENERGY,
)
from solar_pipeline.energy.fill import ANOMALIES
from solar_pipeline.energy.model import (
    CONSUMPTION_PREFERENCE,
    PRODUCTION_PREFERENCE,
    Interval,
    daily_figure,
    local_day_bounds,
    peak_w,
    self_consumed,
    split_by_day,
)
from solar_pipeline.partitions import DAILY
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.settings import Settings, env
from solar_pipeline.warehouse import replace_rows

COMPLETENESS_CHECK = "days_complete"
RECONCILIATION_CHECK = "local_matches_cloud"
ANOMALY_CHECK = "counter_anomalies"
LOCAL_SOURCES = ("envoy_meter", "envoy_inverters")
CLOUD_SOURCES = ("enphase_meter", "enphase_micro")
RECONCILE_TOLERANCE_PCT = float(env("SOLAR_RECONCILE_TOLERANCE_PCT", "2") or 2)


def _intervals(conn, site: str, start, end) -> list[Interval]:
    rows = conn.execute(
        """
        SELECT start_at, end_at, source, produced_wh, consumed_wh, imported_wh, exported_wh, flags
        FROM energy.intervals WHERE site_id = ? AND end_at > ? AND start_at < ?
        """,
        [site, start, end],
    ).fetchall()
    return [
        Interval(s, e, src, p, c, i, x, tuple(flags.split(",")) if flags else ())
        for s, e, src, p, c, i, x, flags in rows
    ]


def _by_day(ivs: list[Interval], tz: str) -> dict[date, list[Interval]]:
    """Each interval under every local day it touches: a year is then 365 small problems, not
    365 scans of the whole year."""
    days: dict[date, list[Interval]] = {}
    for i in ivs:
        for day, _ in split_by_day(i, tz):
            days.setdefault(day, []).append(i)
    return days


def _day_row(site: str, day: date, tz: str, ivs: list[Interval], lifetime: float | None) -> dict:
    produced = daily_figure(
        ivs,
        day,
        tz,
        "produced_wh",
        PRODUCTION_PREFERENCE,
        {"enphase_lifetime": lifetime} if lifetime is not None else None,
    )
    consumed = daily_figure(ivs, day, tz, "consumed_wh", CONSUMPTION_PREFERENCE)
    imported = daily_figure(ivs, day, tz, "imported_wh", CONSUMPTION_PREFERENCE)
    exported = daily_figure(ivs, day, tz, "exported_wh", CONSUMPTION_PREFERENCE)
    start, end = local_day_bounds(day, tz)
    anomalies = [i for i in ivs if start < i.end_at <= end and any(f in ANOMALIES for f in i.flags)]
    return {
        "site_id": site,
        "day": day,
        "produced_wh": produced.value,
        "consumed_wh": consumed.value,
        "imported_wh": imported.value,
        "exported_wh": exported.value,
        "self_consumed_wh": self_consumed(produced.value, exported.value),
        "peak_w": peak_w(ivs, day, tz, produced.source) if produced.source else None,
        "produced_source": produced.source,
        "consumed_source": consumed.source,
        "coverage": round(produced.coverage, 4),
        "status": produced.status,
        "consumed_coverage": round(consumed.coverage, 4),
        "consumed_status": consumed.status if consumed.source else None,
        "produced_disagreement_pct": produced.disagreement_pct,
        "produced_by_source": json.dumps({k: round(v, 1) for k, v in produced.per_source.items()}),
        "anomalies": len(anomalies),
        "_anomaly_sources": sorted({i.source for i in anomalies}),
        "_reconcile": _reconcile(ivs, day, tz),
    }


def _reconcile(ivs: list[Interval], day: date, tz: str) -> tuple[float, float] | None:
    local = daily_figure(ivs, day, tz, "produced_wh", LOCAL_SOURCES)
    cloud = daily_figure(ivs, day, tz, "produced_wh", CLOUD_SOURCES)
    if local.status != "complete" or cloud.status != "complete" or not cloud.value:
        return None
    return local.value, cloud.value


@dg.asset(
    key=ENERGY_DAILY,
    deps=[ENERGY_INTERVALS, ENPHASE_DAILY_ENERGY],
    **daily_duckdb_asset(ENERGY_GROUP),
    check_specs=[
        dg.AssetCheckSpec(COMPLETENESS_CHECK, asset=ENERGY_DAILY),
        dg.AssetCheckSpec(RECONCILIATION_CHECK, asset=ENERGY_DAILY),
        dg.AssetCheckSpec(ANOMALY_CHECK, asset=ENERGY_DAILY),
    ],
)
def daily_energy(
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse
) -> dg.MaterializeResult:
    """Energy per site and local day (Wh): produced, consumed, imported, exported, self-consumed.

    Built from energy.intervals: intervals that straddle local midnight are split in proportion
    (for a lifetime counter, linear interpolation to the boundary), DST days are 23 or 25 hours.
    Each figure takes the first source in preference order that covers at least 95 % of the day:
    local CT meter (`envoy_meter`), cloud meter, cloud micro, local inverters; Enphase's own
    daily total (`enphase_lifetime`) when none does. `coverage` is the share of the day the
    chosen source covered; `status` is complete (>= 95 %), partial, or estimated (energy spread
    over an outage, or a daily total). Self-consumption needs export data: NULL without it,
    never a made-up zero.
    """
    w = context.partition_time_window
    tz = DAILY.timezone
    keys = context.partition_keys
    with warehouse.connect() as conn:
        site = site_id(conn, Settings.from_env().site_id)
        rows = []
        if site is not None:
            ivs = _intervals(conn, site, w.start, w.end)
            lifetime = dict(
                conn.execute(
                    "SELECT day, produced_wh FROM enphase.daily_energy WHERE day BETWEEN ? AND ?",
                    [date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])],
                ).fetchall()
            )
            by_day = _by_day(ivs, tz)
            days = [date.fromisoformat(k) for k in keys]
            rows = [_day_row(site, d, tz, by_day.get(d, []), lifetime.get(d)) for d in days]
            frame = pd.DataFrame(rows).drop(columns=["_anomaly_sources", "_reconcile"])
            replace_rows(
                conn,
                "energy.daily_energy",
                frame,
                "site_id = ? AND day BETWEEN ? AND ?",
                [site, date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])],
            )
            recent = conn.execute(
                """
                SELECT day, round(produced_wh / 1000, 2) AS produced_kwh,
                       round(consumed_wh / 1000, 2) AS consumed_kwh, produced_source, status,
                       round(coverage * 100, 1) AS coverage_pct
                FROM energy.daily_energy WHERE site_id = ? ORDER BY day DESC LIMIT 14
                """,
                [site],
            ).df()
    return _result(rows, recent if rows else None)


def _result(rows: list[dict], recent: pd.DataFrame | None) -> dg.MaterializeResult:
    def total(key: str) -> float:
        return sum(r[key] or 0.0 for r in rows)

    produced, consumed = total("produced_wh"), total("consumed_wh")
    self_used = [r["self_consumed_wh"] for r in rows if r["self_consumed_wh"] is not None]
    incomplete = {
        str(r["day"]): f"{r['status']} ({r['coverage']:.0%})"
        for r in rows
        if r["status"] != "complete"
    }
    off = {}
    for r in rows:
        if r["_reconcile"]:
            local, cloud = r["_reconcile"]
            pct = abs(local - cloud) / cloud * 100
            if pct > RECONCILE_TOLERANCE_PCT:
                off[str(r["day"])] = round(pct, 2)
    anomalies = {
        str(r["day"]): {"count": r["anomalies"], "sources": r["_anomaly_sources"]}
        for r in rows
        if r["anomalies"]
    }
    metadata = {
        "dagster/row_count": len(rows),
        "produced_kwh": round(produced / 1000, 3),
        "consumed_kwh": round(consumed / 1000, 3),
        "self_consumption_pct": round(sum(self_used) / produced * 100, 1)
        if self_used and produced
        else 0.0,
        "coverage_pct": round(sum(r["coverage"] for r in rows) / len(rows) * 100, 1)
        if rows
        else 0.0,
    }
    if recent is not None:
        metadata["last_14_days"] = dg.MetadataValue.md(recent.to_markdown(index=False))
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=COMPLETENESS_CHECK,
                passed=not incomplete,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"incomplete_days": dg.MetadataValue.json(incomplete)},
            ),
            dg.AssetCheckResult(
                check_name=RECONCILIATION_CHECK,
                passed=not off,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"local vs cloud production within {RECONCILE_TOLERANCE_PCT}%",
                metadata={
                    "days_off_pct": dg.MetadataValue.json(off),
                    "days_compared": sum(1 for r in rows if r["_reconcile"]),
                },
            ),
            dg.AssetCheckResult(
                check_name=ANOMALY_CHECK,
                passed=not anomalies,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"anomalies": dg.MetadataValue.json(anomalies)},
            ),
        ],
    )
