"""The code location: assets, automation and resources, gathered (nothing else lives here)."""

from __future__ import annotations

import dagster as dg

from solar_pipeline import automation, sensors
from solar_pipeline.assets import energy, maintenance, reports
from solar_pipeline.assets.registry import VENDOR_ASSETS
from solar_pipeline.resources import DuckDBWarehouse, EnphaseCloudResource, EnvoyResource
from solar_pipeline.run_heartbeat import with_heartbeat
from solar_pipeline.settings import EnvoySettings, Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": DuckDBWarehouse(path=str(settings.duckdb_path)),
        "enphase": EnphaseCloudResource(
            api_url=settings.enphase_api_url,
            # Secrets resolve at run time; the UI shows only the variable names.
            api_key=dg.EnvVar("ENPHASE_API_KEY"),
            client_id=dg.EnvVar("ENPHASE_CLIENT_ID"),
            client_secret=dg.EnvVar("ENPHASE_CLIENT_SECRET"),
            system_id=dg.EnvVar("ENPHASE_SYSTEM_ID"),
            token_store=settings.enphase_token_store,
            plan=automation.ENPHASE_PLAN.name,
        ),
        "envoy": build_envoy_resource(settings, EnvoySettings.from_env()),
    }


def build_envoy_resource(settings: Settings, envoy: EnvoySettings) -> EnvoyResource:
    return EnvoyResource(
        url=envoy.url,
        serial=envoy.serial,
        state_dir=str(settings.data_dir),
        enlighten_url=envoy.enlighten_url,
        entrez_url=envoy.entrez_url,
        cert_fingerprint=envoy.cert_fingerprint,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[*VENDOR_ASSETS, *energy.assets, *maintenance.assets, reports.energy_dashboard],
        jobs=[*automation.jobs, sensors.gap_fill_job],
        schedules=automation.schedules,
        sensors=[sensors.energy_gap_fill, automation.reports_automation],
        resources=build_resources(Settings.from_env()),
        # DuckDB takes one writer at a time, so steps would queue on the pool anyway; running
        # them in the run's own process saves a Python start-up per step. The heartbeat lets
        # run monitoring tell a killed run from a live one (solar_pipeline/run_launcher.py).
        executor=with_heartbeat(dg.in_process_executor),
    )
