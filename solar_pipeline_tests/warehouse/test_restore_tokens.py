"""Restoring a backup never puts a spent refresh token over a newer live one unless asked: the
token files are compared by age, the newer pair is kept, and the output says which was kept.
`--tokens-only` restores just the token files (the command a damaged token file names)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from solar_pipeline.cli import main
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.sources.enphase.oauth import OAuthClient
from solar_pipeline.sources.enphase.tokens import FileTokenStore, TokenManager, TokenPair
from solar_pipeline.sources.http import build_session
from solar_pipeline_tests.conftest import make_enphase
from solar_pipeline_tests.helpers import run_range
from solar_pipeline_tests.warehouse.conftest import rows

HOUR = 3600


@pytest.fixture
def pipeline_dir(sim, seeded, tmp_path, monkeypatch) -> Path:
    """A data directory after one cloud run (its token pair is real and live)."""
    monkeypatch.delenv("ENPHASE_TOKEN_STORE", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("SMA_TOKEN_STORE", raising=False)
    data = tmp_path / "a"
    warehouse = DuckDBWarehouse(path=str(data / "solar.duckdb"))
    assert run_range(make_enphase(sim, data), warehouse, "2025-06-10", "2025-06-10").success
    return data


def _cli(monkeypatch: pytest.MonkeyPatch, data_dir: Path, *args: str):
    monkeypatch.setenv("SOLAR_DATA_DIR", str(data_dir))
    return CliRunner().invoke(main, list(args))


def _manager(sim, store_path: Path) -> TokenManager:
    oauth = OAuthClient(sim.base_url, sim.client_id, sim.client_secret, build_session(0.01))
    return TokenManager(FileTokenStore(store_path), oauth)


def _older(store: FileTokenStore, seconds: int) -> TokenPair:
    """The stored pair as if it had been obtained `seconds` earlier (same tokens)."""
    pair = store.read()
    assert pair is not None
    older = dataclasses.replace(pair, obtained_at=pair.obtained_at - seconds)
    store.write(older)
    return older


def _backup(monkeypatch, data: Path, to: Path) -> Path:
    made = _cli(monkeypatch, data, "backup", "--to", str(to))
    assert made.exit_code == 0, made.output
    (folder,) = to.iterdir()
    return folder


def _refresh_works(sim, store_path: Path) -> None:
    rejected = sim.stats.rejected_refreshes
    manager = _manager(sim, store_path)
    current = manager.current()
    assert current is not None
    manager.refresh_after_401(current.access_token)
    assert sim.stats.rejected_refreshes == rejected


def test_restore_force_keeps_the_newer_live_token_pair(sim, pipeline_dir, tmp_path, monkeypatch):
    store = FileTokenStore(pipeline_dir / "enphase_tokens.json")
    _older(store, 6 * HOUR)  # the backup is made six hours after the last refresh ...
    sma = FileTokenStore(pipeline_dir / "sma_tokens.json")
    sma.write(dataclasses.replace(store.read(), obtained_at=store.read().obtained_at - HOUR))
    folder = _backup(monkeypatch, pipeline_dir, tmp_path / "backups")

    # ... and the pipeline refreshes after it: the backup's refresh token is spent now.
    _manager(sim, store.path).refresh_after_401(store.read().access_token)
    live = store.read()
    sma_live = dataclasses.replace(live, origin="code")
    sma.write(sma_live)

    forced = _cli(monkeypatch, pipeline_dir, "restore", "--from", str(folder), "--force")
    assert forced.exit_code == 0, forced.output
    assert store.read() == live and sma.read() == sma_live
    assert f"Kept the current Enphase token pair in {store.path}" in forced.output
    assert f"Kept the current SMA token pair in {sma.path}" in forced.output
    assert "--overwrite-tokens" in forced.output
    assert live.refresh_token not in forced.output
    _refresh_works(sim, store.path)


def test_overwrite_tokens_restores_the_backup_pair_and_says_it_may_be_spent(
    sim, pipeline_dir, tmp_path, monkeypatch
):
    store = FileTokenStore(pipeline_dir / "enphase_tokens.json")
    backed = _older(store, 6 * HOUR)
    folder = _backup(monkeypatch, pipeline_dir, tmp_path / "backups")
    _manager(sim, store.path).refresh_after_401(store.read().access_token)

    forced = _cli(
        monkeypatch,
        pipeline_dir,
        "restore",
        "--from",
        str(folder),
        "--force",
        "--overwrite-tokens",
    )
    assert forced.exit_code == 0, forced.output
    assert store.read() == backed
    assert "Replaced the newer Enphase token pair" in forced.output
    assert "solar-pipeline enphase-auth" in forced.output


def test_a_backup_pair_newer_than_the_current_one_is_restored(
    sim, pipeline_dir, tmp_path, monkeypatch
):
    store = FileTokenStore(pipeline_dir / "enphase_tokens.json")
    backed = store.read()
    folder = _backup(monkeypatch, pipeline_dir, tmp_path / "backups")
    stale = _older(store, 30 * HOUR)  # e.g. a data directory copied from an older machine
    assert stale.refresh_token == backed.refresh_token

    forced = _cli(monkeypatch, pipeline_dir, "restore", "--from", str(folder), "--force")
    assert forced.exit_code == 0, forced.output
    assert store.read() == backed
    assert "Restored the Enphase token pair" in forced.output


def test_tokens_only_restores_a_damaged_token_file_and_leaves_the_database(
    sim, pipeline_dir, tmp_path, monkeypatch
):
    store = FileTokenStore(pipeline_dir / "enphase_tokens.json")
    backed = store.read()
    folder = _backup(monkeypatch, pipeline_dir, tmp_path / "backups")
    db = pipeline_dir / "solar.duckdb"
    count = rows(db, "SELECT count(*) FROM raw.enphase_responses")
    database = hashlib.sha256(db.read_bytes()).hexdigest()
    store.path.write_text('{"access_token": "')

    # The command the damaged file's message names, with the backup folder filled in.
    status = _cli(monkeypatch, pipeline_dir, "token-status")
    assert status.exit_code == 1
    named = "solar-pipeline restore --from BACKUP_FOLDER --tokens-only"
    assert named in status.output
    args = named.replace("BACKUP_FOLDER", str(folder)).split()[1:]
    done = _cli(monkeypatch, pipeline_dir, *args)
    assert done.exit_code == 0, done.output
    assert store.read() == backed
    assert f"Replaced the damaged Enphase token pair {store.path}" in done.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == database
    assert rows(db, "SELECT count(*) FROM raw.enphase_responses") == count
    assert json.loads(store.path.read_text())["refresh_token"] == backed.refresh_token
    _refresh_works(sim, store.path)


def test_backup_takes_a_newer_pair_kept_beside_the_token_file(
    sim, pipeline_dir, tmp_path, monkeypatch
):
    store = FileTokenStore(pipeline_dir / "enphase_tokens.json")
    _older(store, HOUR)
    # A refresh whose rename failed left its pair in the reserved temporary file.
    newer = dataclasses.replace(store.read(), refresh_token="kept-refresh", obtained_at=10**10)
    kept = pipeline_dir / ".enphase_tokens.json-kept0001"
    kept.write_text(newer.to_json())
    kept.chmod(0o600)
    folder = _backup(monkeypatch, pipeline_dir, tmp_path / "backups")
    assert TokenPair.from_json((folder / "enphase_tokens.json").read_text()) == newer
