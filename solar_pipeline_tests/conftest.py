"""Shared fixtures: a real simulator on loopback, a real DuckDB file, real token files.

Partitions are built from the environment when solar_pipeline is imported, so the site's time
zone is set here, before any test module imports the package. Europe/Amsterdam has DST, which
the 23- and 25-hour day tests need.
"""

import os
from typing import Any

os.environ["SOLAR_TIMEZONE"] = "Europe/Amsterdam"
os.environ["SOLAR_START_DATE"] = "2025-01-01"
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
for _name in list(os.environ):
    # Tests must never pick up a developer's real Enphase settings.
    if _name.startswith(("ENPHASE_", "SOLAR_DATA_DIR", "SOLAR_DUCKDB_PATH")):
        del os.environ[_name]

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from solar_pipeline.resources import DuckDBWarehouse, EnphaseCloudResource  # noqa: E402
from solar_pipeline.simulator import EnphaseCloudSimulator, SystemSpec  # noqa: E402

# Real unwritable paths (chattr +i, a full tmpfs) for any test that needs one.
from solar_pipeline_tests.unwritable import freezer, small_tmpfs  # noqa: E402, F401

SYSTEM = SystemSpec(system_id=4021157, timezone="Europe/Amsterdam")


@pytest.fixture
def sim() -> Iterator[EnphaseCloudSimulator]:
    # Kilowatt-sized quotas unless a test says otherwise.
    with EnphaseCloudSimulator([SYSTEM], per_minute=50, per_month=50_000) as s:
        yield s


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(path=str(tmp_path / "solar.duckdb"))


def make_enphase(sim: EnphaseCloudSimulator, tmp_path: Path, **overrides) -> EnphaseCloudResource:
    """The resource as definitions.py builds it, pointed at the simulator."""
    fields: dict[str, Any] = dict(
        api_url=sim.base_url,
        api_key=sim.api_key,
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        system_id=str(SYSTEM.system_id),
        token_store=f"file:{tmp_path / 'enphase_tokens.json'}",
        plan="kilowatt",
        retry_backoff_s=0.01,
        read_timeout_s=5.0,
    )
    fields.update(overrides)
    return EnphaseCloudResource(**fields)


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch, sim: EnphaseCloudSimulator) -> str:
    """ENPHASE_REFRESH_TOKEN set to a fresh simulator token, as a new user would set it."""
    token = sim.mint_refresh_token()
    monkeypatch.setenv("ENPHASE_REFRESH_TOKEN", token)
    return token


@pytest.fixture
def enphase(sim: EnphaseCloudSimulator, tmp_path: Path, seeded: str) -> EnphaseCloudResource:
    return make_enphase(sim, tmp_path)
