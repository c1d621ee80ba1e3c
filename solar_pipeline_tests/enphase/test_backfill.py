"""A range backfill in one run writes exactly the simulator's data, and a re-run changes nothing."""

from datetime import date

from solar_pipeline.simulator import solar_model
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.helpers import query, run_range

# Europe/Amsterdam leaves DST on 2025-10-26: a 25-hour day between two 24-hour days.
FIRST, LAST = "2025-10-25", "2025-10-27"


def _expected(day: str) -> tuple[list, list, list]:
    start, end = solar_model.local_day_bounds(SYSTEM, date.fromisoformat(day))
    return (
        solar_model.micro_intervals(SYSTEM, start, end),
        solar_model.meter_production_intervals(SYSTEM, start, end),
        solar_model.consumption_intervals(SYSTEM, start, end),
    )


def _tables(warehouse):
    return {
        "micro": query(
            warehouse,
            "SELECT epoch(end_at)::BIGINT, wh, devices_reporting FROM "
            "enphase.production_intervals WHERE source = 'micro' ORDER BY end_at",
        ),
        "meter": query(
            warehouse,
            "SELECT epoch(end_at)::BIGINT, wh FROM "
            "enphase.production_intervals WHERE source = 'meter' ORDER BY end_at",
        ),
        "consumption": query(
            warehouse,
            "SELECT epoch(end_at)::BIGINT, wh FROM enphase.consumption_intervals ORDER BY end_at",
        ),
        "daily": query(
            warehouse,
            "SELECT day, produced_wh, micro_wh, meter_wh FROM enphase.daily_energy ORDER BY day",
        ),
    }


def test_three_day_backfill_writes_exactly_the_simulator_intervals(sim, enphase, warehouse):
    result = run_range(enphase, warehouse, FIRST, LAST)
    assert result.success

    micro, meter, consumption = [], [], []
    for day in (FIRST, "2025-10-26", LAST):
        m, p, c = _expected(day)
        micro += m
        meter += p
        consumption += c
    tables = _tables(warehouse)
    assert len(micro) == 288 + 300 + 288
    assert tables["micro"] == [(i["end_at"], i["enwh"], i["devices_reporting"]) for i in micro]
    assert tables["meter"] == [(i["end_at"], i["wh_del"]) for i in meter]
    assert tables["consumption"] == [(i["end_at"], i["enwh"]) for i in consumption]

    days = [date(2025, 10, 25), date(2025, 10, 26), date(2025, 10, 27)]
    totals = [solar_model.daily_totals(SYSTEM, d) for d in days]
    assert tables["daily"] == [
        (d, t["production_wh"], t["micro_wh"], t["meter_wh"])
        for d, t in zip(days, totals, strict=True)
    ]

    # The fewest calls: devices, 3 micro days (chained 24 h, +1 for the 25-hour day),
    # one meter week each for production and consumption, one energy_lifetime.
    raw = result.asset_materializations_for_node("raw__enphase_responses")[0]
    assert raw.metadata["requests_sent"].value == 1 + 4 + 1 + 1 + 1

    again = run_range(enphase, warehouse, FIRST, LAST)
    assert again.success
    assert _tables(warehouse) == tables


def test_the_23_hour_day_has_276_intervals_from_one_request(sim, enphase, warehouse):
    # Europe/Amsterdam enters DST on 2025-03-30: 23 hours, so one 24-hour call covers it.
    result = run_range(enphase, warehouse, "2025-03-30", "2025-03-30")
    assert result.success
    micro, _, _ = _expected("2025-03-30")
    assert len(micro) == 276
    assert _tables(warehouse)["micro"] == [
        (i["end_at"], i["enwh"], i["devices_reporting"]) for i in micro
    ]
    assert sim.stats.data_requests["production_micro"] == 1
