"""A fleet vendor's answer with a negative or impossible energy value gets the anomaly rules
of the counters: flagged, left out (no other source covers it), never in the day's figure,
and the day says it is partial. Served by the real simulators, read by the real assets."""

import json
import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from solar_pipeline.assets import energy, fronius, solaredge
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.simulator.fronius import FroniusSimulator
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.simulator.solaredge import SolarEdgeSimulator
from solar_pipeline_tests.helpers import failure_message, query

NOW = datetime(2026, 11, 25, 11, 0, 30, tzinfo=UTC).timestamp()
DAY = date(2026, 6, 10)
TZ = "Europe/Amsterdam"
SE = SystemSpec(system_id=5150001, timezone=TZ, operational_date=date(2026, 1, 1))
FR = SystemSpec(system_id=5150002, timezone=TZ, operational_date=date(2026, 1, 1))
ASSETS = [*solaredge.assets, *fronius.assets, energy.intervals, energy.daily_energy]
ABSURD = 1_000_000_000


@dataclass
class Fleet:
    solaredge: SolarEdgeSimulator
    fronius: FroniusSimulator
    warehouse: DuckDBWarehouse

    def run(self) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ASSETS,
            resources={"warehouse": self.warehouse},
            partition_key=DAY.isoformat(),
            raise_on_error=False,
        )

    def latest_body(self, vendor: str, endpoint: str) -> dict:
        [(body,)] = query(
            self.warehouse,
            f"SELECT body FROM raw.{vendor}_responses WHERE endpoint LIKE ? "
            "ORDER BY id DESC LIMIT 1",
            [f"%{endpoint}%"],
        )
        return json.loads(body)

    def day(self, site: str) -> tuple:
        [row] = query(
            self.warehouse,
            "SELECT produced_wh, status, consumed_wh, consumed_status, anomalies, produced_source "
            "FROM energy.daily_energy WHERE site_id = ? AND day = ?",
            [site, DAY],
        )
        return row

    def interval(self, site: str, start: datetime, figure: str) -> tuple[float | None, set[str]]:
        """The site's value of `figure` for the interval starting at `start`, and its flags."""
        rows = query(
            self.warehouse,
            f"SELECT {figure}, flags FROM energy.intervals WHERE site_id = ? AND start_at = ?",
            [site, start],
        )
        values = [v for v, _ in rows if v is not None]
        flags = {f for _, fl in rows for f in (fl or "").split(",") if f}
        return (values[0] if values else None), flags


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    se = SolarEdgeSimulator([SE], clock=lambda: NOW)
    fr = FroniusSimulator(FR)
    with se, fr:
        sites = tmp_path / "sites.yaml"
        sites.write_text(
            textwrap.dedent(
                f"""
                sites:
                  - site_id: cottage
                    vendor: solaredge
                    timezone: {TZ}
                    ids: {{site_id: {SE.system_id}, api_url: "{se.base_url}"}}
                    credentials: {{api_key: SOLAREDGE_COTTAGE_KEY}}
                  - site_id: workshop
                    vendor: fronius
                    timezone: {TZ}
                    ids: {{url: "{fr.base_url}"}}
                """
            )
        )
        monkeypatch.setenv("SOLAR_SITES", str(sites))
        monkeypatch.setenv("SOLAR_TIMEZONE", TZ)
        monkeypatch.setenv("SOLAREDGE_COTTAGE_KEY", se.api_key)
        monkeypatch.setenv("SOLAR_DATA_DIR", str(tmp_path))
        yield Fleet(se, fr, DuckDBWarehouse(path=str(tmp_path / "solar.duckdb")))


def _local(hour: int) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=ZoneInfo(TZ)).astimezone(UTC)


def test_negative_and_impossible_vendor_values_are_flagged_and_left_out(fleet: Fleet):
    assert fleet.run().success
    clean = {site: fleet.day(site) for site in ("cottage", "workshop")}
    assert clean["cottage"][1] == clean["workshop"][1] == "complete"
    baseline = {
        (site, hour, figure): fleet.interval(site, _local(hour), figure)[0]
        for site, hour, figure in [
            ("cottage", 12, "produced_wh"),
            ("cottage", 13, "produced_wh"),
            ("cottage", 10, "consumed_wh"),
            ("workshop", 12, "produced_wh"),
            ("workshop", 13, "produced_wh"),
        ]
    }

    # SolarEdge: a negative and an absurd production quarter, an absurd consumption quarter.
    details = fleet.latest_body("solaredge", "energyDetails")
    for meter in details["energyDetails"]["meters"]:
        for item in meter["values"]:
            stamp = f"{DAY} {{:02d}}:00:00"
            if meter["type"] == "Production" and item["date"] == stamp.format(12):
                item["value"] = -5000.0
            if meter["type"] == "Production" and item["date"] == stamp.format(13):
                item["value"] = float(ABSURD)
            if meter["type"] == "Consumption" and item["date"] == stamp.format(10):
                item["value"] = float(ABSURD)
    fleet.solaredge.fail_next(status=200, body=json.dumps(details), path_contains="energyDetails")
    # Fronius: the same in the Datamanager's 5-minute archive.
    archive = fleet.latest_body("fronius", "GetArchiveData")
    values = archive["Body"]["Data"]["inverter/1"]["Data"]["EnergyReal_WAC_Sum_Produced"]["Values"]
    midnight = datetime(DAY.year, DAY.month, DAY.day, tzinfo=ZoneInfo(TZ)).astimezone(UTC)
    values[str(int((_local(12) - midnight).total_seconds()))] = -300
    values[str(int((_local(13) - midnight).total_seconds()))] = ABSURD
    fleet.fronius.fail_next(status=200, body=json.dumps(archive), path_contains="GetArchiveData")

    result = fleet.run()
    assert result.success

    # SolarEdge's own daily total stands in for the quarters that are known to miss energy;
    # consumption has none, so its day is partial, without the bad quarter.
    produced, status, consumed, c_status, anomalies, source = fleet.day("cottage")
    assert produced == fleet.solaredge.true_energy(SE.system_id, DAY)["produced_wh"]
    assert (source, status) == ("solaredge_energy", "estimated")
    assert consumed == pytest.approx(clean["cottage"][2] - baseline[("cottage", 10, "consumed_wh")])
    assert (c_status, anomalies) == ("partial", 3)
    assert fleet.interval("cottage", _local(12), "produced_wh") == (
        None,
        {"bad_value", "left_out:produced_wh"},
    )
    value, flags = fleet.interval("cottage", _local(13), "produced_wh")
    # The parser also saw that production minus feed-in no longer matches self-consumption.
    assert value is None and flags == {"spike", "left_out:produced_wh", "self_consumption_mismatch"}
    assert fleet.interval("cottage", _local(10), "consumed_wh")[1] == {
        "spike",
        "left_out:consumed_wh",
    }

    # Fronius has no daily total: the day is partial, without the two bad intervals.
    produced, status, _, _, anomalies, _ = fleet.day("workshop")
    assert produced == pytest.approx(
        clean["workshop"][0]
        - baseline[("workshop", 12, "produced_wh")]
        - baseline[("workshop", 13, "produced_wh")]
    )
    assert (status, anomalies) == ("partial", 2)
    assert fleet.interval("workshop", _local(12), "produced_wh") == (
        None,
        {"negative", "left_out:produced_wh"},
    )

    assert query(
        fleet.warehouse,
        "SELECT count(*) FROM energy.intervals WHERE least(produced_wh, consumed_wh, "
        "imported_wh, exported_wh) < 0 OR greatest(produced_wh, consumed_wh) > 100000",
    ) == [(0,)]
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }
    anomalies_check = checks[("energy/daily_energy", "counter_anomalies")]
    assert not anomalies_check.passed
    by_day: Any = anomalies_check.metadata["anomalies"].value
    assert by_day[str(DAY)]["count"] == 5
    # The vendors' typed assets say which answer held the values, and that they were not used.
    for vendor in ("solaredge", "fronius"):
        assert not checks[(f"{vendor}/intervals", "answers_parse")].passed
    [(problem,)] = query(
        fleet.warehouse,
        "SELECT parse_error FROM raw.fronius_responses WHERE parse_error IS NOT NULL",
    )
    assert "negative" in problem and "spike" in problem


def _with_kwp(fleet: Fleet, kwp: str) -> None:
    path = Path(os.environ["SOLAR_SITES"])
    text = path.read_text().replace("api_url:", f"kwp: {kwp}, api_url:")
    path.write_text(text)


def test_the_sites_file_can_give_the_array_size(fleet: Fleet):
    # A 2 kWp bound for an array that makes 6.4 kW: its midday quarters cannot be true.
    _with_kwp(fleet, "2")
    result = fleet.run()
    assert result.success
    limit = 2000 * 0.25 * 1.2 + 10
    [(flagged, above)] = query(
        fleet.warehouse,
        "SELECT count(*) FILTER (flags LIKE '%spike%'), count(*) FILTER (produced_wh > ?) "
        "FROM energy.intervals WHERE site_id = 'cottage'",
        [limit],
    )
    assert flagged > 0 and above == 0
    assert fleet.day("cottage")[1:2] != ("complete",)


def test_a_wrong_array_size_is_refused_naming_the_setting(fleet: Fleet):
    # The sites file is checked whole when it is read (site_fields), so the run stops before
    # any request with a message naming the field, never a made-up bound.
    _with_kwp(fleet, "lots")
    result = fleet.run()
    assert not result.success
    error = failure_message(result)
    assert "ids.kwp" in error and "peak power in kW" in error
