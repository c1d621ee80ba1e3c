"""Every captured firmware, replayed by the simulator over real HTTP(S) and ingested end to end.

The expected values come from reading the fixture files by hand (fixtures.py), not from the
parser, so this checks the whole path: probe, auth, polling, raw storage, source choice,
parsing and the typed tables.
"""

import pytest

from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline_tests.envoy.conftest import make_envoy, run_envoy
from solar_pipeline_tests.envoy.fixtures import EXPECTED, FIXTURES, Expected
from solar_pipeline_tests.helpers import failure_message, query


def _one(warehouse, sql: str, params: list) -> tuple | None:
    rows = query(warehouse, sql, params)
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


@pytest.mark.parametrize("expected", EXPECTED, ids=[e.folder for e in EXPECTED])
def test_fixture_folder_ingests_end_to_end(expected: Expected, warehouse, tmp_path, monkeypatch):
    with EnvoySimulator(replay=FIXTURES / expected.folder, outage=None) as sim:
        monkeypatch.setenv("ENVOY_TOKEN", sim.mint_token())
        result = run_envoy(make_envoy(sim, tmp_path), warehouse, raise_on_error=False)

    raw = query(warehouse, "SELECT endpoint, envoy_serial, firmware FROM raw.envoy_responses")
    assert raw, "every answer is stored raw, whatever happens next"
    assert {r[1] for r in raw} == {expected.serial}
    assert {r[2] for r in raw} == {expected.firmware}

    if not expected.supported:
        assert not result.success
        assert "older than R3.9" in failure_message(result)
        assert [r[0] for r in raw] == ["/info"]
        return

    assert result.success, failure_message(result)
    source = "eim" if expected.production_source == "eim" else "inverters"
    production = _one(
        warehouse,
        "SELECT w_now, wh_lifetime FROM envoy.production_readings WHERE phase IS NULL "
        "AND measurement = 'production' AND source = ?",
        [source],
    )
    assert production == pytest.approx((expected.production_w, expected.lifetime_wh))

    consumption = _one(
        warehouse,
        "SELECT w_now FROM envoy.production_readings WHERE phase IS NULL "
        "AND measurement = 'total-consumption'",
        [],
    )
    if expected.consumption_w is None:
        assert consumption is None
    else:
        assert consumption == pytest.approx((expected.consumption_w,))

    inverters = query(
        warehouse, "SELECT count(DISTINCT serial_number) FROM envoy.inverter_readings"
    )[0][0]
    assert inverters == (expected.inverter_count or 0)

    meters = query(warehouse, "SELECT count(*) FROM envoy.meter_readings WHERE phase IS NULL")
    assert meters == [(expected.meters,)]

    # Nothing the fixtures hold is unexpected to the parsers.
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.check_name == "raw_answers_well_formed":
            assert evaluation.passed, (evaluation.asset_key, evaluation.metadata)
