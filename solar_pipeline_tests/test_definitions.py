"""The code location loads, validates, and fails clearly when a setting is missing."""

import dagster as dg
import pytest

from solar_pipeline.assets import enphase
from solar_pipeline.definitions import build_resources, defs
from solar_pipeline.settings import InvalidSettingError, Settings
from solar_pipeline.sites import FLEET_VENDORS
from solar_pipeline_tests.helpers import dagster_cli

REGISTERED_FLEET = FLEET_VENDORS
CONTRACT = {
    "raw/enphase_responses",
    "enphase/system_summary",
    "enphase/events",
    "enphase/alarms",
    "enphase/production_intervals",
    "enphase/consumption_intervals",
    "enphase/daily_energy",
    "raw/envoy_responses",
    "envoy/production_readings",
    "envoy/inverter_readings",
    "envoy/meter_readings",
    "energy/intervals",
    "energy/daily_energy",
    "energy/daily_inverter_energy",
    "energy/monthly_energy",
    "exports/parquet",
    "raw/archive",
    "reports/energy_dashboard",
    *(f"raw/{vendor}_responses" for vendor in REGISTERED_FLEET),
    *(f"{vendor}/intervals" for vendor in REGISTERED_FLEET),
}


def test_definitions_load_with_the_contract_asset_keys():
    d = defs()
    dg.Definitions.validate_loadable(d)
    keys = {k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()}
    assert keys == CONTRACT
    assert {s.name for s in d.schedules} == {
        "enphase_cloud_tick",
        "enphase_daily_completion",
        "envoy_poll",
        "energy_refresh",
        "fleet_tick",
        "fleet_daily_completion",
        "parquet_export_nightly",
        "raw_archive_nightly",
        "run_retention_nightly",
    }
    assert {s.name for s in d.sensors} == {"energy_gap_fill", "reports_automation"}
    graph = d.resolve_asset_graph()
    fresh = {
        k.to_user_string()
        for k in graph.get_all_asset_keys()
        if graph.get(k).freshness_policy is not None
    }
    assert fresh == {"raw/envoy_responses", "enphase/system_summary"}
    for asset in enphase.assets:
        assert asset.op.pool == "duckdb"
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()
        assert all(spec.description for spec in asset.specs)  # docstrings become UI text


def test_dagster_cli_validates_the_module():
    proc = dagster_cli("definitions", "validate", "-m", "solar_pipeline.definitions")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Validation successful" in proc.stderr + proc.stdout


def test_missing_secret_fails_the_run_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("SOLAR_DATA_DIR", str(tmp_path))
    for name in ("ENPHASE_CLIENT_ID", "ENPHASE_CLIENT_SECRET", "ENPHASE_SYSTEM_ID"):
        monkeypatch.setenv(name, "x")
    monkeypatch.delenv("ENPHASE_API_KEY", raising=False)
    # Dagster resolves EnvVar fields when the run starts and names the variable it lacks.
    with pytest.raises(dg.DagsterInvalidConfigError, match='"ENPHASE_API_KEY" which is not set'):
        dg.materialize(
            enphase.assets,
            resources=build_resources(Settings.from_env()),
            partition_key="2025-06-10",
        )


@pytest.mark.parametrize(
    ("name", "value"), [("SOLAR_TIMEZONE", "Mars/Olympus"), ("SOLAR_START_DATE", "yesterday")]
)
def test_bad_settings_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSettingError, match=name):
        Settings.from_env()
