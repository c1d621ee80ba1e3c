"""A warehouse built once by the real pipeline (the Envoy simulator polled on a fake clock over
a month boundary, then the energy assets), copied into every test's own data directory."""

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline_tests.energy.helpers import envoy_history, run_energy

# The live gateway simulator of the Envoy tests, for the backup test's real poll.
from solar_pipeline_tests.envoy.conftest import live_envoy  # noqa: F401

FIRST, LAST = date(2025, 5, 30), date(2025, 6, 2)


@pytest.fixture(scope="session")
def built_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("history")
    warehouse = DuckDBWarehouse(path=str(folder / "solar.duckdb"))
    # Two-hourly polls from 30 May to 2 June (local): raw, envoy.* and energy.* rows on both
    # sides of the May/June boundary.
    envoy_history(warehouse, folder, FIRST, LAST, step_s=7200)
    assert run_energy(warehouse, FIRST.isoformat(), LAST.isoformat()).success
    return folder / "solar.duckdb"


@pytest.fixture
def data_dir(built_history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SOLAR_DATA_DIR with its own copy of the built database."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(built_history, data / "solar.duckdb")
    monkeypatch.setenv("SOLAR_DATA_DIR", str(data))
    monkeypatch.delenv("SOLAR_RAW_RETENTION_DAYS", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return data


@pytest.fixture
def db(data_dir: Path) -> Iterator[Path]:
    yield data_dir / "solar.duckdb"


def rows(db_path: Path, sql: str, params: list | None = None) -> list[tuple]:
    """A short read-only query, closed at once (a test holding DuckDB would block the code
    under test)."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def execute(db_path: Path, sql: str, params: list | None = None) -> None:
    con = duckdb.connect(str(db_path))
    try:
        con.execute(sql, params or [])
    finally:
        con.close()
