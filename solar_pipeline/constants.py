"""Names shared across modules: pools, groups, asset keys."""

import dagster as dg

# Every step that opens DuckDB for writing takes a slot in this pool; dagster.yaml limits it
# to 1 because DuckDB allows a single writer process per database file.
DUCKDB_POOL = "duckdb"

ENPHASE_GROUP = "enphase_cloud"
ENVOY_GROUP = "envoy_local"
ENERGY_GROUP = "energy"
MAINTENANCE_GROUP = "maintenance"
REPORTS_GROUP = "reports"

RAW_ENPHASE_RESPONSES = dg.AssetKey(["raw", "enphase_responses"])
ENPHASE_SYSTEM_SUMMARY = dg.AssetKey(["enphase", "system_summary"])
ENPHASE_EVENTS = dg.AssetKey(["enphase", "events"])
ENPHASE_ALARMS = dg.AssetKey(["enphase", "alarms"])
ENPHASE_PRODUCTION_INTERVALS = dg.AssetKey(["enphase", "production_intervals"])
ENPHASE_CONSUMPTION_INTERVALS = dg.AssetKey(["enphase", "consumption_intervals"])
ENPHASE_DAILY_ENERGY = dg.AssetKey(["enphase", "daily_energy"])

RAW_ENVOY_RESPONSES = dg.AssetKey(["raw", "envoy_responses"])
ENVOY_PRODUCTION_READINGS = dg.AssetKey(["envoy", "production_readings"])
ENVOY_INVERTER_READINGS = dg.AssetKey(["envoy", "inverter_readings"])
ENVOY_METER_READINGS = dg.AssetKey(["envoy", "meter_readings"])

ENERGY_INTERVALS = dg.AssetKey(["energy", "intervals"])
ENERGY_DAILY = dg.AssetKey(["energy", "daily_energy"])
ENERGY_DAILY_INVERTER = dg.AssetKey(["energy", "daily_inverter_energy"])
ENERGY_MONTHLY = dg.AssetKey(["energy", "monthly_energy"])

EXPORTS_PARQUET = dg.AssetKey(["exports", "parquet"])
RAW_ARCHIVE = dg.AssetKey(["raw", "archive"])

REPORTS_DASHBOARD = dg.AssetKey(["reports", "energy_dashboard"])
