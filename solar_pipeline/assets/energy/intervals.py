from datetime import date

import dagster as dg
import pandas as pd

from solar_pipeline.assets.common import daily_duckdb_asset
from solar_pipeline.assets.energy.fleet import EnergySite, energy_sites
from solar_pipeline.assets.provider import preference
from solar_pipeline.assets.registry import INTERVAL_DEPS
from solar_pipeline.assets.sites import each_site, site_metadata
from solar_pipeline.constants import ENERGY_GROUP, ENERGY_INTERVALS
from solar_pipeline.energy.fill import ANOMALIES, fill_anomalies
from solar_pipeline.energy.model import FIGURES, Interval
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.settings import Settings
from solar_pipeline.sites import Site
from solar_pipeline.warehouse import replace_rows

COLUMNS = ["site_id", "start_at", "end_at", *FIGURES, "source", "flags"]


def _site_intervals(
    warehouse: DuckDBWarehouse, site: EnergySite, days: list[date]
) -> list[Interval]:
    """The site's intervals ending in its local days, anomalies filled where another of its
    sources saw the same span; written in place of what the days held."""
    start, end = site.window(days)
    with warehouse.connect() as conn:
        found = [
            pair
            for member, provider in site.providers()
            for pair in provider.intervals(conn, member, start, end)
        ]
        providers = [p for _, p in site.providers()]
        filled = []
        for figure in FIGURES:
            filled += fill_anomalies(
                [i for f, i in found if f == figure], figure, preference(providers, figure)
            )
        owned = [i for i in filled if start < i.end_at <= end]
        frame = pd.DataFrame(
            [
                {
                    "site_id": site.site_id,
                    "start_at": i.start_at,
                    "end_at": i.end_at,
                    **{f: getattr(i, f) for f in FIGURES},
                    "source": i.source,
                    "flags": ",".join(i.flags) or None,
                }
                for i in owned
            ],
            columns=COLUMNS,
        )
        replace_rows(
            conn,
            "energy.intervals",
            frame,
            "site_id = ? AND end_at > ? AND end_at <= ?",
            [site.site_id, start, end],
        )
    return owned


@dg.asset(
    key=ENERGY_INTERVALS,
    deps=INTERVAL_DEPS,
    **daily_duckdb_asset(ENERGY_GROUP),
)
def intervals(
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse
) -> dg.MaterializeResult:
    """Every source's energy per interval, in one vendor-neutral table.

    For every site (SOLAR_SITES, or the one site of the ENPHASE_* / ENVOY_* variables), each of
    its vendors maps its typed tables to intervals: Enphase cloud telemetry directly
    (`enphase_micro`, `enphase_meter`), lifetime counters as differences between consecutive
    readings (`envoy_meter`, `envoy_inverters`, `fronius_etotal`, `fronius_meter`), vendor
    series as they come (`solaredge_details`, `fronius_archive`, ...). A counter that steps down
    (the ~1.19 MWh wrap), resets or jumps beyond what the array can produce gives no energy
    itself: the interval is flagged and its energy taken from another source of the same site
    covering the span, or left out. A partition owns the intervals ending in its day, which is
    each site's own local day; a failing site is recorded in ops.site_status and does not fail
    the others.
    """
    days = [date.fromisoformat(k) for k in context.partition_keys]
    with warehouse.connect() as conn:
        fleet = {s.site_id: s for s in energy_sites(conn, Settings.from_env())}

    def work(site: Site) -> list[Interval]:
        return _site_intervals(warehouse, fleet[site.site_id], days)

    outcomes = each_site(context, warehouse, [s.site for s in fleet.values()], work)
    owned = [i for o in outcomes for i in o.result or []]
    anomalies = [i for i in owned if any(f in ANOMALIES for f in i.flags)]
    by_source: dict[str, int] = {}
    for i in owned:
        by_source[i.source] = by_source.get(i.source, 0) + 1
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(owned),
            "sites": dg.MetadataValue.json({o.site.site_id: len(o.result or []) for o in outcomes}),
            "intervals_by_source": dg.MetadataValue.json(by_source),
            "counter_anomalies": len(anomalies),
            **site_metadata(outcomes),
            "note": "" if fleet else "No site and no data from any source yet: nothing to map.",
        }
    )
