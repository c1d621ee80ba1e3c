"""Raw-response compaction: rows leave DuckDB only once verified in Parquet, and come back."""

from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from solar_pipeline.assets import maintenance
from solar_pipeline.assets.envoy.ingest import ingest
from solar_pipeline.cli import main
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.settings import InvalidSettingError
from solar_pipeline.warehouse.archive import archive_raw, restore_raw, retention_days_from_env
from solar_pipeline_tests.conftest import make_enphase
from solar_pipeline_tests.helpers import TELEMETRY, run_range
from solar_pipeline_tests.warehouse.conftest import execute, rows

TZ = "Europe/Amsterdam"
# Noon of 1 June, local: May and the night of 1 June are archived, the rest stays.
NOW = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
CUTOFF_SQL = "TIMESTAMPTZ '2025-06-01 10:00:00+00'"
ENVOY_ALL = "SELECT * FROM raw.envoy_responses ORDER BY id"


def _parquet_rows(folder: Path) -> list[tuple]:
    con = duckdb.connect()
    try:
        return con.execute(
            f"SELECT * FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = false) "
            "ORDER BY id"
        ).fetchall()
    finally:
        con.close()


def test_archive_moves_old_rows_to_verified_parquet_and_restore_brings_them_back(db, data_dir):
    before = rows(db, ENVOY_ALL)
    old = rows(db, f"SELECT * FROM raw.envoy_responses WHERE fetched_at < {CUTOFF_SQL} ORDER BY id")
    readings = rows(db, "SELECT * FROM envoy.production_readings ORDER BY ALL")
    assert 0 < len(old) < len(before)

    summary = archive_raw(db, data_dir, 0, TZ, now=NOW)
    assert summary.rows == {"raw.enphase_responses": 0, "raw.envoy_responses": len(old)}

    # Gone from DuckDB, identical in zstd Parquet under year=/month= of the local month.
    assert rows(
        db, f"SELECT count(*) FROM raw.envoy_responses WHERE fetched_at < {CUTOFF_SQL}"
    ) == [(0,)]
    assert rows(db, ENVOY_ALL) == before[len(old) :]
    folder = data_dir / "archive" / "raw" / "envoy_responses"
    assert {p.parent.relative_to(folder).as_posix() for p in folder.rglob("part-*.parquet")} == {
        "year=2025/month=05",
        "year=2025/month=06",
    }
    assert _parquet_rows(folder) == old
    codecs = rows(
        db,
        f"SELECT DISTINCT compression FROM parquet_metadata('{folder}/**/*.parquet')",
    )
    assert codecs == [("ZSTD",)]

    # A full re-parse with part of the answers archived keeps the readings parsed from them.
    with DuckDBWarehouse(path=str(db)).connect() as conn:
        ingest(conn, full=True)
    assert rows(db, "SELECT * FROM envoy.production_readings ORDER BY ALL") == readings

    # Restore one local day: exactly its rows come back, identical; twice changes nothing.
    day = restore_raw(db, data_dir, date(2025, 5, 31), date(2025, 5, 31), TZ)
    expected = [
        r
        for r in old
        if datetime(2025, 5, 30, 22, tzinfo=UTC) <= r[1] < datetime(2025, 5, 31, 22, tzinfo=UTC)
    ]
    assert day.inserted["raw.envoy_responses"] == len(expected) > 0
    again = restore_raw(db, data_dir, date(2025, 5, 31), date(2025, 5, 31), TZ)
    assert again.inserted["raw.envoy_responses"] == 0
    assert again.found["raw.envoy_responses"] == len(expected)
    assert rows(db, ENVOY_ALL) == sorted(expected + before[len(old) :])

    # Everything back: the full re-parse (what `envoy-reparse` runs) rebuilds the readings.
    restore_raw(db, data_dir, date(2025, 5, 1), date(2025, 6, 30), TZ)
    assert rows(db, ENVOY_ALL) == before
    with DuckDBWarehouse(path=str(db)).connect() as conn:
        ingest(conn, full=True)
    assert rows(db, "SELECT * FROM envoy.production_readings ORDER BY ALL") == readings

    # Archiving restored rows again deletes them without writing them a second time.
    files = sorted(folder.rglob("part-*.parquet"))
    rearchived = archive_raw(db, data_dir, 0, TZ, now=NOW)
    assert rearchived.rows["raw.envoy_responses"] == len(old) and rearchived.files == []
    assert sorted(folder.rglob("part-*.parquet")) == files
    assert rows(db, ENVOY_ALL) == before[len(old) :]


def test_files_from_before_parse_error_existed_still_verify(db, data_dir):
    # Archive, then make the files look like those written before raw tables had a
    # parse_error column; restore a day, flag one of its answers (as a re-parse would), archive
    # again: the month's older files are checked against the rows without tripping over it.
    archive_raw(db, data_dir, 0, TZ, now=NOW)
    folder = data_dir / "archive" / "raw" / "envoy_responses"
    con = duckdb.connect()
    try:
        for path in folder.rglob("part-*.parquet"):
            con.execute(
                "COPY (SELECT * EXCLUDE (parse_error) FROM "
                f"read_parquet('{path}', hive_partitioning = false)) "
                f"TO '{path}.old' (FORMAT parquet)"
            )
            Path(f"{path}.old").replace(path)
    finally:
        con.close()
    restore_raw(db, data_dir, date(2025, 5, 31), date(2025, 5, 31), TZ)
    execute(
        db,
        "UPDATE raw.envoy_responses SET parse_error = 'flagged by a re-parse' "
        f"WHERE id = (SELECT min(id) FROM raw.envoy_responses WHERE fetched_at < {CUTOFF_SQL})",
    )
    summary = archive_raw(db, data_dir, 0, TZ, now=NOW)
    assert summary.rows["raw.envoy_responses"] > 0
    assert rows(
        db, f"SELECT count(*) FROM raw.envoy_responses WHERE fetched_at < {CUTOFF_SQL}"
    ) == [(0,)]


def test_unparsed_rows_are_never_archived(db, data_dir):
    # An old answer the parser has not reached (above its watermark) stays in DuckDB.
    execute(
        db,
        """
        INSERT INTO raw.envoy_responses (fetched_at, envoy_serial, endpoint, http_status, body,
                                         poll_id)
        VALUES (TIMESTAMPTZ '2025-05-01 12:00:00+00', 'x', '/production.json', 200, '{}', 'late')
        """,
    )
    archive_raw(db, data_dir, 0, TZ, now=NOW)
    assert rows(db, "SELECT poll_id FROM raw.envoy_responses WHERE fetched_at < " + CUTOFF_SQL) == [
        ("late",)
    ]


def test_a_failing_write_deletes_nothing(db, data_dir):
    before = rows(db, ENVOY_ALL)
    # A file where the archive folder should be: the COPY cannot write (this works as root
    # too, unlike a read-only folder).
    (data_dir / "archive").write_text("not a folder")
    with pytest.raises((OSError, duckdb.Error)):
        archive_raw(db, data_dir, 0, TZ, now=NOW)
    assert rows(db, ENVOY_ALL) == before


def test_cloud_rows_restore_by_covered_day_for_a_partition_rerun(
    sim, seeded, tmp_path, monkeypatch
):
    data = tmp_path / "cloud"
    monkeypatch.setenv("SOLAR_DATA_DIR", str(data))
    warehouse = DuckDBWarehouse(path=str(data / "solar.duckdb"))
    enphase = make_enphase(sim, data)
    assert run_range(enphase, warehouse, "2025-06-10", "2025-06-10").success
    raw = rows(Path(warehouse.path), "SELECT * FROM raw.enphase_responses ORDER BY id")
    intervals = rows(
        Path(warehouse.path), "SELECT * FROM enphase.production_intervals ORDER BY ALL"
    )
    assert raw and intervals

    # Fetched "long ago" (the simulator answers with today's clock), archived by the CLI.
    execute(
        Path(warehouse.path),
        "UPDATE raw.enphase_responses SET fetched_at = fetched_at - INTERVAL 400 DAY",
    )
    aged = rows(Path(warehouse.path), "SELECT * FROM raw.enphase_responses ORDER BY id")
    archived = CliRunner().invoke(main, ["raw-archive", "--older-than-days", "300"])
    assert archived.exit_code == 0, archived.output
    assert f"raw.enphase_responses: {len(raw)} rows" in archived.output
    assert rows(Path(warehouse.path), "SELECT count(*) FROM raw.enphase_responses") == [(0,)]
    folder = data / "archive" / "raw" / "enphase_responses"
    assert _parquet_rows(folder) == aged

    # The answers covering 10 June come back although they were fetched on another day.
    restored = CliRunner().invoke(
        main, ["raw-restore", "--from", "2025-06-10", "--to", "2025-06-10"]
    )
    assert restored.exit_code == 0, restored.output
    covering = [r for r in aged if r[11] is not None]  # covers_start: not `devices`
    assert 0 < len(covering) < len(aged)
    assert f"raw.enphase_responses: {len(covering)} restored" in restored.output
    assert rows(Path(warehouse.path), "SELECT * FROM raw.enphase_responses ORDER BY id") == covering

    # Re-materializing the day's typed tables (no fetch) reads them.
    execute(Path(warehouse.path), "DELETE FROM enphase.production_intervals")
    parse_only = [k for k in TELEMETRY if k.path[0] != "raw"]
    assert run_range(enphase, warehouse, "2025-06-10", "2025-06-10", selection=parse_only).success
    assert (
        rows(Path(warehouse.path), "SELECT * FROM enphase.production_intervals ORDER BY ALL")
        == intervals
    )


def test_retention_setting_and_the_asset(db, data_dir, monkeypatch):
    assert retention_days_from_env() == 90
    monkeypatch.setenv("SOLAR_RAW_RETENTION_DAYS", "ninety")
    with pytest.raises(InvalidSettingError, match="SOLAR_RAW_RETENTION_DAYS='ninety'"):
        retention_days_from_env()
    result = CliRunner().invoke(main, ["raw-archive"])
    assert result.exit_code != 0 and "SOLAR_RAW_RETENTION_DAYS" in result.output

    # The asset: everything the history holds is more than 90 days old by now.
    monkeypatch.setenv("SOLAR_RAW_RETENTION_DAYS", "90")
    total = rows(db, "SELECT count(*) FROM raw.envoy_responses")[0][0]
    outcome = dg.materialize(
        [maintenance.raw_archive], resources={"warehouse": DuckDBWarehouse(path=str(db))}
    )
    assert outcome.success
    meta = outcome.asset_materializations_for_node("raw__archive")[0].metadata
    assert meta["rows_archived"].value == total
    assert meta["rows_by_table"].value == {
        "raw.enphase_responses": 0,
        "raw.envoy_responses": total,
    }
    assert rows(db, "SELECT count(*) FROM raw.envoy_responses") == [(0,)]
