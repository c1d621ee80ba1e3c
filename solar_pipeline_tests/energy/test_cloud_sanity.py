"""Cloud energy values that cannot be true (negative, beyond what the array can make, an
interval listed twice with two values) get the counters' anomaly rules: flagged, filled from the
next source or left out, never in a day's figure."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from solar_pipeline.simulator import solar_model
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.energy.helpers import run_energy, truth
from solar_pipeline_tests.helpers import query, run_range

SITE = f"enphase:{SYSTEM.system_id}"
DAY = date(2025, 6, 10)
NEGATIVE = -249_828  # the day figure the issue saw
ABSURD = 1_000_000_000  # 1 GWh in a quarter hour: a 4 GW "peak"


@pytest.fixture(autouse=True)
def _site(monkeypatch):
    monkeypatch.setenv("SOLAR_SITE_ID", SITE)


def _at(hour: float) -> int:
    start, _ = solar_model.local_day_bounds(SYSTEM, DAY)
    return int(start + hour * 3600)


def _series(kind, field: str) -> dict[int, int]:
    start, end = solar_model.local_day_bounds(SYSTEM, DAY)
    return {i["end_at"]: i[field] for i in kind(SYSTEM, start, end)}


def _flags(warehouse, source: str, end_at: int) -> set[str]:
    """The flags of the source's rows (one per figure) for the interval ending at end_at."""
    rows = query(
        warehouse,
        "SELECT flags FROM energy.intervals WHERE source = ? AND end_at = ?",
        [source, datetime.fromtimestamp(end_at, UTC)],
    )
    assert rows
    return {f for (flags,) in rows for f in (flags or "").split(",") if f}


def test_negative_absurd_and_conflicting_cloud_values_never_reach_the_day(sim, enphase, warehouse):
    meter = _series(solar_model.meter_production_intervals, "wh_del")
    micro = _series(solar_model.micro_intervals, "enwh")
    consumption = _series(solar_model.consumption_intervals, "enwh")
    negative, absurd, conflict, same = _at(11), _at(13), _at(15), _at(16)
    sim.corrupt_interval("production_meter", negative, NEGATIVE)
    sim.corrupt_interval("production_meter", absurd, ABSURD)
    sim.corrupt_interval("production_meter", conflict, meter[conflict], meter[conflict] + 300)
    sim.corrupt_interval("production_meter", same, meter[same], meter[same])  # harmless
    sim.corrupt_interval("production_micro", _at(9), -5)
    sim.corrupt_interval("consumption_meter", _at(10), consumption[_at(10)], 5)
    sim.corrupt_interval("consumption_meter", _at(12), ABSURD)

    assert run_range(enphase, warehouse, str(DAY), str(DAY)).success
    result = run_energy(warehouse, str(DAY), str(DAY))
    assert result.success

    # The three bad quarters of the meter take the microinverters' energy of the same span.
    bad = (negative, absurd, conflict)
    filled = sum(wh for end, wh in micro.items() if any(b - 900 < end <= b for b in bad))
    expected_produced = sum(wh for end, wh in meter.items() if end not in bad) + filled
    # Consumption has no second source: its two bad quarters are left out, the day is partial.
    expected_consumed = sum(consumption.values()) - consumption[_at(10)] - consumption[_at(12)]
    [(produced, p_status, consumed, c_status, peak, anomalies)] = query(
        warehouse,
        "SELECT produced_wh, status, consumed_wh, consumed_status, peak_w, anomalies "
        "FROM energy.daily_energy WHERE day = ?",
        [DAY],
    )
    assert produced == pytest.approx(expected_produced, abs=1e-6)
    assert p_status == "complete"
    assert consumed == pytest.approx(expected_consumed, abs=1e-6)
    assert c_status == "partial"
    assert peak < SYSTEM.size_w
    assert anomalies == 6

    assert _flags(warehouse, "enphase_meter", negative) == {
        "negative",
        "filled_from:enphase_micro",
    }
    assert _flags(warehouse, "enphase_meter", absurd) == {"spike", "filled_from:enphase_micro"}
    assert _flags(warehouse, "enphase_meter", conflict) == {
        "duplicate_conflict",
        "filled_from:enphase_micro",
    }
    assert _flags(warehouse, "enphase_meter", same) == set()
    assert _flags(warehouse, "enphase_micro", _at(9)) == {
        "negative",
        "filled_from:enphase_meter",
    }
    assert _flags(warehouse, "enphase_meter", _at(10)) == {
        "duplicate_conflict",
        "left_out:consumed_wh",
    }
    assert query(
        warehouse,
        "SELECT count(*) FROM energy.intervals WHERE least(produced_wh, consumed_wh) < 0 "
        "OR greatest(produced_wh, consumed_wh) > 10000",
    ) == [(0,)]
    [(rows,)] = query(
        warehouse,
        "SELECT count(*) FROM energy.intervals WHERE source = 'enphase_meter' AND end_at = ?",
        [datetime.fromtimestamp(same, UTC)],
    )
    assert rows == 2  # production and consumption, each once: the identical copy is one

    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    check = checks["counter_anomalies"]
    assert not check.passed
    found = check.metadata["anomalies"].value[str(DAY)]
    assert found["count"] == 6
    assert found["sources"] == ["enphase_meter", "enphase_micro"]


def test_the_cloud_tables_say_which_value_is_used_and_why(sim, enphase, warehouse):
    meter = _series(solar_model.meter_production_intervals, "wh_del")
    conflict = _at(15)
    sim.corrupt_interval("production_meter", conflict, meter[conflict], meter[conflict] + 300)
    sim.corrupt_interval("production_micro", _at(12), NEGATIVE)
    result = run_range(enphase, warehouse, str(DAY), str(DAY))
    assert result.success
    rows = dict(
        query(
            warehouse,
            "SELECT source || '@' || epoch(end_at)::BIGINT, flags FROM "
            "enphase.production_intervals WHERE flags IS NOT NULL",
        )
    )
    assert rows == {f"meter@{conflict}": "duplicate_conflict", f"micro@{_at(12)}": "negative"}
    assert query(
        warehouse,
        "SELECT count(*) FROM enphase.production_intervals WHERE flags IS NOT NULL "
        "AND wh IS NOT NULL",
    ) == [(0,)]
    check = next(
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key == dg.AssetKey(["enphase", "production_intervals"])
        and e.check_name == "values_plausible"
    )
    assert not check.passed
    detail = check.metadata["flagged"].value
    assert {d["flag"] for d in detail} == {"duplicate_conflict", "negative"}
    dup = next(d for d in detail if d["flag"] == "duplicate_conflict")
    assert dup["values"] == [meter[conflict], meter[conflict] + 300]


def test_an_implausible_daily_total_is_not_a_day_figure(sim, enphase, warehouse):
    first, last = DAY - timedelta(1), DAY + timedelta(1)
    sim.corrupt_day(DAY, NEGATIVE)
    sim.corrupt_day(last, ABSURD)
    # Only the daily totals: no interval source covers these days.
    selection = [
        dg.AssetKey(["raw", "enphase_responses"]),
        dg.AssetKey(["enphase", "daily_energy"]),
    ]
    cloud = run_range(enphase, warehouse, str(first), str(last), selection=selection)
    assert cloud.success
    stored = dict(query(warehouse, "SELECT day, produced_wh FROM enphase.daily_energy"))
    assert stored == {first: truth(first)["production_wh"], DAY: None, last: None}
    check = next(
        e for e in cloud.get_asset_check_evaluations() if e.check_name == "values_plausible"
    )
    assert not check.passed
    assert set(check.metadata["implausible_days"].value) == {str(DAY), str(last)}

    assert run_energy(warehouse, str(first), str(last)).success
    rows = {
        day: (wh, status)
        for day, wh, status in query(
            warehouse, "SELECT day, produced_wh, status FROM energy.daily_energy"
        )
    }
    assert rows[first] == (pytest.approx(truth(first)["production_wh"]), "estimated")
    assert rows[DAY] == (None, "partial")
    assert rows[last] == (None, "partial")
