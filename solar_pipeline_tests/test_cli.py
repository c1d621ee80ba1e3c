"""The command line: first authorization, token status, and the documented Dagster backfill."""

import os
import stat

import pytest
from click.testing import CliRunner

from solar_pipeline.cli import main
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.sources.enphase.tokens import FileTokenStore
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.helpers import dagster_cli, query
from solar_pipeline_tests.unwritable import fill


@pytest.fixture
def cloud_env(sim, tmp_path, monkeypatch) -> dict[str, str]:
    env = {
        "SOLAR_DATA_DIR": str(tmp_path),
        "ENPHASE_API_URL": sim.base_url,
        "ENPHASE_API_KEY": sim.api_key,
        "ENPHASE_CLIENT_ID": sim.client_id,
        "ENPHASE_CLIENT_SECRET": sim.client_secret,
        "ENPHASE_SYSTEM_ID": str(SYSTEM.system_id),
        "ENPHASE_PLAN": "kilowatt",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def test_enphase_auth_prints_the_consent_url(cloud_env):
    result = CliRunner().invoke(main, ["enphase-auth"])
    assert result.exit_code == 0, result.output
    assert f"{cloud_env['ENPHASE_API_URL']}/oauth/authorize?response_type=code" in result.output
    assert "client_id=sim-client-id" in result.output
    assert "solar-pipeline enphase-auth --code CODE" in result.output


def test_enphase_auth_exchanges_the_code_and_stores_the_pair(sim, cloud_env, tmp_path):
    code = sim.issue_code()
    result = CliRunner().invoke(main, ["enphase-auth", "--code", code])
    assert result.exit_code == 0, result.output
    store = FileTokenStore(tmp_path / "enphase_tokens.json")
    pair = store.read()
    assert pair.origin == "code" and pair.refresh_token
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert pair.refresh_token not in result.output and pair.access_token not in result.output
    # Codes are single-use: a second exchange is refused with the re-authorize advice.
    again = CliRunner().invoke(main, ["enphase-auth", "--code", code])
    assert again.exit_code != 0 and "enphase-auth" in again.output

    status = CliRunner().invoke(main, ["token-status"])
    assert status.exit_code == 0 and "refresh_token_expires_in_days" in status.output
    assert pair.refresh_token not in status.output


def test_enphase_auth_names_a_missing_variable(cloud_env, monkeypatch):
    monkeypatch.delenv("ENPHASE_CLIENT_SECRET")
    result = CliRunner().invoke(main, ["enphase-auth"])
    assert result.exit_code != 0
    assert "ENPHASE_CLIENT_SECRET" in result.output


def test_documented_cli_backfill_works_as_is(sim, cloud_env, tmp_path):
    proc = dagster_cli(
        "asset",
        "materialize",
        "-m",
        "solar_pipeline.definitions",
        "--select",
        "raw/enphase_responses,enphase/production_intervals",
        "--partition-range",
        "2025-03-08...2025-03-10",
        **cloud_env,
        ENPHASE_REFRESH_TOKEN=sim.mint_refresh_token(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    warehouse = DuckDBWarehouse(path=str(tmp_path / "solar.duckdb"))
    rows = query(
        warehouse, "SELECT count(*) FROM enphase.production_intervals WHERE source = 'micro'"
    )
    assert rows == [(3 * 288,)]
    assert query(warehouse, "SELECT count(DISTINCT run_id) FROM raw.enphase_responses") == [(1,)]


@pytest.mark.parametrize("command", ["report", "export", "backup"])
def test_an_unwritable_target_is_a_message_not_a_traceback(
    command, freezer, small_tmpfs, tmp_path, monkeypatch
):
    """`--to` a folder the user cannot write (a web root owned by someone else, a read-only
    mount) or one on a full disk: the command says which path and what to do."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    monkeypatch.setenv("SOLAR_DATA_DIR", str(data))
    with DuckDBWarehouse(path=str(data / "solar.duckdb")).connect():
        pass  # an empty but valid database
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    freezer.freeze(frozen)
    fill(small_tmpfs)
    for target in (frozen / "out", small_tmpfs / "out"):
        result = CliRunner().invoke(main, [command, "--to", str(target)])
        assert result.exit_code == 1, (target, result.output, result.exception)
        assert "Traceback" not in result.output
        assert "write" in result.output.lower(), result.output
        # The path, or for a full disk (a write of data names no file) what is full.
        assert str(target.parent) in result.output or "disk is full" in result.output
