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

import dagster as dg
import pytest

from solar_pipeline.assets import envoy
from solar_pipeline.partitions import DAILY
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.simulator import EnphaseCloudSimulator
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
        specs.setdefault(title, json.loads(text.replace("<\\/", "</")))
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
