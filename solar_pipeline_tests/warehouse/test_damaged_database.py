"""A damaged DuckDB file (cut short by a full disk or an interrupted copy, overwritten, with a
flipped block) is named, with what to do about it, by every command and asset that opens it:
no bare DuckDB traceback. The advice is then followed to the letter and must work."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from solar_pipeline.assets import envoy
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.warehouse import connect
from solar_pipeline_tests.operations.conftest import cli_env

CLI = str(Path(sys.executable).parent / "solar-pipeline")


def _cut_short(db: Path) -> None:
    """A copy or a write that stopped part way: the file ends inside the table data."""
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size * 6 // 10)


def _header_only(db: Path) -> None:
    with db.open("r+b") as f:
        f.truncate(3000)


def _not_a_database(db: Path) -> None:
    db.write_bytes(os.urandom(64 * 1024))


def _flipped_blocks(db: Path) -> None:
    """Bits rot in the table data (the file's first half; its catalog, at the end, is intact
    so it opens): the blocks' checksums no longer match when a query reads them."""
    with db.open("r+b") as f:
        size = db.stat().st_size
        for at in range(size // 20, size // 2, 64 * 1024):
            f.seek(at)
            f.write(b"\xff" * 64)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "cut short": _cut_short,
    "header only": _header_only,
    "not a database": _not_a_database,
    "flipped blocks": _flipped_blocks,
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose database's largest table is the one the dashboard reads."""
    data = tmp_path / "data"
    with connect(data / "solar.duckdb") as conn:
        conn.execute(
            """
            INSERT INTO energy.daily_energy (site_id, day, produced_wh, consumed_wh, status)
            SELECT 'site-' || (i % 50), DATE '2000-01-01' + (i // 50)::INTEGER,
                   random() * 40000, random() * 30000, 'complete'
            FROM range(300000) t(i)
            """
        )
    return data


def _run(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = cli_env(SOLAR_DATA_DIR=str(data), SOLAR_TIMEZONE="Europe/Amsterdam")
    env.pop("SOLAR_SITES", None)
    return subprocess.run(
        [CLI, *args], cwd=data.parent, env=env, capture_output=True, text=True, timeout=300
    )


def _assert_names_file_and_restore(result: subprocess.CompletedProcess, db: Path) -> None:
    err = result.stderr
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in err, err[-3000:]
    assert str(db) in err, err
    assert "damaged" in err
    assert f"mv {db} {db}.damaged" in err
    assert re.search(r"solar-pipeline restore --from \S+ --force", err), err


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
@pytest.mark.parametrize("command", [("report",), ("backup", "--to", "{backups}")])
def test_report_and_backup_name_the_damaged_file_and_the_restore(
    data_dir, tmp_path, damage, command
):
    db = data_dir / "solar.duckdb"
    damage(db)
    args = [a.format(backups=tmp_path / "backups") for a in command]
    _assert_names_file_and_restore(_run(data_dir, *args), db)
    # A failed backup leaves no half-made folder behind.
    assert not any((tmp_path / "backups").glob("*"))


@pytest.mark.parametrize(
    "command",
    [("export",), ("raw-archive", "--older-than-days", "0"), ("envoy-reparse",)],
)
def test_the_other_commands_name_the_damaged_file_too(data_dir, command):
    db = data_dir / "solar.duckdb"
    _not_a_database(db)
    _assert_names_file_and_restore(_run(data_dir, *command), db)


def test_an_asset_run_fails_with_the_file_and_the_restore(data_dir):
    db = data_dir / "solar.duckdb"
    _cut_short(db)
    result = dg.materialize(
        [envoy.envoy_readings],
        resources={"warehouse": DuckDBWarehouse(path=str(db))},
        run_config={"ops": {"envoy_readings": {"config": {"full_reparse": True}}}},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = result.get_step_failure_events()
    # The step's error and its causes, as the UI and the event log show them.
    message, error = "", failure.event_specific_data.error
    while error is not None:
        message, error = message + error.message, error.cause
    assert str(db) in message and "solar-pipeline restore --from" in message, message


def test_the_advice_works(data_dir, tmp_path):
    """Back up, damage, then do exactly what the message says: the dashboard works again."""
    made = _run(data_dir, "backup", "--to", str(tmp_path / "backups"))
    assert made.returncode == 0, made.stderr
    (backup,) = (tmp_path / "backups").iterdir()
    db = data_dir / "solar.duckdb"
    _cut_short(db)
    failed = _run(data_dir, "report")
    _assert_names_file_and_restore(failed, db)
    os.rename(db, f"{db}.damaged")  # the message's `mv`
    restore = re.search(r"solar-pipeline restore --from (\S+) --force", failed.stderr)
    assert restore
    restored = _run(data_dir, "restore", "--from", str(backup), "--force")
    assert restored.returncode == 0, restored.stderr
    again = _run(data_dir, "report")
    assert again.returncode == 0, again.stderr
    assert "site-49" in again.stdout


def test_the_gap_fill_sensor_says_the_database_is_damaged(data_dir, monkeypatch):
    """The sensor skips quietly while a writer holds the file, but a damaged file is not
    "busy": its skip reason (shown in the UI's sensor ticks) names it and the restore."""
    from solar_pipeline.sensors import energy_gap_fill

    db = data_dir / "solar.duckdb"
    _not_a_database(db)
    monkeypatch.setenv("SOLAR_DUCKDB_PATH", str(db))
    monkeypatch.setenv("ENPHASE_API_KEY", "not-used-the-database-is-read-first")
    with dg.instance_for_test() as instance:
        skip = energy_gap_fill(dg.build_sensor_context(instance=instance))
    assert isinstance(skip, dg.SkipReason)
    assert str(db) in skip.skip_message and "solar-pipeline restore" in skip.skip_message


def test_a_damaged_write_ahead_log_is_named_and_moving_it_aside_works(data_dir):
    """A process killed between a write and the next checkpoint leaves a WAL; if that log is
    then damaged, the message names the log, and moving it aside opens the database."""
    db = data_dir / "solar.duckdb"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb, os, sys\n"
            "con = duckdb.connect(sys.argv[1])\n"
            "con.execute(\"SET checkpoint_threshold = '1GB'\")\n"
            'con.execute("INSERT INTO energy.daily_energy (site_id, day, status) '
            "SELECT 'late', DATE '2030-01-01' + i::INTEGER, 'complete' FROM range(500) t(i)\")\n"
            "os._exit(0)  # no checkpoint, no close: the rows are only in the WAL\n",
            str(db),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == 0, killed.stderr
    wal = Path(f"{db}.wal")
    with wal.open("r+b") as f:
        f.seek(200)
        f.write(b"\xff" * 100)
    failed = _run(data_dir, "report")
    assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr[-3000:]
    assert f"mv {wal} {wal}.damaged" in failed.stderr, failed.stderr
    os.rename(wal, f"{wal}.damaged")
    again = _run(data_dir, "report")
    assert again.returncode == 0, again.stderr
