"""Re-materializing the same partitions leaves every table as it was: the partitioned cloud
assets (raw/enphase_responses, production and consumption intervals, daily energy) and the
partitioned energy assets built from them and the gateway's readings, three times over, give
identical checksums."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.energy.helpers import envoy_history, run_energy
from solar_pipeline_tests.helpers import query, run_range

# Two days around the autumn DST switch (a 25-hour day), long past: the simulator's answers
# for them never change.
FIRST, LAST = "2025-10-25", "2025-10-26"

# Columns that differ between two materializations of the same data by design, not content:
VOLATILE = {
    "id",  # raw row ids come from a sequence: a re-fetch stores the answer under a new id
    "raw_id",  # ... and the typed rows point at that new id
    "fetched_at",  # when the answer was fetched: the re-fetch's own time
    "run_id",  # the Dagster run that fetched it
    "requested_at",  # the request ledger's clock
    "duration_ms",  # how long the request took
    "body",  # the cloud embeds no clock in these bodies, but is checked through its rows
}
# Everything a run writes per partition. Two kinds of table grow by design and are checked
# apart: the request ledger (ops.*: every request is counted) and the raw answers (every
# answer is kept, a re-fetch too; the typed tables are rebuilt from the newest).
SCHEMAS = ("raw", "enphase", "energy")
APPEND_ONLY = "raw.enphase_responses"


def _checksums(path: str) -> dict[str, tuple[int, int]]:
    con = duckdb.connect(path, read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ? AND table_type = 'BASE TABLE' ORDER BY ALL",
            [list(SCHEMAS)],
        ).fetchall()
        sums = {}
        for schema, table in tables:
            columns = [
                c[0]
                for c in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                    [schema, table],
                ).fetchall()
                if c[0] not in VOLATILE
            ]
            row = ", ".join(f'"{c}"' for c in columns)
            [(count, digest)] = con.execute(
                f'SELECT count(*), coalesce(sum(hash(({row}))), 0) FROM "{schema}"."{table}"'
            ).fetchall()
            sums[f"{schema}.{table}"] = (int(count), int(digest))
        return sums
    finally:
        con.close()


@pytest.mark.slow
def test_three_rematerializations_give_identical_tables(
    sim, enphase, warehouse, tmp_path, monkeypatch
):
    monkeypatch.setenv("SOLAR_SITE_ID", f"enphase:{SYSTEM.system_id}")
    # Gateway readings as well, so the energy tables mix both sources (meter first, the cloud
    # where the gateway is silent) as on a real site.
    envoy_history(warehouse, tmp_path, date.fromisoformat(FIRST), date.fromisoformat(LAST))
    rounds = []
    for _ in range(3):
        assert run_range(enphase, warehouse, FIRST, LAST).success
        assert run_energy(warehouse, FIRST, LAST).success
        rounds.append(_checksums(warehouse.path))
    grown = [r.pop(APPEND_ONLY) for r in rounds]
    first = rounds[0]
    for name in (
        "enphase.production_intervals",
        "enphase.daily_energy",
        "energy.intervals",
        "energy.daily_energy",
        "energy.daily_inverter_energy",
    ):
        assert first[name][0] > 0, name  # the comparison is about real rows
    # The gateway's meter made the days, not only the cloud.
    sources = query(warehouse, "SELECT DISTINCT produced_source FROM energy.daily_energy")
    assert sources == [("envoy_meter",)]
    assert rounds[1] == first
    assert rounds[2] == first
    # The re-fetches were stored next to the first answers, each run adding the same answers
    # (the first run also fetched the device list, which the later ones reuse).
    assert grown[2][0] - grown[1][0] == grown[1][0] - grown[0][0] > 0
