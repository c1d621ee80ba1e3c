import json
from datetime import date
from typing import Any

import dagster as dg
import pandas as pd

from solar_pipeline.assets.common import daily_duckdb_asset
from solar_pipeline.assets.energy.fleet import EnergySite, energy_sites
from solar_pipeline.assets.provider import preference
from solar_pipeline.assets.registry import PROVIDERS
from solar_pipeline.assets.sites import each_site, site_metadata
from solar_pipeline.constants import ENERGY_DAILY, ENERGY_GROUP, ENERGY_INTERVALS
from solar_pipeline.energy.fill import ANOMALIES
from solar_pipeline.energy.model import (
    FIGURES,
    Interval,
    daily_figure,
    local_day_bounds,
    peak_w,
    self_consumed,
    split_by_day,
)
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.settings import Settings, env
from solar_pipeline.sites import Site
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


def _day_row(
    site: str,
    day: date,
    tz: str,
    ivs: list[Interval],
    totals: dict[str, float],
    prefs: dict[str, tuple[str, ...]],
) -> dict:
    produced = daily_figure(ivs, day, tz, "produced_wh", prefs["produced_wh"], totals or None)
    consumed = daily_figure(ivs, day, tz, "consumed_wh", prefs["consumed_wh"])
    imported = daily_figure(ivs, day, tz, "imported_wh", prefs["imported_wh"])
    exported = daily_figure(ivs, day, tz, "exported_wh", prefs["exported_wh"])
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
    # A complete figure always has a value; the test only tells the type checker so.
    if local.status != "complete" or local.value is None:
        return None
    if cloud.status != "complete" or not cloud.value:
        return None
    return local.value, cloud.value


@dg.asset(
    key=ENERGY_DAILY,
    # The vendors' own daily totals stand in for days no interval source covers.
    deps=[
        ENERGY_INTERVALS,
        *dict.fromkeys(k for p in PROVIDERS.values() if p.daily_totals for k in p.deps),
    ],
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
    Each site's days are its own local days. Each figure takes the first of the site's sources,
    in trust order, that covers at least 95 % of the day: local meters (`envoy_meter`,
    `fronius_meter`), cloud meters (`enphase_meter`, `solaredge_details`), cloud series
    (`enphase_micro`, `sma_pv`), local inverter counters (`envoy_inverters`, `fronius_etotal`);
    the vendor's own daily total (`enphase_lifetime`, `solaredge_energy`, ...) when none does.
    `coverage` is the share of the day the chosen source covered; `status` is complete
    (>= 95 %), partial, or estimated (energy spread over an outage, or a daily total).
    Self-consumption needs export data: NULL without it, never a made-up zero.
    """
    days = [date.fromisoformat(k) for k in context.partition_keys]
    with warehouse.connect() as conn:
        fleet = {s.site_id: s for s in energy_sites(conn, Settings.from_env())}

    def work(site: Site) -> list[dict]:
        return _site_days(warehouse, fleet[site.site_id], days)

    outcomes = each_site(context, warehouse, [s.site for s in fleet.values()], work)
    rows = [r for o in outcomes for r in o.result or []]
    recent = None
    if rows:
        with warehouse.connect() as conn:
            recent = conn.execute(
                """
                SELECT site_id, day, round(produced_wh / 1000, 2) AS produced_kwh,
                       round(consumed_wh / 1000, 2) AS consumed_kwh, produced_source, status,
                       round(coverage * 100, 1) AS coverage_pct
                FROM energy.daily_energy ORDER BY day DESC, site_id LIMIT 14
                """
            ).df()
    return _result(rows, recent, site_metadata(outcomes))


def _site_days(warehouse: DuckDBWarehouse, site: EnergySite, days: list[date]) -> list[dict]:
    """One row per local day of the site, in the site's zone, written in place of the days."""
    tz = site.timezone
    start, end = site.window(days)
    providers = [p for _, p in site.providers()]
    prefs = {f: preference(providers, f) for f in FIGURES}
    with warehouse.connect() as conn:
        ivs = _intervals(conn, site.site_id, start, end)
        totals: dict[date, dict[str, float]] = {}
        for member, provider in site.providers():
            if provider.daily_totals is not None:
                for day, figures in provider.daily_totals(conn, member, days[0], days[-1]).items():
                    totals.setdefault(day, {}).update(figures)
        by_day = _by_day(ivs, tz)
        rows = [
            _day_row(site.site_id, d, tz, by_day.get(d, []), totals.get(d, {}), prefs) for d in days
        ]
        frame = pd.DataFrame(rows).drop(columns=["_anomaly_sources", "_reconcile"])
        replace_rows(
            conn,
            "energy.daily_energy",
            frame,
            "site_id = ? AND day BETWEEN ? AND ?",
            [site.site_id, days[0], days[-1]],
        )
    return rows


def _result(
    rows: list[dict], recent: pd.DataFrame | None, sites: dict[str, Any]
) -> dg.MaterializeResult:
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
    anomalies: dict[str, dict] = {}
    for r in rows:
        if r["anomalies"]:
            # Per day across the fleet's sites, each site's count kept.
            day = anomalies.setdefault(str(r["day"]), {"count": 0, "sources": [], "sites": {}})
            day["count"] += r["anomalies"]
            day["sources"] = sorted({*day["sources"], *r["_anomaly_sources"]})
            day["sites"][r["site_id"]] = r["anomalies"]
    metadata: dict[str, Any] = {
        "dagster/row_count": len(rows),
        "produced_kwh": round(produced / 1000, 3),
        "consumed_kwh": round(consumed / 1000, 3),
        "self_consumption_pct": round(sum(self_used) / produced * 100, 1)
        if self_used and produced
        else 0.0,
        "coverage_pct": round(sum(r["coverage"] for r in rows) / len(rows) * 100, 1)
        if rows
        else 0.0,
        **sites,
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
                description=(
                    "intervals whose own energy was unusable (a counter step down or spike, a "
                    "negative or impossible value, an interval listed twice with two values): "
                    "filled from another source or left out, see energy.intervals.flags"
                ),
                metadata={"anomalies": dg.MetadataValue.json(anomalies)},
            ),
        ],
    )
