"""The owners' energy dashboard, rebuilt whenever the energy tables change."""

import base64

import dagster as dg

from solar_pipeline.constants import (
    DUCKDB_POOL,
    ENERGY_DAILY,
    ENERGY_DAILY_INVERTER,
    ENERGY_INTERVALS,
    ENERGY_MONTHLY,
    REPORTS_DASHBOARD,
    REPORTS_GROUP,
)
from solar_pipeline.reports.dashboard import build_dashboard
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.settings import Settings

# After any energy partition is written, once nothing upstream is still running. Not `eager()`:
# that waits for every upstream partition to exist, and days before the first backfill never do.
REFRESH = (
    dg.AutomationCondition.any_deps_updated().since(
        dg.AutomationCondition.newly_requested() | dg.AutomationCondition.newly_updated()
    )
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)


@dg.asset(
    key=REPORTS_DASHBOARD,
    deps=[ENERGY_DAILY, ENERGY_MONTHLY, ENERGY_DAILY_INVERTER, ENERGY_INTERVALS],
    group_name=REPORTS_GROUP,
    pool=DUCKDB_POOL,
    kinds={"html"},
    automation_condition=REFRESH,
)
def energy_dashboard(warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """A self-contained HTML page per deployment, `SOLAR_DATA_DIR/reports/energy_dashboard.html`.

    Per site: the last 30 days of production (self-consumed + exported) beside consumption
    (self-consumed + imported) with the self-consumption rate; the latest day's power curve per
    source (gateway beside cloud); each month against the same month a year earlier; energy per
    inverter and day (a silent panel is a pale row); and the data-quality strip (status and
    coverage per day), with the Enphase authorization's remaining life. Scripts and data are
    inlined: it opens from disk, offline, on a phone too.
    """
    settings = Settings.from_env()
    with warehouse.connect() as conn:
        dash = build_dashboard(conn, settings)
    preview = base64.b64encode(dash.page.preview_png).decode()
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(dash.html_path)),
            "open": dg.MetadataValue.url(dash.html_path.resolve().as_uri()),
            "sites": dg.MetadataValue.json([s.site_id for s in dash.report.sites]),
            "charts": dash.page.charts,
            "size_kb": round(len(dash.page.html) / 1024),
            "preview": dg.MetadataValue.md(f"![dashboard preview](data:image/png;base64,{preview})")
            if preview
            else dg.MetadataValue.md("No energy data yet."),
        }
    )
