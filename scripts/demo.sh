#!/usr/bin/env bash
# make demo: the pipeline on the built-in simulators (the Enphase home system and its gateway,
# plus a SolarEdge, a Fronius and a GoodWe site in three other time zones), with the Dagster UI
# and schedules running.
# Ctrl-C stops the UI, the daemon and the simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

export SOLAR_DATA_DIR="${SOLAR_DATA_DIR:-$PWD/data/demo}"
export SOLAR_TIMEZONE="${SOLAR_TIMEZONE:-Europe/Amsterdam}"
export SOLAR_SCHEDULES=running
export DAGSTER_HOME="$SOLAR_DATA_DIR/dagster_home"
SIM_PORT="${SIM_PORT:-8787}"
ENVOY_PORT="${ENVOY_PORT:-8788}"
# The demo polls the simulated gateway every 30 s, four polls per run: a run every 2 minutes.
export ENVOY_POLL_INTERVAL_S="${ENVOY_POLL_INTERVAL_S:-30}" ENVOY_POLLS_PER_RUN="${ENVOY_POLLS_PER_RUN:-4}"
UI_PORT="${UI_PORT:-3000}"
# The data directory is private (0700) when it is created here; the pipeline never changes
# the mode of one that exists.
mkdir -p -m 700 "$SOLAR_DATA_DIR"
mkdir -p "$DAGSTER_HOME"
cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
# The simulators forget the tokens and certificate they issued when they stop, so a demo starts
# from fresh ones (the settings file below pins the new certificate explicitly).
rm -f "$SOLAR_DATA_DIR/enphase_tokens.json" "$SOLAR_DATA_DIR/envoy_token.json" \
  "$SOLAR_DATA_DIR/envoy_cert_pin.json" "$SOLAR_DATA_DIR/simulator.env"

"$BIN/solar-pipeline" simulate --port "$SIM_PORT" --envoy-port "$ENVOY_PORT" --plan kilowatt \
  --env-file "$SOLAR_DATA_DIR/simulator.env" --fleet-sites "$SOLAR_DATA_DIR/sites.yaml" &
SIM_PID=$!
trap 'kill "$SIM_PID" 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 100); do
  [ -s "$SOLAR_DATA_DIR/simulator.env" ] && break
  kill -0 "$SIM_PID" 2>/dev/null || { echo "the simulator did not start" >&2; exit 1; }
  sleep 0.1
done
set -a
# shellcheck disable=SC1091
. "$SOLAR_DATA_DIR/simulator.env"
set +a

./scripts/demo_pipeline.sh

echo "Energy dashboard: $SOLAR_DATA_DIR/reports/energy_dashboard.html (open it in a browser)"
echo "Dagster UI: http://127.0.0.1:$UI_PORT  (schedules are running; Ctrl-C stops everything)"
"$BIN/dagster" dev -m solar_pipeline.definitions -h 127.0.0.1 -p "$UI_PORT"
