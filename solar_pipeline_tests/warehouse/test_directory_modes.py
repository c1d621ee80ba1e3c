"""The project tightens only what it creates: a directory that already exists (a web root, a
home directory, a shared export folder) keeps its mode, whichever command writes into it."""

import logging
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from solar_pipeline.cli import main
from solar_pipeline.sources.enphase.tokens import FileTokenStore, TokenPair
from solar_pipeline.sources.files import private_dir, write_private_file
from solar_pipeline.warehouse import connect
from solar_pipeline_tests.warehouse.conftest import rows


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _shared_dir(path: Path, mode: int = 0o755) -> Path:
    path.mkdir(parents=True)
    path.chmod(mode)
    return path


def test_private_dir_creates_0700_and_leaves_an_existing_directory_alone(tmp_path):
    made = private_dir(tmp_path / "new" / "state")
    assert _mode(made) == 0o700
    shared = _shared_dir(tmp_path / "home", 0o751)
    private_dir(shared)
    assert _mode(shared) == 0o751
    write_private_file(shared / "secret.json", "{}")
    assert _mode(shared) == 0o751 and _mode(shared / "secret.json") == 0o600


def test_a_token_file_beside_other_files_keeps_their_directory_open(tmp_path):
    # ENPHASE_TOKEN_FILE=~/enphase_tokens.json must not lock the owner's web server out of ~.
    home = _shared_dir(tmp_path / "home")
    store = FileTokenStore(home / "enphase_tokens.json")
    with store.lock():
        store.write(TokenPair("access", "refresh", 0, 0, 0, "seed"))
    assert _mode(home) == 0o755 and _mode(store.path) == 0o600


def test_duckdb_in_an_open_directory_keeps_it_and_is_itself_private(tmp_path, caplog):
    srv = _shared_dir(tmp_path / "srv")
    with caplog.at_level(logging.WARNING):
        for name in ("solar.duckdb", "solar.duckdb", "other.duckdb"):
            with connect(srv / name) as conn:
                conn.execute("SELECT 1")
    assert _mode(srv) == 0o755
    # The file the project creates is private; the directory also holds DuckDB's write-ahead
    # log, so the owner is told (once) that others can read it.
    assert _mode(srv / "solar.duckdb") == 0o600 and _mode(srv / "other.duckdb") == 0o600
    told = [r.getMessage() for r in caplog.records if str(srv) in r.getMessage()]
    assert len(told) == 1 and "chmod 700" in told[0], told


def test_export_into_an_existing_folder_keeps_its_mode(data_dir, tmp_path):
    out = _shared_dir(tmp_path / "share" / "solar")
    result = CliRunner().invoke(main, ["export", "--to", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file()
    assert _mode(out) == 0o755 and _mode(out.parent) == 0o755


def test_restore_into_an_existing_empty_directory_keeps_its_mode(
    data_dir, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    made = CliRunner().invoke(main, ["backup", "--to", str(tmp_path / "backups")])
    assert made.exit_code == 0, made.output
    (folder,) = (tmp_path / "backups").iterdir()
    target = _shared_dir(tmp_path / "srv" / "solar")
    monkeypatch.setenv("SOLAR_DATA_DIR", str(target))
    done = CliRunner().invoke(main, ["restore", "--from", str(folder)])
    assert done.exit_code == 0, done.output
    assert _mode(target) == 0o755
    assert all(_mode(p) == 0o600 for p in target.iterdir())
    assert rows(target / "solar.duckdb", "SELECT count(*) FROM energy.daily_energy")[0][0] > 0
