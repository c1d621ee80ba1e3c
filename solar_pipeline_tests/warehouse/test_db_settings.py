"""Connection settings and private-file housekeeping."""

import os
import time

import pytest

from solar_pipeline.settings import InvalidSettingError
from solar_pipeline.sources.files import STALE_TEMP_S, write_private_file
from solar_pipeline.warehouse.db import connect


def test_memory_limit_is_opt_in(tmp_path, monkeypatch):
    monkeypatch.delenv("SOLAR_DUCKDB_MEMORY_LIMIT", raising=False)
    with connect(tmp_path / "a.duckdb") as conn:
        default = conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    monkeypatch.setenv("SOLAR_DUCKDB_MEMORY_LIMIT", "256MB")
    for read_only in (False, True):
        with connect(tmp_path / "a.duckdb", read_only=read_only) as conn:
            limit = conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]
            assert limit.replace(" ", "") in ("256.0MiB", "244.1MiB"), limit
    assert default != limit


def test_a_bad_memory_limit_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("SOLAR_DUCKDB_MEMORY_LIMIT", "lots")
    with (
        pytest.raises(InvalidSettingError, match="SOLAR_DUCKDB_MEMORY_LIMIT='lots'"),
        connect(tmp_path / "b.duckdb"),
    ):
        pass


def test_temp_files_of_dead_writers_are_removed_but_not_a_live_writers(tmp_path):
    target = tmp_path / "enphase_tokens.json"
    dead = tmp_path / ".enphase_tokens.json-dead"
    live = tmp_path / ".enphase_tokens.json-live"
    for f in (dead, live):
        f.write_text("{}")
    old = time.time() - STALE_TEMP_S - 60
    os.utime(dead, (old, old))
    write_private_file(target, '{"ok": true}')
    assert target.read_text() == '{"ok": true}'
    assert not dead.exists() and live.exists()
