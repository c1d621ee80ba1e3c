"""The documented commands of the gateway path: one poll + parse, and the full re-parse."""

from click.testing import CliRunner

from solar_pipeline.cli import main
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline_tests.envoy.conftest import make_envoy, run_envoy
from solar_pipeline_tests.helpers import dagster_cli, query

ENVOY_SELECTION = (
    "raw/envoy_responses,envoy/production_readings,envoy/inverter_readings,envoy/meter_readings"
)


def test_documented_one_poll_command(live_envoy, tmp_path):
    proc = dagster_cli(
        "asset",
        "materialize",
        "-m",
        "solar_pipeline.definitions",
        "--select",
        ENVOY_SELECTION,
        SOLAR_DATA_DIR=str(tmp_path),
        ENVOY_URL=live_envoy.base_url,
        ENVOY_CERT_FINGERPRINT=live_envoy.cert_fingerprint,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    warehouse = DuckDBWarehouse(path=str(tmp_path / "solar.duckdb"))
    assert query(warehouse, "SELECT count(DISTINCT poll_id) FROM raw.envoy_responses") == [(1,)]
    assert query(warehouse, "SELECT count(*) > 0 FROM envoy.meter_readings") == [(True,)]


def test_reparse_rebuilds_the_readings_from_raw(live_envoy, tmp_path, monkeypatch):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "solar.duckdb"))
    tags = tmp_path / "tags.yaml"
    assert run_envoy(make_envoy(live_envoy, tmp_path), warehouse, polls=2).success
    before = query(warehouse, "SELECT * FROM envoy.production_readings ORDER BY ALL")
    serial = query(warehouse, "SELECT min(serial_number) FROM envoy.inverter_readings")[0][0]
    tags.write_text(f'"{serial}": {{array: south, row: 1, col: 2}}\n')
    # A parser fix is simulated by losing the typed rows; the raw table still has everything.
    with warehouse.connect() as conn:
        conn.execute("DELETE FROM envoy.production_readings")
    monkeypatch.setenv("SOLAR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ENVOY_INVERTER_TAGS", str(tags))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    result = CliRunner().invoke(main, ["envoy-reparse"])
    assert result.exit_code == 0, result.output
    assert "envoy/production_readings:" in result.output
    assert query(warehouse, "SELECT * FROM envoy.production_readings ORDER BY ALL") == before
    assert query(
        warehouse, "SELECT serial_number, tags::JSON->>'array' FROM envoy.inverter_tags"
    ) == [(serial, "south")]
