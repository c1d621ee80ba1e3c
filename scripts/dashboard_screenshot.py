"""Regenerate docs/dashboard.png, the README's picture of the energy dashboard: the page the
project builds from SOLAR_DATA_DIR (e.g. after `make demo`), opened offline in Chromium, the
first site's section only (keeps the PNG small). Needs the dev dependencies and Chromium
(`make browser`).

    SOLAR_DATA_DIR=data/demo .venv/bin/python scripts/dashboard_screenshot.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from solar_pipeline.reports.dashboard import build_dashboard
from solar_pipeline.settings import Settings
from solar_pipeline.warehouse import connect
from solar_pipeline_tests.reports.browser import ARGS, CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "dashboard.png"
WIDTH = 1000


def main() -> int:
    settings = Settings.from_env()
    with connect(settings.duckdb_path, read_only=True) as conn:
        dash = build_dashboard(conn, settings)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(offline=True, viewport={"width": WIDTH, "height": 900})
        page = context.new_page()
        page.goto(dash.html_path.resolve().as_uri())
        page.wait_for_function(
            "[...document.querySelectorAll('.chart')].every(c => c.dataset.rendered === 'true')"
        )
        OUT.parent.mkdir(exist_ok=True)
        page.locator("section").first.screenshot(path=str(OUT))
        browser.close()
    print(f"{OUT} ({OUT.stat().st_size // 1024} kB) from {dash.html_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
