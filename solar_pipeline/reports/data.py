"""What the dashboard shows, read from the energy tables: plain rows, one frame per chart, so
the page and its tests see exactly the same numbers."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import pandas as pd

from solar_pipeline.energy.model import local_day_bounds
from solar_pipeline.warehouse.db import one_row

DAYS = 30


@dataclass
class SiteReport:
    site_id: str
    timezone: str
    last_day: date | None
    daily: pd.DataFrame  # the last DAYS days of energy.daily_energy, kWh
    curve: pd.DataFrame  # the latest day's mean power per interval and source, W
    curve_day: date | None
    monthly: pd.DataFrame  # produced kWh per month, this year and a year earlier
    inverters: pd.DataFrame  # inverter x day, Wh, with a label from the tags
    quality: pd.DataFrame  # per day: coverage, status, anomalies


@dataclass
class Report:
    generated_at: float
    sites: list[SiteReport] = field(default_factory=list)
    token: dict[str, float] | None = None  # the Enphase token's ages (never the token)


def build_report(
    conn: duckdb.DuckDBPyConnection,
    zones: dict[str, str],
    token: dict[str, float] | None = None,
    default_zone: str = "UTC",
) -> Report:
    """One SiteReport per site that has daily energy, in `zones` order (site_id -> zone) and
    then any other site found (in `default_zone`: the deployment's one site, by name)."""
    found = [
        r[0] for r in conn.execute("SELECT DISTINCT site_id FROM energy.daily_energy").fetchall()
    ]
    order = [s for s in zones if s in found] + sorted(s for s in found if s not in zones)
    report = Report(time.time(), token=token)
    for site in order:
        report.sites.append(_site(conn, site, zones.get(site, default_zone)))
    return report


def _site(conn: duckdb.DuckDBPyConnection, site: str, tz: str) -> SiteReport:
    last = one_row(
        conn,
        "SELECT max(day) FROM energy.daily_energy WHERE site_id = ? AND produced_wh IS NOT NULL",
        [site],
    )[0]
    first = last - timedelta(days=DAYS - 1) if last else None
    daily = conn.execute(
        """
        SELECT day, produced_wh / 1000 AS produced_kwh, consumed_wh / 1000 AS consumed_kwh,
               imported_wh / 1000 AS imported_kwh, exported_wh / 1000 AS exported_kwh,
               self_consumed_wh / 1000 AS self_consumed_kwh,
               CASE WHEN produced_wh > 0 AND self_consumed_wh IS NOT NULL
                    THEN self_consumed_wh / produced_wh END AS self_consumption_rate,
               coverage, status, produced_source, anomalies
        FROM energy.daily_energy WHERE site_id = ? AND day BETWEEN ? AND ? ORDER BY day
        """,
        [site, first, last],
    ).df()
    curve_day = _curve_day(conn, site, tz, last)
    return SiteReport(
        site_id=site,
        timezone=tz,
        last_day=last,
        daily=daily,
        curve=_curve(conn, site, tz, curve_day) if curve_day else pd.DataFrame(),
        curve_day=curve_day,
        monthly=_monthly(conn, site, last),
        inverters=_inverters(conn, site, first, last),
        quality=daily[["day", "coverage", "status", "produced_source", "anomalies"]].copy(),
    )


def _curve_day(
    conn: duckdb.DuckDBPyConnection, site: str, tz: str, last: date | None
) -> date | None:
    """Today, or the latest day with production intervals (the newest day may have none yet)."""
    # An interval belongs to the day its end lies in, midnight included: (00:00, 24:00].
    row = conn.execute(
        "SELECT max(timezone(?, end_at - INTERVAL 1 SECOND)::DATE) FROM energy.intervals "
        "WHERE site_id = ? AND produced_wh IS NOT NULL",
        [tz, site],
    ).fetchone()
    return (row[0] if row else None) or last


def _curve(conn: duckdb.DuckDBPyConnection, site: str, tz: str, day: date) -> pd.DataFrame:
    start, end = local_day_bounds(day, tz)
    frame = conn.execute(
        """
        SELECT timezone(?, end_at) AS local_end, source,
               produced_wh * 3600 / epoch(end_at - start_at) AS watts
        FROM energy.intervals
        WHERE site_id = ? AND end_at > ? AND end_at <= ? AND produced_wh IS NOT NULL
          -- every source's own steps; a gap after an outage or a daily total has no curve
          AND end_at > start_at AND epoch(end_at - start_at) <= 3600
        ORDER BY source, end_at
        """,
        [tz, site, start, end],
    ).df()
    return frame


def _monthly(conn: duckdb.DuckDBPyConnection, site: str, last: date | None) -> pd.DataFrame:
    """Produced kWh per month of the last 12, beside the same month a year earlier."""
    if last is None:
        return pd.DataFrame(columns=["month", "year", "month_name", "produced_kwh"])
    since = date(last.year - 2, last.month, 1)
    frame = conn.execute(
        """
        SELECT month, year(month) AS year, strftime(month, '%b') AS month_name,
               month(month) AS month_number, produced_wh / 1000 AS produced_kwh
        FROM energy.monthly_energy WHERE site_id = ? AND month > ? AND month <= ?
        ORDER BY month
        """,
        [site, since, last],
    ).df()
    return frame


def _inverters(
    conn: duckdb.DuckDBPyConnection, site: str, first: date | None, last: date | None
) -> pd.DataFrame:
    if first is None:
        return pd.DataFrame(columns=["day", "serial_number", "label", "wh"])
    # Only days on which some inverter reported: on a day without gateway data every panel
    # has 0 Wh, which says nothing about the panels.
    frame = conn.execute(
        """
        SELECT * FROM energy.daily_inverter_energy
        WHERE site_id = ? AND day BETWEEN ? AND ? AND day IN (
            SELECT day FROM energy.daily_inverter_energy
            WHERE site_id = ? GROUP BY day HAVING sum(reports) > 0)
        ORDER BY serial_number, day
        """,
        [site, first, last, site],
    ).df()
    if frame.empty:
        return pd.DataFrame(columns=["day", "serial_number", "label", "wh"])
    base = {"site_id", "day", "serial_number", "wh", "reports"}
    tags = [c for c in frame.columns if c not in base]
    # The labels an installer gave the panels (array, row, position) name the rows; the
    # serial's tail keeps two panels with the same labels apart.
    frame["label"] = frame.apply(
        lambda r: (
            " ".join([*(str(r[t]) for t in tags if pd.notna(r[t])), r["serial_number"][-4:]])
            if any(pd.notna(r[t]) for t in tags)
            else r["serial_number"]
        ),
        axis=1,
    )
    return frame[["day", "serial_number", "label", "wh"]]


def as_records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: dates and timestamps as ISO strings, NaN as null."""
    return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="s"))
