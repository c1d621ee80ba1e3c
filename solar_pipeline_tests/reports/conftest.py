"""A warehouse filled by the real pipeline for the dashboard tests: three days of a simulated
gateway (polled every 30 minutes, with inverter tags), five days of the simulated cloud (the
first two before the gateway) and one day a year earlier, then the energy assets. Built once
per module: the tests only read it."""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from solar_pipeline.assets import envoy
from solar_pipeline.partitions import DAILY
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.simulator import EnphaseCloudSimulator
from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline.sources.envoy.tags import load_inverter_tags
from solar_pipeline_tests.conftest import SYSTEM, make_enphase
from solar_pipeline_tests.energy.helpers import envoy_history, run_energy
from solar_pipeline_tests.helpers import ROOT, run_range

ARTIFACTS = ROOT / "test-artifacts"


@dataclass
class History:
    warehouse: DuckDBWarehouse
    data_dir: Path
    first: date  # the gateway was polled from this day ...
    last: date  # ... to this one
    cloud_only: date  # the cloud alone has it
    year_ago: date


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    data = tmp_path_factory.mktemp("dashboard")
    warehouse = DuckDBWarehouse(path=str(data / "solar.duckdb"))
    today = date.fromisoformat(DAILY.get_partition_key_for_timestamp(__import__("time").time()))
    first, last = today - timedelta(days=3), today - timedelta(days=1)
    year_ago = last - timedelta(days=364)
    # Two days before: the first poll's reports, stamped just before midnight, reach the day
    # before `first`; this one has cloud data only.
    cloud_only = first - timedelta(days=2)
    tags = data / "tags.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOLAR_DATA_DIR", str(data))
        mp.setenv("SOLAR_DUCKDB_PATH", warehouse.path)
        envoy_history(warehouse, data, first, last, step_s=1800)
        with warehouse.connect() as conn:
            serials = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT serial_number FROM envoy.inverter_readings ORDER BY 1"
                ).fetchall()
            ]
        tags.write_text(
            json.dumps(
                {
                    s: {"array": "east" if n % 2 else "west", "row": n // 8 + 1}
                    for n, s in enumerate(serials)
                }
            )
        )
        mp.setenv("ENVOY_INVERTER_TAGS", str(tags))
        assert dg.materialize([envoy.envoy_readings], resources={"warehouse": warehouse}).success
        with EnphaseCloudSimulator([SYSTEM], per_minute=50, per_month=50_000) as sim:
            mp.setenv("ENPHASE_REFRESH_TOKEN", sim.mint_refresh_token())
            enphase = make_enphase(sim, data)
            for a, b in ((cloud_only, last), (year_ago, year_ago)):
                assert run_range(enphase, warehouse, str(a), str(b)).success
        for a, b in ((cloud_only, last), (year_ago, year_ago)):
            assert run_energy(warehouse, str(a), str(b)).success
        yield History(warehouse, data, first, last, cloud_only, year_ago)


# Labels an installer could type into ENVOY_INVERTER_TAGS (or a gateway could report as a
# serial) that are markup to a browser: each one that ran would set window.__pwned.
HOSTILE_SERIALS = ["<!--<script>", "</script><script>window.__pwned='serial'</script>"]
HOSTILE_LABELS = [
    "<!--<script>",
    "</script><script>window.__pwned='label'</script>",
    "<img src=x onerror=\"window.__pwned='img'\">",
    "\"double\" 'single' & <b>bold</b> -->",
    "line\u2028separator\u2029paragraph",
    "\u2600\ufe0f S\u00fcd-Ost \U0001f50b",
    "very long " + "abcdefghij" * 400,
]


# The gateway's own serial names the site ("envoy:<serial>") in the page's headings.
HOSTILE_GATEWAY = "<!--<script>\"'&</h2><script>window.__pwned='site'</script>"


class HostileGateway(EnvoySimulator):
    """A gateway whose serial, and its inverter list's first serials, are markup."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, serial=HOSTILE_GATEWAY, **kwargs)

    def inverter_serials(self) -> list[str]:
        serials = super().inverter_serials()
        return [*HOSTILE_SERIALS, *serials[len(HOSTILE_SERIALS) :]]


@dataclass
class Hostile:
    data_dir: Path
    warehouse: DuckDBWarehouse
    labels: list[str]  # every heat-map row label the page must show as text


@pytest.fixture(scope="module")
def hostile_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    """Two days of a gateway reporting hostile serials, the other inverters tagged with hostile
    labels; then the energy assets."""
    data = tmp_path_factory.mktemp("hostile")
    warehouse = DuckDBWarehouse(path=str(data / "solar.duckdb"))
    today = date.fromisoformat(DAILY.get_partition_key_for_timestamp(__import__("time").time()))
    first, last = today - timedelta(days=2), today - timedelta(days=1)
    serials = HostileGateway(SYSTEM, outage=None, tls=False).inverter_serials()
    tagged = dict(zip(serials[len(HOSTILE_SERIALS) :], HOSTILE_LABELS, strict=False))
    tags = data / "tags.yaml"
    tags.write_text(
        yaml.safe_dump({s: {"array": label} for s, label in tagged.items()}, allow_unicode=True)
    )
    assert load_inverter_tags(tags) == {s: {"array": label} for s, label in tagged.items()}
    # The label data.py builds: the tags, then the serial's tail; an untagged inverter's serial.
    labels = [*HOSTILE_SERIALS, *(f"{label} {s[-4:]}" for s, label in tagged.items())]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOLAR_DATA_DIR", str(data))
        mp.setenv("SOLAR_DUCKDB_PATH", warehouse.path)
        mp.setenv("ENVOY_INVERTER_TAGS", str(tags))
        envoy_history(warehouse, data, first, last, step_s=1800, simulator=HostileGateway)
        assert dg.materialize([envoy.envoy_readings], resources={"warehouse": warehouse}).success
        assert run_energy(warehouse, str(first), str(last)).success
        yield Hostile(data, warehouse, labels)


def chart_specs(page_html: str) -> dict[str, dict]:
    """Card title -> the Vega-Lite spec embedded for it (first site's cards win)."""
    cards = re.findall(
        r'<div class="card" data-title="([^"]+)"><div class="chart" id="([^"]+)"></div>'
        r'<script type="application/json" data-chart="\2">(.*?)</script>',
        page_html,
        flags=re.S,
    )
    specs: dict[str, dict] = {}
    for title, _, text in cards:
        specs.setdefault(title, json.loads(text))
    return specs


def inline_rows(spec: object) -> list[dict]:
    """Every inline `values` row of a spec, sub-charts included (each dataset once)."""
    found: list[list[dict]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("values"), list) and node["values"] not in found:
                found.append(node["values"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return [row for rows in found for row in rows]
