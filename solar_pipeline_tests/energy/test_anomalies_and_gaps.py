"""Counter anomalies, gateway outages and silent inverters: flagged, filled, never invented."""

import time
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from solar_pipeline.definitions import defs
from solar_pipeline.energy.model import WRAP_WH
from solar_pipeline.partitions import DAILY
from solar_pipeline.sensors import energy_gap_fill
from solar_pipeline.simulator import solar_model
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.energy.helpers import envoy_history, run_energy, truth
from solar_pipeline_tests.helpers import query, run_range

SITE = f"enphase:{SYSTEM.system_id}"
FIRST, LAST = date(2025, 6, 9), date(2025, 6, 11)


@pytest.fixture(autouse=True)
def _site(monkeypatch):
    monkeypatch.setenv("SOLAR_SITE_ID", SITE)


def _local(day: date, hour: float) -> datetime:
    start, _ = solar_model.local_day_bounds(SYSTEM, day)
    return datetime.fromtimestamp(start + hour * 3600, UTC)


def test_counter_wrap_reset_and_spike_leave_daily_energy_correct_and_flagged(
    sim, enphase, warehouse, tmp_path
):
    assert run_range(enphase, warehouse, str(FIRST), str(LAST)).success
    envoy_history(warehouse, tmp_path, FIRST, LAST)
    mid = date(2025, 6, 10)
    with warehouse.connect() as conn:
        meter = "measurement_type = 'production' AND phase IS NULL"
        # A reset: the production CT's counter restarts from zero at 12:00 local.
        base = conn.execute(
            f"SELECT energy_delivered FROM envoy.meter_readings WHERE {meter} AND reading_at = ?",
            [_local(mid, 12)],
        ).fetchone()[0]
        conn.execute(
            f"UPDATE envoy.meter_readings SET energy_delivered = energy_delivered - ? "
            f"WHERE {meter} AND reading_at > ?",
            [base, _local(mid, 12)],
        )
        # A spike: one reading 6.78 MWh too high at 09:30 (between two polls).
        conn.execute(
            f"""INSERT INTO envoy.meter_readings BY NAME
            SELECT * REPLACE (reading_at + INTERVAL 30 MINUTE AS reading_at,
                              energy_delivered + 6780000 AS energy_delivered)
            FROM envoy.meter_readings WHERE {meter} AND reading_at = ?""",
            [_local(mid, 9)],
        )
        # The ~1.19 MWh wrap of the inverters' counter at 15:00.
        conn.execute(
            "UPDATE envoy.production_readings SET wh_lifetime = wh_lifetime - ? "
            "WHERE source = 'inverters' AND phase IS NULL AND reading_at > ?",
            [WRAP_WH, _local(mid, 15)],
        )
    result = run_energy(warehouse, str(FIRST), str(LAST))
    assert result.success

    for day, produced, source, status in query(
        warehouse,
        "SELECT day, produced_wh, produced_source, status FROM energy.daily_energy ORDER BY day",
    ):
        assert produced == pytest.approx(truth(day)["meter_wh"], rel=1e-3), day
        assert (source, status) == ("envoy_meter", "complete")
    flags = {
        f
        for (f,) in query(
            warehouse,
            "SELECT unnest(string_split(flags, ',')) FROM energy.intervals WHERE flags IS NOT NULL",
        )
    }
    assert {"counter_reset", "spike", "counter_wrap", "filled_from:enphase_meter"} <= flags
    assert query(
        warehouse,
        "SELECT count(*) FROM energy.intervals WHERE produced_wh < 0 "
        "OR imported_wh < 0 OR exported_wh < 0 OR consumed_wh < 0",
    ) == [(0,)]
    assert query(warehouse, "SELECT anomalies FROM energy.daily_energy WHERE day = ?", [mid]) == [
        (4,)
    ]  # reset, spike up, its step back down, the wrap
    check = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "counter_anomalies"
    )
    assert not check.passed


def test_days_without_gateway_data_are_filled_from_the_cloud(sim, enphase, warehouse, tmp_path):
    first, last = date(2025, 6, 9), date(2025, 6, 13)
    outage = (date(2025, 6, 11), date(2025, 6, 12))
    assert run_range(enphase, warehouse, str(first), str(last)).success
    envoy_history(warehouse, tmp_path, first, last, skip=outage)
    assert run_energy(warehouse, str(first), str(last)).success
    rows = query(
        warehouse,
        "SELECT day, produced_wh, produced_source, status FROM energy.daily_energy ORDER BY day",
    )
    for day, produced, source, status in rows:
        assert produced == pytest.approx(truth(day)["meter_wh"], rel=1e-3), day
        assert status == "complete"
        if day in outage or day == outage[0] - timedelta(1):
            # The day before also loses its last hour to the outage's counter interval.
            assert source == "enphase_meter", day
        else:
            assert source == "envoy_meter", day


def test_a_silent_inverter_gets_a_zero_row_and_fails_the_check(warehouse, tmp_path):
    envoy_history(warehouse, tmp_path, FIRST, LAST)
    with warehouse.connect() as conn:
        serial = conn.execute("SELECT min(serial_number) FROM envoy.inverter_readings").fetchone()[
            0
        ]
        start, end = solar_model.local_day_bounds(SYSTEM, date(2025, 6, 10))
        conn.execute(
            "DELETE FROM envoy.inverter_readings WHERE serial_number = ? AND "
            "epoch(last_report_at) BETWEEN ? AND ?",
            [serial, start - 900, end],
        )
    result = run_energy(warehouse, str(FIRST), str(LAST))
    rows = query(
        warehouse,
        "SELECT day, wh, reports FROM energy.daily_inverter_energy "
        "WHERE serial_number = ? ORDER BY day",
        [serial],
    )
    assert rows[1] == (date(2025, 6, 10), 0.0, 0)
    assert rows[0][1] > 0 and rows[2][1] > 0
    others = query(
        warehouse,
        "SELECT count(DISTINCT serial_number) FROM "
        "energy.daily_inverter_energy WHERE day = ? AND reports > 0",
        [date(2025, 6, 10)],
    )
    assert others == [(SYSTEM.modules - 1,)]
    check = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "no_silent_inverter"
    )
    assert not check.passed and serial in str(check.metadata["silent"].value)


def test_gap_sensor_requests_exactly_the_gaps_and_the_gap_closes(
    sim, enphase, warehouse, tmp_path, monkeypatch
):
    monkeypatch.setenv("SOLAR_DUCKDB_PATH", warehouse.path)
    monkeypatch.setenv("ENPHASE_API_KEY", sim.api_key)
    today = date.fromisoformat(DAILY.get_partition_key_for_timestamp(time.time()))
    first, last = today - timedelta(14), today - timedelta(1)
    outage = (today - timedelta(5), today - timedelta(4))  # the gateway was down two days
    # Everything else is local data; the cloud was never fetched.
    envoy_history(warehouse, tmp_path, first, last, skip=outage)
    assert run_energy(warehouse, str(first), str(last)).success
    statuses = dict(query(warehouse, "SELECT day, status FROM energy.daily_energy"))
    gaps = sorted(d for d, s in statuses.items() if s != "complete")
    assert gaps and set(outage) <= set(gaps)
    # Another vendor's site with daily totals only (always `estimated`) is not the cloud's gap.
    with warehouse.connect() as conn:
        conn.execute(
            "INSERT INTO energy.daily_energy (site_id, day, produced_wh, status) "
            "SELECT 'farm', d::DATE, 1000.0, 'estimated' FROM range(?::DATE, ?::DATE, "
            "INTERVAL 1 DAY) t(d)",
            [first, today],
        )

    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance)
        result = energy_gap_fill(context)
        requests = result.run_requests
        ranges = [
            (
                r.tags["dagster/asset_partition_range_start"],
                r.tags["dagster/asset_partition_range_end"],
            )
            for r in requests
        ]
        days = {
            date.fromisoformat(a) + timedelta(n)
            for a, b in ranges
            for n in range((date.fromisoformat(b) - date.fromisoformat(a)).days + 1)
        }
        assert days == set(gaps)  # the right partitions and nothing else
        # The same gaps are not requested again while those runs are pending.
        context = dg.build_sensor_context(instance=instance, cursor=result.cursor)
        assert isinstance(energy_gap_fill(context), dg.SkipReason)

        job = defs().resolve_job_def("energy_gap_fill_job")
        for request in requests:
            run = job.execute_in_process(
                instance=instance,
                tags=request.tags,
                resources={"enphase": enphase, "warehouse": warehouse},
            )
            assert run.success
    after = dict(
        query(warehouse, "SELECT day, status FROM energy.daily_energy WHERE site_id <> 'farm'")
    )
    assert all(after[d] == "complete" for d in gaps), after
    sources = dict(
        query(
            warehouse,
            "SELECT day, produced_source FROM energy.daily_energy WHERE site_id <> 'farm'",
        )
    )
    assert {sources[d] for d in outage} == {"enphase_meter"}
