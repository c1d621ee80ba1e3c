"""The energy dashboard as one self-contained HTML file: Vega, Vega-Lite and vega-embed inlined
(vl-convert's bundle), every chart's data inlined, no request leaves the page; plus a PNG
preview rendered without a browser (vl-convert) for the Dagster UI."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert as vlc

from solar_pipeline.reports import charts
from solar_pipeline.reports.data import Report, SiteReport

VL_VERSION = alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]  # the Vega-Lite Altair writes
PREVIEW_WIDTH = 640

_CSS = """
:root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; }
body { margin: 0; background: #fafafa; }
header, section { max-width: 1100px; margin: 0 auto; padding: 12px 16px; }
h1 { font-size: 1.4rem; margin: 8px 0; } h2 { font-size: 1.15rem; margin: 16px 0 4px; }
.facts { display: flex; flex-wrap: wrap; gap: 8px 20px; font-size: .95rem; }
.facts b { font-size: 1.1rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px; }
.card { background: #fff; border-radius: 8px; padding: 8px; box-shadow: 0 1px 3px #0002;
        min-width: 0; }
.chart { width: 100%; }
.warn { color: #b71c1c; }
"""

# vegaEmbed each chart from its JSON; a chart that fails says so on the page (and the console).
_SCRIPT = """
document.querySelectorAll("script[type='application/json'][data-chart]").forEach((node) => {
  const target = document.getElementById(node.dataset.chart);
  vegaEmbed(target, JSON.parse(node.textContent), {renderer: "svg", actions: false})
    .then(() => { target.dataset.rendered = "true"; })
    .catch((err) => { console.error(err); target.textContent = "This chart failed: " + err; });
});
"""


@dataclass(frozen=True)
class Page:
    html: str
    preview_png: bytes
    charts: int


@cache
def _bundle() -> str:
    # Built once per process (about 2 s): the standard bundle puts vegaEmbed on window.
    # Inlined in a <script> element: "</script" would end it and "<!--" could swallow the page
    # (see script_json); in a JavaScript string or regular expression "<\/" and "<\!" still
    # mean "</" and "<!". Today's bundle has neither; a future one must not break the page.
    # The stub marks `snippet` required; without it the function bundles the libraries alone.
    bundle = vlc.javascript_bundle(vl_version=VL_VERSION)  # type: ignore[call-arg]
    return re.sub(r"<(/script|!--)", r"<\\\1", bundle, flags=re.IGNORECASE)


# Inside a <script> element the HTML parser still reacts to "</script" and to "<!--" (which,
# followed by "<script", swallows the rest of the page as script text); `&` and `>` are escaped
# for the same reason, U+2028/U+2029 because older JavaScript parsers end a line there. JSON
# reads \u003c etc. back as the same characters, so labels stay exactly what they were.
_JSON_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def script_json(value: object) -> str:
    """`value` as JSON that is safe as the text of a <script> element."""
    return json.dumps(value, separators=(",", ":")).translate(_JSON_ESCAPES)


def _json_script(chart_id: str, spec: dict) -> str:
    return (
        f'<script type="application/json" data-chart="{html.escape(chart_id)}">'
        f"{script_json(spec)}</script>"
    )


def _site_charts(site: SiteReport) -> list[tuple[str, alt.TopLevelMixin]]:
    out = [("Last 30 days", charts.last_30_days(site))]
    if site.daily["self_consumption_rate"].notna().any():
        out.append(("Self-consumption", charts.self_consumption(site)))
    if not site.curve.empty:
        out.append(("Power", charts.power_curve(site)))
    if not site.monthly.empty:
        out.append(("Months", charts.month_vs_last_year(site)))
    if not site.inverters.empty:
        out.append(("Inverters", charts.inverter_heatmap(site)))
    out.append(("Quality", charts.quality_strip(site)))
    return out


def _facts(site: SiteReport) -> str:
    last = site.daily.tail(1)
    if last.empty:
        return "<p>No daily energy yet.</p>"
    row = last.iloc[0]

    def kwh(value: Any) -> str:
        return "n/a" if value is None or value != value else f"{float(value):.1f} kWh"

    month = site.daily[site.daily["day"].astype(str).str[:7] == str(row["day"])[:7]]
    rate = row["self_consumption_rate"]
    return (
        '<div class="facts">'
        f"<span>{html.escape(str(row['day'])[:10])}: <b>{kwh(row['produced_kwh'])}</b> produced"
        f" ({html.escape(str(row['status']))})</span>"
        f"<span>consumed <b>{kwh(row['consumed_kwh'])}</b></span>"
        f"<span>self-consumed <b>{'n/a' if rate != rate else f'{rate:.0%}'}</b></span>"
        f"<span>this month so far <b>{kwh(month['produced_kwh'].sum())}</b></span>"
        "</div>"
    )


def _token_line(token: dict[str, float] | None) -> str:
    if not token:
        return ""
    days = token.get("refresh_token_expires_in_days", 0.0)
    cls = ' class="warn"' if days < 7 else ""
    return (
        f"<p{cls}>Enphase authorization lapses in {days:.0f} days if the pipeline stops "
        "refreshing it (run <code>solar-pipeline enphase-auth</code> after that).</p>"
    )


def render(report: Report) -> Page:
    parts, preview_spec, n = [], None, 0
    for site in report.sites:
        cards = []
        for title, chart in _site_charts(site):
            n += 1
            chart_id = f"chart-{n}"
            spec = chart.to_dict()
            if preview_spec is None:
                preview_spec = spec
            cards.append(
                f'<div class="card" data-title="{html.escape(title)}">'
                f'<div class="chart" id="{chart_id}"></div>{_json_script(chart_id, spec)}</div>'
            )
        parts.append(
            f'<section data-site="{html.escape(site.site_id)}">'
            f"<h2>{html.escape(site.site_id)} <small>({html.escape(site.timezone)})</small></h2>"
            f'{_facts(site)}<div class="grid">{"".join(cards)}</div></section>'
        )
    generated = datetime.fromtimestamp(report.generated_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Solar energy dashboard</title>"
        f"<style>{_CSS}</style><script>{_bundle()}</script></head><body>"
        f"<header><h1>Solar energy</h1><p>Generated {generated} by solar_pipeline from "
        "the energy tables.</p>"
        f"{_token_line(report.token)}</header>"
        f"{''.join(parts) or '<section><p>No energy data yet.</p></section>'}"
        f"<script>{_SCRIPT}</script></body></html>"
    )
    return Page(page, preview(preview_spec) if preview_spec else b"", n)


def preview(spec: dict) -> bytes:
    """A small PNG of one chart, rendered without a browser."""
    fixed = json.loads(json.dumps(spec).replace('"container"', str(PREVIEW_WIDTH)))
    return vlc.vegalite_to_png(fixed, vl_version=VL_VERSION, scale=1)


# A new page is readable by everyone whatever the umask (the systemd units set 0077): it holds
# energy numbers, site ids and inverter serials, no secret, and a page given to `report --to`
# is there to be served by a web server running as another user. The default page is private
# through its directory (the data directory's reports/, created 0700).
PAGE_MODE = 0o644


def write(page: Page, out_dir: Path) -> tuple[Path, Path]:
    """energy_dashboard.html and its preview PNG, each replaced atomically.

    `out_dir` is created if missing, with the ordinary mode; a directory that exists is never
    changed. A page that exists keeps its mode and group (an owner who made it 0640 for the web
    server's group keeps that), a new one gets PAGE_MODE.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, png_path = out_dir / "energy_dashboard.html", out_dir / "energy_dashboard.png"
    for path, data in ((html_path, page.html.encode()), (png_path, page.preview_png)):
        _replace(path, data)
    return html_path, png_path


def _replace(path: Path, data: bytes) -> None:
    try:
        old = path.stat()
    except FileNotFoundError:
        old = None
    # mkstemp: a fresh file (O_EXCL), never a link someone else left in a shared folder.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if old is not None and old.st_gid != os.fstat(fd).st_gid:
                with contextlib.suppress(PermissionError):  # not a member of that group
                    os.fchown(fd, -1, old.st_gid)
            os.fchmod(fd, stat.S_IMODE(old.st_mode) if old is not None else PAGE_MODE)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
