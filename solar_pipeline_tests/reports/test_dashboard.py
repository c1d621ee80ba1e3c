"""The dashboard's numbers are the energy tables' numbers, and the page renders in a real
browser with the network off: every chart drawn, no console error, no request leaving it."""

import math
import os
import stat
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from click.testing import CliRunner

from solar_pipeline.assets import energy, reports
from solar_pipeline.cli import main
from solar_pipeline.definitions import defs
from solar_pipeline.energy.model import local_day_bounds
from solar_pipeline.reports.dashboard import Dashboard, build_dashboard
from solar_pipeline.settings import Settings
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.helpers import query
from solar_pipeline_tests.reports.browser import open_page
from solar_pipeline_tests.reports.conftest import (
    ARTIFACTS,
    HOSTILE_GATEWAY,
    HOSTILE_SERIALS,
    History,
    Hostile,
    chart_specs,
    inline_rows,
)

TZ = SYSTEM.timezone
TITLES = ["Last 30 days", "Self-consumption", "Power", "Months", "Inverters", "Quality"]


def _same(a: Any, b: Any) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="module")
def page(history: History) -> tuple[str, Path]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOLAR_DATA_DIR", str(history.data_dir))
        mp.setenv("SOLAR_DUCKDB_PATH", history.warehouse.path)
        with history.warehouse.connect(read_only=True) as conn:
            dash = build_dashboard(conn, Settings.from_env())
    return dash.page.html, dash.html_path


def test_embedded_numbers_equal_the_energy_tables(history: History, page):
    html, _ = page
    specs = chart_specs(html)
    assert set(specs) == {
        "Last 30 days",
        "Self-consumption",
        "Power",
        "Months",
        "Inverters",
        "Quality",
    }
    [site] = {r[0] for r in query(history.warehouse, "SELECT site_id FROM energy.daily_energy")}

    daily = query(
        history.warehouse,
        "SELECT day, produced_wh, consumed_wh, imported_wh, exported_wh, self_consumed_wh, "
        "status, coverage FROM energy.daily_energy WHERE site_id = ? "
        "AND day > ?::DATE - INTERVAL 30 DAY ORDER BY day",
        [site, history.last],
    )
    assert daily[0][0] == history.cloud_only  # the year-old day is not in the last 30
    rows = inline_rows(specs["Last 30 days"])
    assert [r["day"][:10] for r in rows] == [str(d[0]) for d in daily]
    for r, (_, p, c, i, x, s, _, _) in zip(rows, daily, strict=True):
        for key, wh in (
            ("produced_kwh", p),
            ("consumed_kwh", c),
            ("imported_kwh", i),
            ("exported_kwh", x),
            ("self_consumed_kwh", s),
        ):
            assert _same(r[key], None if wh is None else wh / 1000), (r["day"], key)
    quality = inline_rows(specs["Quality"])
    assert [(r["day"][:10], r["status"], r["coverage"]) for r in quality] == [
        (str(d), status, cov) for d, *_, status, cov in daily
    ]

    # The latest day's curve: every interval of each source, its energy as mean power.
    curve = inline_rows(specs["Power"])
    start, end = local_day_bounds(history.last, TZ)
    expected = dict(
        query(
            history.warehouse,
            "SELECT source, sum(produced_wh) FROM energy.intervals WHERE site_id = ? "
            "AND end_at > ? AND end_at <= ? AND produced_wh IS NOT NULL GROUP BY 1",
            [site, start, end],
        )
    )
    assert {"envoy_meter", "enphase_micro"} <= set(expected)  # gateway beside cloud
    got: dict[str, float] = {}
    steps = {
        "envoy_meter": 1800,
        "envoy_inverters": 1800,
        "enphase_micro": 300,
        "enphase_meter": 900,
    }
    for r in curve:
        got[r["source"]] = got.get(r["source"], 0.0) + r["watts"] * steps[r["source"]] / 3600
    assert set(got) == set(expected)
    for source, wh in expected.items():
        assert math.isclose(got[source], wh, rel_tol=1e-6), source

    months = inline_rows(specs["Months"])
    monthly = query(
        history.warehouse,
        "SELECT month, produced_wh FROM energy.monthly_energy WHERE site_id = ? ORDER BY month",
        [site],
    )
    assert [(r["month"][:10], r["produced_kwh"]) for r in months] == [
        (str(m), wh / 1000) for m, wh in monthly
    ]
    assert len({r["year"] for r in months}) == 2  # this month beside the one a year earlier

    heat = inline_rows(specs["Inverters"])
    # A day without any gateway report has a zero row per inverter, which says nothing about
    # the panels: the heat map leaves it out.
    [(zeros,)] = query(
        history.warehouse,
        "SELECT count(*) FROM energy.daily_inverter_energy WHERE day = ? AND wh = 0 "
        "AND reports = 0",
        [history.cloud_only],
    )
    assert zeros > 0
    assert str(history.cloud_only) not in {r["day"][:10] for r in heat}
    inverters = query(
        history.warehouse,
        'SELECT day, serial_number, wh, "array", "row" FROM energy.daily_inverter_energy '
        "WHERE site_id = ? AND day > ? ORDER BY serial_number, day",
        [site, history.cloud_only],
    )
    assert [(r["day"][:10], r["serial_number"], r["wh"], r["label"]) for r in heat] == [
        (str(d), s, wh, f"{a} {row} {s[-4:]}") for d, s, wh, a, row in inverters
    ]


def test_the_page_renders_offline_in_chromium(page):
    _, path = page
    for width, name in ((1200, "dashboard-desktop.png"), (390, "dashboard-phone.png")):
        shot = ARTIFACTS / name
        seen = open_page(path, screenshot=shot, width=width)
        assert seen.charts and all(
            c["rendered"] and c["svg"] and c["marks"] for c in seen.charts.values()
        ), seen.charts
        assert seen.console_errors == [] and seen.page_errors == []
        assert seen.requests == [path.resolve().as_uri()]  # nothing else was even asked for
        assert seen.scroll_width <= width  # fits a phone: no sideways scrolling
        assert shot.stat().st_size > 10_000


def test_asset_writes_the_page_with_a_preview_and_refreshes_after_energy(
    history: History, tmp_path
):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOLAR_DATA_DIR", str(tmp_path))
        result = dg.materialize(
            [reports.energy_dashboard], resources={"warehouse": history.warehouse}
        )
    assert result.success
    meta: Any = result.asset_materializations_for_node("reports__energy_dashboard")[0].metadata
    assert Path(meta["path"].value) == tmp_path / "reports" / "energy_dashboard.html"
    assert Path(meta["path"].value).stat().st_size > 500_000  # the scripts are inlined
    assert meta["preview"].value.startswith("![dashboard preview](data:image/png;base64,iVBOR")

    # Declarative automation: a new energy partition requests the page, nothing else does.
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(
            defs=defs(),
            instance=instance,
            asset_selection=dg.AssetSelection.assets(reports.energy_dashboard),
        )
        assert first.total_requested == 0
        dg.materialize(
            [energy.daily_energy],
            instance=instance,
            partition_key=str(history.last),
            resources={"warehouse": history.warehouse},
        )
        second = dg.evaluate_automation_conditions(
            defs=defs(),
            instance=instance,
            asset_selection=dg.AssetSelection.assets(reports.energy_dashboard),
            cursor=first.cursor,
        )
        assert second.total_requested == 1


def test_report_command_builds_it_on_demand(history: History, tmp_path, monkeypatch):
    monkeypatch.setenv("SOLAR_DATA_DIR", str(history.data_dir))
    monkeypatch.setenv("SOLAR_DUCKDB_PATH", history.warehouse.path)
    out = CliRunner().invoke(main, ["report", "--to", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert f"Wrote {tmp_path / 'energy_dashboard.html'}" in out.output
    monkeypatch.setenv("SOLAR_DUCKDB_PATH", str(tmp_path / "missing.duckdb"))
    missing = CliRunner().invoke(main, ["report"])
    assert missing.exit_code != 0 and "run the pipeline first" in missing.output


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_report_into_a_web_root_changes_no_directory_it_did_not_create(
    history: History, tmp_path, monkeypatch
):
    monkeypatch.setenv("SOLAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SOLAR_DUCKDB_PATH", history.warehouse.path)
    www = tmp_path / "www"
    www.mkdir(mode=0o755)
    www.chmod(0o755)
    umask = os.umask(0o022)
    os.umask(umask)

    # A new folder in the web root: created with the ordinary mode, the page readable by the
    # web server (another user), the web root untouched.
    new = www / "solar"
    out = CliRunner().invoke(main, ["report", "--to", str(new)])
    assert out.exit_code == 0, out.output
    assert _mode(www) == 0o755
    assert _mode(new) == 0o777 & ~umask
    for name in ("energy_dashboard.html", "energy_dashboard.png"):
        assert _mode(new / name) == 0o644, name

    # A folder that exists keeps its mode, and so does a page the owner restricted (say to
    # the web server's group): a rebuild replaces the content, not the permissions.
    existing = www / "existing"
    existing.mkdir()
    existing.chmod(0o750)
    (existing / "energy_dashboard.html").write_text("old")
    (existing / "energy_dashboard.html").chmod(0o640)
    out = CliRunner().invoke(main, ["report", "--to", str(existing)])
    assert out.exit_code == 0, out.output
    assert _mode(existing) == 0o750 and _mode(www) == 0o755
    assert _mode(existing / "energy_dashboard.html") == 0o640
    assert (existing / "energy_dashboard.html").stat().st_size > 500_000

    # Without --to the page stays inside the private data directory.
    out = CliRunner().invoke(main, ["report"])
    assert out.exit_code == 0, out.output
    assert _mode(tmp_path / "data") == 0o700 and _mode(tmp_path / "data" / "reports") == 0o700


@pytest.fixture(scope="module")
def hostile_page(hostile_history: Hostile) -> Dashboard:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOLAR_DATA_DIR", str(hostile_history.data_dir))
        mp.setenv("SOLAR_DUCKDB_PATH", hostile_history.warehouse.path)
        with hostile_history.warehouse.connect(read_only=True) as conn:
            return build_dashboard(conn, Settings.from_env())


def _shown_as(label: str, text: str) -> bool:
    """The axis shows the label, or its start cut short with an ellipsis (labelLimit)."""
    return text == label or (text.endswith("…") and len(text) > 4 and label.startswith(text[:-1]))


def test_hostile_labels_are_text_every_chart_renders_and_nothing_runs(
    hostile_history: Hostile, hostile_page: Dashboard
):
    dash = hostile_page
    shot = ARTIFACTS / "dashboard-hostile.png"
    seen = open_page(dash.html_path, screenshot=shot, hover_rows_of="Inverters")
    drawn = [c["title"] for c in seen.charts.values() if c["rendered"] and c["svg"] and c["marks"]]
    assert sorted(drawn) == sorted(TITLES), f"{len(drawn)} of {len(TITLES)} charts: {drawn}"
    assert not seen.timed_out
    assert dash.page.charts == len(TITLES)
    assert seen.pwned is None  # no label's script or handler ran, nor on pointing at a row
    assert seen.console_errors == [] and seen.page_errors == []
    assert seen.requests == [dash.html_path.resolve().as_uri()]  # <img src=x> made no request
    assert shot.stat().st_size > 10_000
    assert seen.scroll_width <= 1200  # a 4,000-character label is cut short, not a wide page

    # The gateway's serial names the site: a heading, as text.
    assert f"envoy:{HOSTILE_GATEWAY} (Europe/Amsterdam)" in seen.headings, seen.headings

    # Each label is a row of the heat map, as text; pointing at the row shows it whole, as text.
    (heat,) = [c for c in seen.charts.values() if c["title"] == "Inverters"]
    for label in hostile_history.labels:
        assert any(_shown_as(label, text) for text in heat["labels"]), (label, heat["labels"])
    assert len(seen.tooltips) == 16  # one per inverter
    assert set(hostile_history.labels) <= {tip["fields"]["label"] for tip in seen.tooltips}
    assert set(HOSTILE_SERIALS) <= {tip["fields"]["serial_number"] for tip in seen.tooltips}
    assert all(tip["elements"] == 0 for tip in seen.tooltips), seen.tooltips
