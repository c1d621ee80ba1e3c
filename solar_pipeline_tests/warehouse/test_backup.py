"""Backup and restore of a data directory the real pipeline wrote, then used again."""

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from solar_pipeline.cli import main
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.sources.enphase.tokens import FileTokenStore
from solar_pipeline_tests.conftest import make_enphase
from solar_pipeline_tests.envoy.conftest import make_envoy, run_envoy
from solar_pipeline_tests.helpers import run_range
from solar_pipeline_tests.warehouse.conftest import rows

DAY1, DAY2 = "2025-06-10", "2025-06-11"


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _cli(monkeypatch: pytest.MonkeyPatch, data_dir: Path, *args: str):
    monkeypatch.setenv("SOLAR_DATA_DIR", str(data_dir))
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def pipeline_dir(sim, seeded, live_envoy, tmp_path, monkeypatch) -> Path:
    """A data directory after one cloud run and one Envoy poll."""
    monkeypatch.delenv("ENPHASE_TOKEN_STORE", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    data = tmp_path / "a"
    warehouse = DuckDBWarehouse(path=str(data / "solar.duckdb"))
    assert run_range(make_enphase(sim, data), warehouse, DAY1, DAY1).success
    assert run_envoy(make_envoy(live_envoy, data), warehouse).success
    return data


def test_backup_restore_and_carry_on(sim, live_envoy, pipeline_dir, tmp_path, monkeypatch):
    source_db = pipeline_dir / "solar.duckdb"
    before = {
        t: rows(source_db, f"SELECT * FROM {t} ORDER BY ALL")
        for t in ["raw.enphase_responses", "raw.envoy_responses", "enphase.production_intervals"]
    }
    pair = FileTokenStore(pipeline_dir / "enphase_tokens.json").read()
    # An SMA app's token store in its default place is state too.
    FileTokenStore(pipeline_dir / "sma_tokens.json").write(pair)

    made = _cli(monkeypatch, pipeline_dir, "backup", "--to", str(tmp_path / "backups"))
    assert made.exit_code == 0, made.output
    assert pair.refresh_token not in made.output and pair.access_token not in made.output
    (folder,) = (tmp_path / "backups").iterdir()
    assert folder.name.startswith("solar-backup-") and _mode(folder) == 0o700
    manifest = json.loads((folder / "manifest.json").read_text())
    names = {f["name"] for f in manifest["files"]}
    assert {
        "solar.duckdb",
        "enphase_tokens.json",
        "envoy_cert_pin.json",
        "sma_tokens.json",
    } <= names
    for entry in manifest["files"]:
        path = folder / entry["name"]
        assert _mode(path) == 0o600
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert path.stat().st_size == entry["size"]
    assert manifest["tables"]["raw.enphase_responses"] == len(before["raw.enphase_responses"])
    assert manifest["created_at"]

    # Restore into a new data directory and run both sources from it.
    restored = tmp_path / "b"
    done = _cli(monkeypatch, restored, "restore", "--from", str(folder))
    assert done.exit_code == 0, done.output
    assert "solar-pipeline enphase-auth" in done.output
    assert _mode(restored) == 0o700
    assert all(_mode(p) == 0o600 for p in restored.iterdir())
    db = restored / "solar.duckdb"
    for table, old in before.items():
        assert rows(db, f"SELECT * FROM {table} ORDER BY ALL") == old

    # The access token is rejected: the run must refresh with the restored refresh token (the
    # seed in ENPHASE_REFRESH_TOKEN is spent, the strict simulator would refuse it).
    sim.expire_access_tokens()
    refreshes = sim.stats.token_refreshes
    warehouse = DuckDBWarehouse(path=str(db))
    assert run_range(make_enphase(sim, restored), warehouse, DAY2, DAY2).success
    assert sim.stats.token_refreshes == refreshes + 1 and sim.stats.rejected_refreshes == 0
    assert run_envoy(make_envoy(live_envoy, restored), warehouse).success

    # Old rows plus new ones, and raw ids continue where the backup left them.
    for table in ["raw.enphase_responses", "raw.envoy_responses"]:
        old = before[table]
        now = rows(db, f"SELECT * FROM {table} ORDER BY id")
        assert now[: len(old)] == old and len(now) > len(old)
        assert min(r[0] for r in now[len(old) :]) > max(r[0] for r in old)
    days = rows(
        db,
        "SELECT DISTINCT timezone('Europe/Amsterdam', end_at - INTERVAL 1 MINUTE)::DATE::VARCHAR "
        "FROM enphase.production_intervals ORDER BY 1",
    )
    assert days == [(DAY1,), (DAY2,)]

    # Not into a data directory in use, unless --force; then it replaces the files.
    refused = _cli(monkeypatch, restored, "restore", "--from", str(folder))
    assert refused.exit_code != 0 and "--force" in refused.output
    assert len(rows(db, "SELECT * FROM raw.enphase_responses")) > len(
        before["raw.enphase_responses"]
    )
    (restored / "solar.duckdb.wal").write_bytes(b"stale")
    forced = _cli(monkeypatch, restored, "restore", "--from", str(folder), "--force")
    assert forced.exit_code == 0, forced.output
    assert not (restored / "solar.duckdb.wal").exists()
    assert (
        rows(db, "SELECT * FROM raw.enphase_responses ORDER BY ALL")
        == before["raw.enphase_responses"]
    )


def test_a_damaged_backup_is_refused(pipeline_dir, tmp_path, monkeypatch):
    made = _cli(monkeypatch, pipeline_dir, "backup", "--to", str(tmp_path / "backups"))
    assert made.exit_code == 0, made.output
    (folder,) = (tmp_path / "backups").iterdir()
    damaged = tmp_path / "damaged"
    shutil.copytree(folder, damaged)
    tokens = damaged / "enphase_tokens.json"
    tokens.write_text(tokens.read_text().replace("refresh", "refresk", 1))

    target = tmp_path / "c"
    result = _cli(monkeypatch, target, "restore", "--from", str(damaged))
    assert result.exit_code != 0
    assert "enphase_tokens.json does not match its SHA-256" in result.output
    assert not target.exists()

    # A folder of backups is not guessed at: the message names the one to pass.
    result = _cli(monkeypatch, target, "restore", "--from", str(tmp_path / "backups"))
    assert result.exit_code != 0 and f"--from {folder}" in result.output


def test_kubernetes_token_store_is_named_not_copied(pipeline_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ENPHASE_TOKEN_STORE", "k8s:solar/enphase-tokens")
    made = _cli(monkeypatch, pipeline_dir, "backup", "--to", str(tmp_path / "backups"))
    assert made.exit_code == 0, made.output
    assert "kubectl -n solar get secret enphase-tokens -o yaml" in made.output
    (folder,) = (tmp_path / "backups").iterdir()
    assert not (folder / "enphase_tokens.json").exists()
    assert (folder / "solar.duckdb").is_file()
