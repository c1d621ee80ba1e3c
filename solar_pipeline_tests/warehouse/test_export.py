"""The Parquet export: Hive layout, identical rows, and only changed months rewritten."""

import json
import os
from pathlib import Path

import dagster as dg
import duckdb
from click.testing import CliRunner

from solar_pipeline.assets import maintenance
from solar_pipeline.cli import main
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.warehouse.export import EXPORT_SCHEMAS, export_parquet
from solar_pipeline_tests.warehouse.conftest import execute, rows

TZ = "Europe/Amsterdam"
EXPORTED = [
    "energy.daily_energy",
    "energy.daily_inverter_energy",
    "energy.intervals",
    "energy.monthly_energy",
    "envoy.inverter_readings",
    "envoy.meter_readings",
    "envoy.production_readings",
]


def _files(out: Path) -> dict[str, tuple[int, int]]:
    """Every data file -> (inode, mtime_ns): a rewrite (temp file + rename) changes both."""
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in out.rglob("*.parquet")
    }


def _same_rows(db: Path, out: Path, table: str) -> None:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        listed = ", ".join(f'"{c}"' for c in cols)
        table_rows = con.execute(f"SELECT {listed} FROM {table} ORDER BY ALL").fetchall()
        exported = con.execute(
            f"SELECT {listed} FROM read_parquet('{out}/{table}/**/*.parquet', "
            "hive_partitioning = true) ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    assert table_rows and exported == table_rows, table


def test_export_writes_hive_partitioned_months_with_the_tables_rows(db, tmp_path):
    out = tmp_path / "export"
    summary = export_parquet(db, out, TZ)

    # Envoy readings and energy figures on both sides of the May/June boundary (local time).
    for table in ["envoy.production_readings", "energy.daily_energy", "energy.intervals"]:
        assert (out / table / "year=2025" / "month=05" / "data.parquet").is_file()
        assert (out / table / "year=2025" / "month=06" / "data.parquet").is_file()
    # A table with a `month` column is cut by year only (a month= folder would shadow it).
    assert (out / "energy.monthly_energy" / "year=2025" / "data.parquet").is_file()
    for table in EXPORTED:
        _same_rows(db, out, table)
    # Hive columns come from the path: the local month of the time column.
    by_month = rows(
        db,
        f"SELECT year, month, count(*) FROM read_parquet('{out}/energy.daily_energy/**/*.parquet',"
        " hive_partitioning = true) GROUP BY ALL ORDER BY ALL",
    )
    assert [(y, int(m), n) for y, m, n in by_month] == [(2025, 5, 2), (2025, 6, 2)]
    # Empty tables get no file; no raw or ops table is exported.
    assert not (out / "envoy.inverter_tags").exists()
    assert not any(p.name.startswith(("raw.", "ops.")) for p in out.iterdir())

    manifest = json.loads((out / "manifest.json").read_text())
    parts = manifest["tables"]["energy.daily_energy"]["partitions"]
    assert set(parts) == {"year=2025/month=05", "year=2025/month=06"}
    assert parts["year=2025/month=05"]["rows"] == 2
    assert summary.tables == _tables(db) and len(summary.written) == len(_files(out))
    assert summary.unchanged == 0


def test_only_the_changed_month_is_rewritten(db, tmp_path):
    out = tmp_path / "export"
    export_parquet(db, out, TZ)
    before = _files(out)

    again = export_parquet(db, out, TZ)
    assert again.written == [] and again.unchanged == len(before)
    assert _files(out) == before

    execute(db, "UPDATE energy.daily_energy SET anomalies = 7 WHERE day = DATE '2025-06-01'")
    changed = export_parquet(db, out, TZ)
    assert changed.written == ["energy.daily_energy/year=2025/month=06"]
    after = _files(out)
    rewritten = {k for k in before if after[k] != before[k]}
    assert rewritten == {"energy.daily_energy/year=2025/month=06/data.parquet"}
    _same_rows(db, out, "energy.daily_energy")

    # A month whose rows disappeared loses its file (and its empty folder).
    execute(db, "DELETE FROM energy.intervals WHERE start_at < TIMESTAMPTZ '2025-06-01 00:00+02'")
    gone = export_parquet(db, out, TZ)
    assert gone.written == [] and gone.removed == ["energy.intervals/year=2025/month=05"]
    assert not (out / "energy.intervals" / "year=2025" / "month=05").exists()
    _same_rows(db, out, "energy.intervals")

    # A missing file is written again even though its fingerprint did not change.
    (out / "envoy.meter_readings" / "year=2025" / "month=05" / "data.parquet").unlink()
    healed = export_parquet(db, out, TZ)
    assert healed.written == ["envoy.meter_readings/year=2025/month=05"]
    _same_rows(db, out, "envoy.meter_readings")


def test_export_command_and_asset(data_dir, tmp_path):
    out = tmp_path / "exported"
    first = CliRunner().invoke(main, ["export", "--to", str(out)])
    assert first.exit_code == 0, first.output
    assert f"Exported {_tables(data_dir / 'solar.duckdb')} tables to {out}" in first.output
    assert "wrote energy.daily_energy/year=2025/month=06" in first.output
    second = CliRunner().invoke(main, ["export", "--to", str(out)])
    assert "0 files written" in second.output, second.output

    # The asset writes to $SOLAR_DATA_DIR/export by default.
    warehouse = DuckDBWarehouse(path=str(data_dir / "solar.duckdb"))
    result = dg.materialize([maintenance.parquet_export], resources={"warehouse": warehouse})
    assert result.success
    meta = result.asset_materializations_for_node("exports__parquet")[0].metadata
    assert meta["months_written"].value > 0 and meta["months_unchanged"].value == 0
    assert meta["path"].value == str(data_dir / "export")
    assert _files(data_dir / "export").keys() == _files(out).keys()
    again = dg.materialize([maintenance.parquet_export], resources={"warehouse": warehouse})
    meta = again.asset_materializations_for_node("exports__parquet")[0].metadata
    assert meta["months_written"].value == 0
    assert meta["months_unchanged"].value == len(_files(out))


def test_export_of_a_missing_database_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SOLAR_DATA_DIR", str(tmp_path / "nothing"))
    result = CliRunner().invoke(main, ["export", "--to", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "No DuckDB database at" in result.output
    assert not os.path.exists(tmp_path / "nothing" / "solar.duckdb")


def _tables(db) -> int:
    """Base tables of the exported schemas (the Enphase sources, energy, and every fleet
    vendor's two typed tables)."""
    [(n,)] = rows(
        db,
        "SELECT count(*) FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        f"AND table_schema IN ({', '.join(repr(s) for s in EXPORT_SCHEMAS)})",
    )
    assert n >= 14 + 2 * 4
    return n
