import json
import re
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from solar_pipeline.assets.common import daily_duckdb_asset
from solar_pipeline.assets.energy.fleet import energy_sites
from solar_pipeline.constants import (
    ENERGY_DAILY_INVERTER,
    ENERGY_GROUP,
    ENVOY_INVERTER_READINGS,
)
from solar_pipeline.energy.model import inverter_daily
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.settings import Settings
from solar_pipeline.warehouse import replace_rows

SILENT_CHECK = "no_silent_inverter"
BASE_COLUMNS = {"site_id", "day", "serial_number", "wh", "reports"}


def _tag_columns(conn, tags: dict[str, dict]) -> dict[str, str]:
    """One column per tag key (array, face, row ...), added to the table when first seen."""
    names = {}
    for labels in tags.values():
        for key in labels if isinstance(labels, dict) else {}:
            column = re.sub(r"[^a-z0-9_]", "_", str(key).lower())
            names[key] = f"tag_{column}" if column in BASE_COLUMNS else column
    for column in names.values():
        conn.execute(
            f'ALTER TABLE energy.daily_inverter_energy ADD COLUMN IF NOT EXISTS "{column}" VARCHAR'
        )
    return names


@dg.asset(
    key=ENERGY_DAILY_INVERTER,
    deps=[ENVOY_INVERTER_READINGS],
    **daily_duckdb_asset(ENERGY_GROUP),
    check_specs=[dg.AssetCheckSpec(SILENT_CHECK, asset=ENERGY_DAILY_INVERTER)],
)
def daily_inverter_energy(
    context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse
) -> dg.MaterializeResult:
    """Energy per microinverter and local day (Wh), from the gateway's inverter reports.

    Each report's watts are held over its reporting period (since that inverter's previous
    report, at most 15 minutes), split at local midnight. Every inverter the gateway has ever
    listed gets a row each day: one that did not report has `wh = 0`, `reports = 0`, so a dead
    panel shows instead of disappearing. Labels from ENVOY_INVERTER_TAGS become columns.
    """
    w = context.partition_time_window
    keys = [date.fromisoformat(k) for k in context.partition_keys]
    with warehouse.connect() as conn:
        # Per-inverter reports come from the one gateway of the deployment (in SOLAR_TIMEZONE,
        # see sites.py); other vendors' inverters are not broken out yet.
        gateway = [s for s in energy_sites(conn, Settings.from_env()) if "envoy" in s.site.vendor]
        site = gateway[0].site_id if gateway else None
        tz = gateway[0].timezone if gateway else Settings.from_env().timezone
        known = [
            r[0]
            for r in conn.execute(
                # devType 11 is an AC battery, not a PV inverter.
                "SELECT DISTINCT serial_number FROM envoy.inverter_readings "
                "WHERE dev_type IS NULL OR dev_type = 1 ORDER BY 1"
            ).fetchall()
        ]
        reports = conn.execute(
            """
            SELECT serial_number, last_report_at, watts FROM envoy.inverter_readings
            WHERE last_report_at > ? AND last_report_at <= ? ORDER BY last_report_at
            """,
            [w.start - timedelta(days=1), w.end + timedelta(minutes=15)],
        ).fetchall()
        tags = {
            s: json.loads(t)
            for s, t in conn.execute(
                "SELECT serial_number, tags FROM envoy.inverter_tags"
            ).fetchall()
        }
        columns = _tag_columns(conn, tags)
        rows = []
        for day in keys:
            for serial, (wh, count) in sorted(
                inverter_daily(
                    [(s, at, float(watts or 0)) for s, at, watts in reports], day, tz, known
                ).items()
            ):
                labels = tags.get(serial)
                if not isinstance(labels, dict):
                    labels = {}
                rows.append(
                    {
                        "site_id": site,
                        "day": day,
                        "serial_number": serial,
                        "wh": round(wh, 3),
                        "reports": count,
                        **{columns[k]: str(v) for k, v in labels.items()},
                    }
                )
        frame = pd.DataFrame(rows)
        if site is not None and known:
            replace_rows(
                conn,
                "energy.daily_inverter_energy",
                frame,
                "site_id = ? AND day BETWEEN ? AND ?",
                [site, keys[0], keys[-1]],
            )
    silent: dict[str, list[str]] = {}
    if len(frame):
        for group_day, group in frame.groupby("day"):
            if group["wh"].sum() > 0:
                quiet = group.loc[group["reports"] == 0, "serial_number"].tolist()
                if quiet:
                    silent[str(group_day)] = quiet
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "inverters": len(known),
            "produced_kwh": round(float(frame["wh"].sum()) / 1000, 3) if len(frame) else 0.0,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=SILENT_CHECK,
                passed=not silent,
                severity=dg.AssetCheckSeverity.WARN,
                description="an inverter sent no report for a whole day while others produced",
                metadata={"silent": dg.MetadataValue.json(silent)},
            )
        ],
    )
