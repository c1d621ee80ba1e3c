"""Real runs while another process holds the DuckDB file (a notebook, the DuckDB CLI, a backup)
for a few seconds, well inside the 60 s lock wait of warehouse/db.py: the runs wait, succeed,
and store everything."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from solar_pipeline_tests.envoy.conftest import make_envoy, run_envoy
from solar_pipeline_tests.helpers import query, run_range

DAY = "2025-06-10"
HOLD_S = 4.0


def _hold(path: str, seconds: float) -> subprocess.Popen:
    """Another process with a read-only connection: DuckDB locks the file against writers."""
    code = (
        f"import duckdb, sys, time; c = duckdb.connect({path!r}, read_only=True); "
        f"print('held', flush=True); time.sleep({seconds}); c.close()"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.slow
def test_cloud_and_gateway_runs_wait_out_a_reader_and_lose_nothing(
    sim, enphase, live_envoy, warehouse, tmp_path
):
    # The same runs on a free file first: what "nothing lost" means.
    reference = type(warehouse)(path=str(tmp_path / "reference.duckdb"))
    assert run_range(enphase, reference, DAY, DAY).success
    assert run_envoy(make_envoy(live_envoy, tmp_path / "ref_state"), reference).success

    with warehouse.connect():
        pass  # the schema exists, so the holder can open the file
    holder = _hold(warehouse.path, HOLD_S)
    started = time.monotonic()
    cloud = run_range(enphase, warehouse, DAY, DAY)
    waited = time.monotonic() - started
    holder.wait(timeout=30)
    assert cloud.success
    assert waited >= HOLD_S * 0.5  # it really was blocked, and got through

    holder = _hold(warehouse.path, HOLD_S)
    gateway = run_envoy(make_envoy(live_envoy, tmp_path), warehouse)
    holder.wait(timeout=30)
    assert gateway.success

    for table, key in (
        ("enphase.production_intervals", "source, end_at, wh"),
        ("enphase.consumption_intervals", "end_at, wh"),
        ("enphase.daily_energy", "day, produced_wh"),
    ):
        sql = f"SELECT {key} FROM {table} ORDER BY ALL"
        assert query(warehouse, sql) == query(reference, sql), table
        assert query(warehouse, sql), table
    for table in ("raw.envoy_responses", "envoy.production_readings", "envoy.inverter_readings"):
        got, expected = (
            query(w, f"SELECT count(*) FROM {table}")[0][0] for w in (warehouse, reference)
        )
        assert got == expected > 0, table
    meta = gateway.asset_materializations_for_node("raw__envoy_responses")[0].metadata
    assert (
        meta["responses_stored"].value
        == query(warehouse, "SELECT count(*) FROM raw.envoy_responses")[0][0]
    )
