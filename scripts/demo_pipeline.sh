#!/usr/bin/env bash
# The demo's pipeline runs, without the UI: a one-run backfill of the cloud assets for the last
# 7 days and today, one Envoy poll, the fleet sites of SOLAR_SITES (if set) for the same days,
# the energy tables, and the energy dashboard page. Needs the settings
# of a running simulator (or a real system) in the environment; scripts/demo.sh provides them,
# and the secrets test runs this same script with recognisable secret values.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
: "${SOLAR_TIMEZONE:?set SOLAR_TIMEZONE (e.g. Europe/Amsterdam)}"

TODAY=$(TZ="$SOLAR_TIMEZONE" date +%F)
FIRST=$(TZ="$SOLAR_TIMEZONE" date -d "$TODAY -${DEMO_DAYS:-7} days" +%F)
echo "Backfilling the Enphase cloud assets for $FIRST...$TODAY in one run"
"$BIN/dagster" asset materialize -m solar_pipeline.definitions \
  --select "raw/enphase_responses,enphase/system_summary,enphase/events,enphase/alarms,enphase/production_intervals,enphase/consumption_intervals,enphase/daily_energy" \
  --partition-range "$FIRST...$TODAY"

echo "Polling the simulated Envoy once and parsing what it answered"
"$BIN/dagster" asset materialize -m solar_pipeline.definitions \
  --select "raw/envoy_responses,envoy/production_readings,envoy/inverter_readings,envoy/meter_readings"

if [ -n "${SOLAR_SITES:-}" ]; then
  # Each vendor's assets are a group named after it; every site gets its own local days.
  GROUPS_SELECTION=$("$BIN/python" -c 'from solar_pipeline.sites import FLEET_VENDORS as v; print(" or ".join(f"group:{x}" for x in v))')
  echo "Fetching the fleet sites of $SOLAR_SITES for $FIRST...$TODAY in one run"
  "$BIN/dagster" asset materialize -m solar_pipeline.definitions \
    --select "$GROUPS_SELECTION" --partition-range "$FIRST...$TODAY"
fi

echo "Building the energy tables for $FIRST...$TODAY"
"$BIN/dagster" asset materialize -m solar_pipeline.definitions \
  --select "energy/intervals,energy/daily_energy,energy/daily_inverter_energy,energy/monthly_energy" \
  --partition-range "$FIRST...$TODAY"

echo "Writing the energy dashboard"
"$BIN/dagster" asset materialize -m solar_pipeline.definitions --select "reports/energy_dashboard"
