"""A mixed fleet through the real assets: four vendors' simulators, four sites in four time
zones, one daily-partitioned run per range. Each site's daily energy must match its
simulator's truth for its own local days (DST days included), and a site with a wrong key
must fail alone, with a status row that says what to fix."""

import itertools
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from solar_pipeline.assets import energy, fronius, goodwe, sma, solaredge
from solar_pipeline.energy.model import local_day_bounds
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.simulator.fronius import FroniusSimulator
from solar_pipeline.simulator.goodwe import SemsSimulator
from solar_pipeline.simulator.sma import OWNER, SmaSimulator
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.simulator.solaredge import SolarEdgeSimulator
from solar_pipeline_tests.helpers import query

NOW = datetime(2026, 11, 25, 11, 0, 30, tzinfo=UTC).timestamp()
START = date(2026, 1, 1)
SE = SystemSpec(system_id=5150001, timezone="America/New_York", operational_date=START)
FR = SystemSpec(system_id=5150002, timezone="Europe/Amsterdam", operational_date=START)
GW = SystemSpec(system_id=5150003, timezone="Australia/Adelaide", operational_date=START)
SM = SystemSpec(system_id=5150004, timezone="America/Los_Angeles", operational_date=START)
STATION = "7d1c0e6a-2b55-4a0e-9f4e-5a1c2b3d4e5f"
ASSETS = [
    *solaredge.assets,
    *fronius.assets,
    *goodwe.assets,
    *sma.assets,
    energy.intervals,
    energy.daily_energy,
]
SITES = ("cottage", "workshop", "farm", "barn")
ZONES = dict(zip(SITES, (SE.timezone, FR.timezone, GW.timezone, SM.timezone), strict=True))
# Each range holds DST days of the sites: Amsterdam's spring (03-29) and Adelaide's autumn
# (04-05) switch; Amsterdam's autumn (10-25), New York's and Los Angeles' (11-01) switch.
DAYTIME_ZONES = (
    "Pacific/Honolulu",
    "America/Los_Angeles",
    "America/New_York",
    "Atlantic/Azores",
    "Europe/Amsterdam",
    "Asia/Dubai",
    "Asia/Bangkok",
    "Asia/Tokyo",
    "Pacific/Auckland",
)
RANGES = [(date(2026, 3, 27), date(2026, 4, 6)), (date(2026, 10, 24), date(2026, 11, 2))]


@dataclass
class Fleet:
    solaredge: SolarEdgeSimulator
    fronius: FroniusSimulator
    goodwe: SemsSimulator
    sma: SmaSimulator
    warehouse: DuckDBWarehouse

    def truth(self, site_id: str, day: date) -> float:
        if site_id == "cottage":
            return self.solaredge.true_energy(SE.system_id, day)["produced_wh"]
        if site_id == "workshop":
            return self.fronius.truth_wh(day)
        if site_id == "barn":
            return self.sma.true_energy(SM.system_id, day)["produced_wh"]
        return self.goodwe.true_energy(STATION, day)["produced_wh"]

    def run(self, first: date, last: date) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ASSETS,
            resources={"warehouse": self.warehouse},
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
            raise_on_error=False,
        )


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    se = SolarEdgeSimulator([SE], clock=lambda: NOW)
    fr = FroniusSimulator(FR)
    gw = SemsSimulator({STATION: GW}, clock=lambda: NOW)
    sm = SmaSimulator([SM], clock=lambda: NOW)
    with se, fr, gw, sm:
        sm.approve(OWNER)  # the owner approved the consent e-mail
        sites = tmp_path / "sites.yaml"
        sites.write_text(
            textwrap.dedent(
                f"""
                sites:
                  - site_id: cottage
                    vendor: solaredge
                    timezone: {SE.timezone}
                    ids: {{site_id: {SE.system_id}, api_url: "{se.base_url}"}}
                    credentials: {{api_key: SOLAREDGE_COTTAGE_KEY}}
                  - site_id: workshop
                    vendor: fronius
                    timezone: {FR.timezone}
                    ids: {{url: "{fr.base_url}"}}
                  - site_id: farm
                    vendor: goodwe
                    timezone: {GW.timezone}
                    ids: {{station_id: "{STATION}", api_url: "{gw.api_url}"}}
                    credentials: {{account: GOODWE_FARM_ACCOUNT, password: GOODWE_FARM_PASSWORD}}
                  - site_id: barn
                    vendor: sma
                    timezone: {SM.timezone}
                    ids: {{plant_id: {SM.system_id}, api_url: "{sm.base_url}"}}
                    credentials: {{client_id: SMA_CLIENT_ID, client_secret: SMA_CLIENT_SECRET}}
                """
            )
        )
        monkeypatch.setenv("SOLAR_SITES", str(sites))
        monkeypatch.setenv("SOLAR_TIMEZONE", "Europe/Amsterdam")
        monkeypatch.setenv("SOLAREDGE_COTTAGE_KEY", se.api_key)
        monkeypatch.setenv("GOODWE_FARM_ACCOUNT", gw.account)
        monkeypatch.setenv("GOODWE_FARM_PASSWORD", gw.password)
        monkeypatch.setenv("SMA_CLIENT_ID", sm.client_id)
        monkeypatch.setenv("SMA_CLIENT_SECRET", sm.client_secret)
        monkeypatch.setenv("SMA_TOKEN_URL", sm.token_url)
        monkeypatch.setenv("SMA_CONSENT_URL", sm.consent_url)
        monkeypatch.setenv("SOLAR_DATA_DIR", str(tmp_path))
        yield Fleet(se, fr, gw, sm, DuckDBWarehouse(path=str(tmp_path / "solar.duckdb")))


def test_each_site_daily_energy_matches_truth_in_its_own_zone(fleet: Fleet):
    for first, last in RANGES:
        result = fleet.run(first, last)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
    rows = query(
        fleet.warehouse,
        "SELECT site_id, day, produced_wh, produced_source, status FROM energy.daily_energy",
    )
    got = {(site, day): (wh, source, status) for site, day, wh, source, status in rows}
    expected_days = {
        first + timedelta(days=n) for first, last in RANGES for n in range((last - first).days + 1)
    }
    assert {s for s, _ in got} == set(SITES)
    for site in SITES:
        assert {d for s, d in got if s == site} == expected_days
        for day in sorted(expected_days):
            wh, source, _status = got[(site, day)]
            truth = fleet.truth(site, day)
            assert abs(wh - truth) <= 0.001 * truth, (site, day, wh, truth, source)
    assert {got[("cottage", d)][1] for d in expected_days} == {"solaredge_details"}
    assert {got[("workshop", d)][1] for d in expected_days} == {"fronius_archive"}
    assert {got[("farm", d)][1] for d in expected_days} == {"goodwe_daily"}
    assert {got[("barn", d)][1] for d in expected_days} == {"sma_pv"}
    # The interval sources saw whole local days: 23 and 25 hours of quarters on switch days.
    for site, day, quarters in [
        ("workshop", date(2026, 3, 29), 23 * 12),
        ("workshop", date(2026, 10, 25), 25 * 12),
        ("cottage", date(2026, 11, 1), 25 * 4),
        ("barn", date(2026, 11, 1), 25 * 12),
    ]:
        assert got[(site, day)][2] == "complete"
        [(n,)] = query(
            fleet.warehouse,
            "SELECT count(*) FROM energy.intervals WHERE site_id = ? AND produced_wh IS NOT NULL"
            " AND end_at > ? AND end_at <= ?",
            [site, *local_day_bounds(day, ZONES[site])],
        )
        assert n == quarters, (site, day, n)
    # Consumption and grid flows come through where the vendor meters them (SolarEdge here).
    [(consumed, imported, exported)] = query(
        fleet.warehouse,
        "SELECT consumed_wh, imported_wh, exported_wh FROM energy.daily_energy "
        "WHERE site_id = 'cottage' AND day = '2026-11-01'",
    )
    flows = fleet.solaredge.true_energy(SE.system_id, date(2026, 11, 1))
    assert abs(consumed - flows["consumed_wh"]) <= 0.001 * flows["consumed_wh"]
    assert abs(imported - flows["imported_wh"]) <= 0.001 * max(flows["imported_wh"], 1)
    assert abs(exported - flows["exported_wh"]) <= 0.001 * max(flows["exported_wh"], 1)
    # Every answer was kept verbatim, tied to its site.
    for vendor, site in zip(("solaredge", "fronius", "goodwe", "sma"), SITES, strict=True):
        [(n, bad)] = query(
            fleet.warehouse,
            f"SELECT count(*), count(parse_error) FROM raw.{vendor}_responses WHERE site_id = ?",
            [site],
        )
        assert n > 0 and bad == 0, (vendor, n, bad)


def test_a_site_with_a_wrong_key_fails_alone(fleet: Fleet, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SOLAREDGE_COTTAGE_KEY", "WRONGKEY0123456789ABCDEFGHIJKLMN")
    first, last = RANGES[0]
    result = fleet.run(first, last)
    # The other sites' work is not lost to one site's mistake; the run says which site failed.
    assert result.success
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }
    assert checks[("raw/solaredge_responses", "every_site_answered")] is False
    assert checks[("raw/fronius_responses", "every_site_answered")] is True
    status = {
        (site, asset): (error, failures, success)
        for site, asset, error, failures, success in query(
            fleet.warehouse,
            "SELECT site_id, asset, last_error, consecutive_failures, last_success_at "
            "FROM ops.site_status",
        )
    }
    error, failures, success = status[("cottage", "raw/solaredge_responses")]
    assert failures == 1 and success is None
    assert "SOLAREDGE_COTTAGE_KEY" in error
    assert "WRONGKEY" not in error
    assert status[("workshop", "raw/fronius_responses")][0] is None
    assert status[("farm", "raw/goodwe_responses")][0] is None
    days = query(
        fleet.warehouse,
        "SELECT site_id, count(*) FROM energy.daily_energy WHERE produced_wh > 0 GROUP BY 1",
    )
    assert dict(days) == {"workshop": 11, "farm": 11, "barn": 11}
    # The refused answer itself is evidence, kept raw.
    [(statuses,)] = query(
        fleet.warehouse,
        "SELECT list(DISTINCT status) FROM raw.solaredge_responses WHERE site_id = 'cottage'",
    )
    assert statuses and all(s in (401, 403) for s in statuses)


def test_the_solaredge_budget_counts_every_run_in_the_shared_ledger(fleet: Fleet):
    first, last = RANGES[1]
    assert fleet.run(first, last).success
    [(spent,)] = query(
        fleet.warehouse,
        "SELECT count(*) FROM ops.api_requests WHERE api = 'solaredge:SOLAREDGE_COTTAGE_KEY'",
    )
    assert spent == sum(fleet.solaredge.stats.requests.values()) > 0
    # Other runs (another process, a backfill) used the rest of today's 300.
    with fleet.warehouse.connect() as conn:
        conn.execute(
            "INSERT INTO ops.api_requests SELECT now(), 'solaredge:SOLAREDGE_COTTAGE_KEY', "
            "'energyDetails', 'data', 200, 1.0, NULL, 'other' FROM range(?)",
            [300 - spent - 1],
        )
    before = sum(fleet.solaredge.stats.requests.values())
    assert fleet.run(first, last).success
    assert sum(fleet.solaredge.stats.requests.values()) == before  # nothing was sent
    [(error,)] = query(
        fleet.warehouse,
        "SELECT last_error FROM ops.site_status "
        "WHERE site_id = 'cottage' AND asset = 'raw/solaredge_responses'",
    )
    assert "only 1 of the 300 daily requests" in error and "SOLAREDGE_COTTAGE_KEY" in error


def test_a_gen24_site_gets_its_energy_from_e_total_between_ticks(tmp_path, monkeypatch):
    """GEN24/Tauro keep no archive and report no E_Day: each tick polls the lifetime E_Total,
    and the energy between ticks is its difference."""
    real_now = time.time()
    clock = {"now": real_now - 3 * 600}
    # A zone where it is around noon now, so the ticks see the sun whatever time CI runs.
    zone = min(
        DAYTIME_ZONES, key=lambda z: abs(datetime.fromtimestamp(real_now, ZoneInfo(z)).hour - 12)
    )
    spec = SystemSpec(system_id=5150009, timezone=zone, operational_date=START)
    with FroniusSimulator(spec, model_name="gen24", clock=lambda: clock["now"]) as sim:
        sites = tmp_path / "sites.yaml"
        sites.write_text(
            f"sites:\n  - {{site_id: garage, vendor: fronius, timezone: {zone}, "
            f'ids: {{url: "{sim.base_url}"}}}}\n'
        )
        monkeypatch.setenv("SOLAR_SITES", str(sites))
        warehouse = DuckDBWarehouse(path=str(tmp_path / "solar.duckdb"))
        # Two days of partitions: the ticks may straddle midnight; the poll is today's.
        first = datetime.fromtimestamp(clock["now"], ZoneInfo(zone)).date()
        last = datetime.fromtimestamp(real_now, ZoneInfo(zone)).date()
        readings = []
        for _ in range(3):  # three ticks, ten minutes apart
            result = dg.materialize(
                fronius.assets,
                resources={"warehouse": warehouse},
                tags={
                    "dagster/asset_partition_range_start": first.isoformat(),
                    "dagster/asset_partition_range_end": last.isoformat(),
                },
            )
            assert result.success
            readings.append(sim.e_total_at(clock["now"]))
            clock["now"] += 600
        assert not any("GetArchiveData" in r for r in sim.requests)  # it has none to ask for
    rows = query(
        warehouse,
        "SELECT figure, wh FROM fronius.intervals WHERE site_id = 'garage' "
        "AND source = 'fronius_etotal' ORDER BY end_at",
    )
    assert rows == [("produced_wh", float(b - a)) for a, b in itertools.pairwise(readings)]
    assert any(wh > 0 for _, wh in rows)
    # The grid meter's lifetime counters give import and export the same way.
    meter = query(
        warehouse,
        "SELECT figure, count(*) FROM fronius.intervals WHERE site_id = 'garage' "
        "AND source = 'fronius_meter' GROUP BY 1",
    )
    assert dict(meter) == {"imported_wh": 2, "exported_wh": 2}
