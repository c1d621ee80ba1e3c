"""Daily energy against the simulators' ground truth, across DST, anomalies and outages."""

from datetime import date, timedelta

import pytest

from solar_pipeline.simulator import EnphaseCloudSimulator, SystemSpec
from solar_pipeline_tests.conftest import SYSTEM, make_enphase
from solar_pipeline_tests.energy.helpers import envoy_history, run_energy, truth
from solar_pipeline_tests.helpers import TELEMETRY, query, run_range

SITE = f"enphase:{SYSTEM.system_id}"


@pytest.fixture(autouse=True)
def _site(monkeypatch):
    monkeypatch.setenv("SOLAR_SITE_ID", SITE)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


def _daily(warehouse) -> dict[date, tuple]:
    rows = query(
        warehouse,
        "SELECT day, produced_wh, consumed_wh, imported_wh, exported_wh, "
        "self_consumed_wh, produced_source, consumed_source, status, coverage "
        "FROM energy.daily_energy ORDER BY day",
    )
    return {r[0]: r[1:] for r in rows}


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (date(2025, 3, 16), date(2025, 4, 13)),  # 30 days around 2025-03-30 (23 h)
        (date(2025, 10, 12), date(2025, 11, 9)),  # 30 days around 2025-10-26 (25 h)
    ],
)
def test_cloud_only_site_matches_truth_across_dst(sim, enphase, warehouse, first, last):
    assert run_range(enphase, warehouse, str(first), str(last)).success
    assert run_energy(warehouse, str(first), str(last)).success
    daily = _daily(warehouse)
    assert sorted(daily) == _days(first, last)
    for day in _days(first, last):
        produced, consumed, imported, exported, self_used, p_src, c_src, status, cov = daily[day]
        t = truth(day)
        assert produced == pytest.approx(t["meter_wh"], rel=1e-3), day
        assert consumed == pytest.approx(t["consumption_wh"], rel=1e-3), day
        assert (p_src, c_src, status, cov) == ("enphase_meter", "enphase_meter", "complete", 1.0)
        # The cloud path fetches no import/export: unknown, not zero.
        assert imported is None and exported is None and self_used is None


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (date(2025, 3, 28), date(2025, 4, 1)),
        (date(2025, 10, 24), date(2025, 10, 28)),
    ],
)
def test_envoy_only_site_from_lifetime_counters_matches_truth(
    warehouse, tmp_path, first, last, monkeypatch
):
    monkeypatch.delenv("SOLAR_SITE_ID")  # no cloud: the site is named after the gateway
    envoy_history(warehouse, tmp_path, first, last)
    assert run_energy(warehouse, str(first), str(last)).success
    rows = query(
        warehouse,
        "SELECT site_id, day, produced_wh, consumed_wh, imported_wh, "
        "exported_wh, self_consumed_wh, produced_source, status FROM "
        "energy.daily_energy ORDER BY day",
    )
    assert [r[1] for r in rows] == _days(first, last)
    for site, day, produced, consumed, imported, exported, self_used, source, status in rows:
        t = truth(day)
        assert site.startswith("envoy:")
        assert (source, status) == ("envoy_meter", "complete")
        assert produced == pytest.approx(t["meter_wh"], rel=1e-3), day
        assert consumed == pytest.approx(t["consumption_wh"], rel=1e-3), day
        assert imported - exported == pytest.approx(consumed - produced, abs=2)
        assert self_used == pytest.approx(produced - exported, abs=1e-6)


def test_rerunning_changes_nothing(sim, enphase, warehouse):
    assert run_range(enphase, warehouse, "2025-06-01", "2025-06-03").success
    assert run_energy(warehouse, "2025-06-01", "2025-06-03").success
    tables = [
        query(warehouse, f"SELECT * FROM energy.{t} ORDER BY ALL")
        for t in ("intervals", "daily_energy", "monthly_energy")
    ]
    assert run_energy(warehouse, "2025-06-01", "2025-06-03").success
    assert [
        query(warehouse, f"SELECT * FROM energy.{t} ORDER BY ALL")
        for t in ("intervals", "daily_energy", "monthly_energy")
    ] == tables


def test_site_without_consumption_meter_has_nulls_not_zeros(
    warehouse, tmp_path, seeded, monkeypatch
):
    spec = SystemSpec(
        system_id=SYSTEM.system_id, timezone=SYSTEM.timezone, has_consumption_meter=False
    )
    with EnphaseCloudSimulator([spec], per_minute=50, per_month=50_000) as sim:
        monkeypatch.setenv("ENPHASE_REFRESH_TOKEN", sim.mint_refresh_token())
        assert run_range(
            make_enphase(sim, tmp_path), warehouse, "2025-06-01", "2025-06-02", selection=TELEMETRY
        ).success
    assert run_energy(warehouse, "2025-06-01", "2025-06-02").success
    rows = query(
        warehouse,
        "SELECT produced_wh > 0, consumed_wh, consumed_source, "
        "self_consumed_wh FROM energy.daily_energy",
    )
    assert rows == [(True, None, None, None)] * 2
