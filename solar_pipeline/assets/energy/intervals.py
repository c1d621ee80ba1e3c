import dagster as dg
import pandas as pd

from solar_pipeline.assets.common import daily_duckdb_asset
from solar_pipeline.assets.energy.load import cloud_intervals, envoy_intervals, site_id
from solar_pipeline.constants import (
    ENERGY_GROUP,
    ENERGY_INTERVALS,
    ENPHASE_CONSUMPTION_INTERVALS,
    ENPHASE_PRODUCTION_INTERVALS,
    ENVOY_METER_READINGS,
    ENVOY_PRODUCTION_READINGS,
)
from solar_pipeline.energy.fill import ANOMALIES, fill_anomalies
from solar_pipeline.energy.model import (
    CONSUMPTION_PREFERENCE,
    FIGURES,
    PRODUCTION_PREFERENCE,
)
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.settings import Settings
from solar_pipeline.warehouse import replace_rows

COLUMNS = ["site_id", "start_at", "end_at", *FIGURES, "source", "flags"]


@dg.asset(
    key=ENERGY_INTERVALS,
    deps=[
        ENPHASE_PRODUCTION_INTERVALS,
        ENPHASE_CONSUMPTION_INTERVALS,
        ENVOY_PRODUCTION_READINGS,
        ENVOY_METER_READINGS,
    ],
    **daily_duckdb_asset(ENERGY_GROUP),
)
def intervals(
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse
) -> dg.MaterializeResult:
    """Every source's energy per interval, in one vendor-neutral table.

    Cloud intervals map directly (`enphase_micro` 5-minute production, `enphase_meter` 15-minute
    production and consumption). Envoy lifetime counters become intervals between consecutive
    readings (`envoy_meter`: CT production, import, export, consumption; `envoy_inverters`: the
    inverters' production counter). A counter that steps down (the ~1.19 MWh wrap), resets or
    jumps beyond what the array can produce gives no energy itself: the interval is flagged and
    its energy taken from another source covering the same span, or left out. A partition owns
    the intervals ending in its local day.
    """
    w = context.partition_time_window
    with warehouse.connect() as conn:
        site = site_id(conn, Settings.from_env().site_id)
        found = cloud_intervals(conn, w.start, w.end) + envoy_intervals(conn, w.start, w.end)
        filled = []
        for figure in FIGURES:
            preference = (
                PRODUCTION_PREFERENCE if figure == "produced_wh" else CONSUMPTION_PREFERENCE
            )
            filled += fill_anomalies([i for f, i in found if f == figure], figure, preference)
        owned = [i for i in filled if w.start < i.end_at <= w.end]
        frame = pd.DataFrame(
            [
                {
                    "site_id": site,
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
        if site is not None:
            replace_rows(
                conn,
                "energy.intervals",
                frame,
                "site_id = ? AND end_at > ? AND end_at <= ?",
                [site, w.start, w.end],
            )
    anomalies = [i for i in owned if any(f in ANOMALIES for f in i.flags)]
    by_source = frame["source"].value_counts().to_dict() if len(frame) else {}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "site_id": site or "",
            "intervals_by_source": dg.MetadataValue.json({k: int(v) for k, v in by_source.items()}),
            "counter_anomalies": len(anomalies),
            "note": "" if site else "No data from any source yet: nothing to map.",
        }
    )
