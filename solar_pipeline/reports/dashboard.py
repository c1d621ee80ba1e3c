"""Build the energy dashboard from the warehouse: what the asset and `solar-pipeline report`
both call."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from solar_pipeline.reports.data import Report, build_report
from solar_pipeline.reports.page import Page, render, write
from solar_pipeline.settings import Settings, env
from solar_pipeline.sites import load_sites
from solar_pipeline.sources.enphase.tokens import token_store_from_uri
from solar_pipeline.sources.files import private_dir


@dataclass(frozen=True)
class Dashboard:
    report: Report
    page: Page
    html_path: Path
    png_path: Path


def reports_dir(settings: Settings) -> Path:
    return settings.data_dir / "reports"


def _token_status(settings: Settings) -> dict[str, float] | None:
    """The Enphase token's remaining life (numbers only), when the cloud is configured."""
    if not env("ENPHASE_API_KEY"):
        return None
    # A store that cannot be read now (a Kubernetes API hiccup) costs the page one line only.
    with contextlib.suppress(Exception):
        pair = token_store_from_uri(settings.enphase_token_store).read()
        return pair.status(time.time()) if pair else None
    return None


def build_dashboard(
    conn: duckdb.DuckDBPyConnection, settings: Settings, out_dir: Path | None = None
) -> Dashboard:
    zones = {s.site_id: s.timezone for s in load_sites(settings)}
    report = build_report(conn, zones, _token_status(settings), settings.timezone)
    page = render(report)
    if out_dir is None:
        # The default place is private like the rest of the data directory; a folder given
        # with --to (a web root) is the owner's to set up, and only created if missing.
        private_dir(settings.data_dir)
        out_dir = private_dir(reports_dir(settings))
    html_path, png_path = write(page, out_dir)
    return Dashboard(report, page, html_path, png_path)
