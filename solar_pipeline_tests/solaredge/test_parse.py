"""The parsers on simulator answers, and on those answers damaged the ways real ones can be."""

import json
from datetime import UTC, date, datetime

import pytest

from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.simulator.solaredge import SolarEdgeSimulator
from solar_pipeline.sources.solaredge.errors import ParseError
from solar_pipeline.sources.solaredge.parse import (
    SOURCE_DETAILS,
    parse_energy_details,
    parse_overview,
    parse_site_energy,
)
from solar_pipeline_tests.faults.poison import json_refuses
from solar_pipeline_tests.solaredge.conftest import NOW, SITE, Recorder, make_client

DAY = date(2026, 6, 1)


@pytest.fixture
def details_body(se_sim) -> str:
    [resp] = make_client(se_sim, Recorder()).energy_details(DAY, DAY)
    assert resp.body is not None, resp
    return resp.body


def _edit(body: str, change) -> str:
    data = json.loads(body)
    change(data)
    return json.dumps(data)


def test_details_merge_the_meters_into_intervals(se_sim, details_body):
    parsed = parse_energy_details(details_body, SITE.timezone)
    assert len(parsed.intervals) == 96 and parsed.problems == ()
    noon = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # 12:00 CEST
    [at_noon] = [i for i in parsed.intervals if i.start_at == noon]
    meters = {m["type"]: m["values"] for m in json.loads(details_body)["energyDetails"]["meters"]}
    label = next(v for v in meters["Production"] if v["date"] == "2026-06-01 12:00:00")
    assert at_noon.produced_wh == label["value"]
    assert at_noon.source == SOURCE_DETAILS and at_noon.seconds == 900
    assert at_noon.produced_wh - at_noon.exported_wh == pytest.approx(parsed.self_consumed_wh[noon])


def test_a_site_without_consumption_meter_leaves_those_figures_unknown():
    spec = SystemSpec(system_id=77, has_consumption_meter=False, operational_date=date(2026, 1, 1))
    with SolarEdgeSimulator([spec], clock=lambda: NOW) as sim:
        [resp] = make_client(sim, Recorder(), site_id=77).energy_details(DAY, DAY)
    parsed = parse_energy_details(resp.body, spec.timezone)
    assert len(parsed.intervals) == 96
    assert all(i.consumed_wh is None and i.exported_wh is None for i in parsed.intervals)
    assert sum(i.produced_wh for i in parsed.intervals) > 0


def test_one_bad_value_is_flagged_and_the_rest_kept(details_body):
    def damage(data):
        data["energyDetails"]["meters"][0]["values"][48]["value"] = "n/a"

    parsed = parse_energy_details(_edit(details_body, damage), SITE.timezone)
    assert len(parsed.intervals) == 96
    [bad] = [i for i in parsed.intervals if "bad_value" in i.flags]
    assert bad.produced_wh is None and bad.consumed_wh is not None
    assert any("bad value 'n/a'" in p for p in parsed.problems)


def test_missing_values_are_left_out_not_zero(details_body):
    def drop(data):
        for meter in data["energyDetails"]["meters"]:
            for v in meter["values"][:10]:
                v.pop("value", None)

    parsed = parse_energy_details(_edit(details_body, drop), SITE.timezone)
    assert len(parsed.intervals) == 86 and parsed.problems == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty body"),
        ("<html>Bad gateway</html>", "not JSON"),
        ("[]", "expected a JSON object"),
        ('{"energy": {}}', "'energyDetails' is missing"),
        ('{"energyDetails": {"unit": "Wh", "meters": {}}}', "'meters' is not a list"),
        ('{"energyDetails": {"unit": "Wh", "meters": [{"values": []}]}}', "has no type"),
        ('{"energyDetails": {"unit": "GWh", "meters": []}}', "unknown unit 'GWh'"),
    ],
)
def test_bodies_of_the_wrong_shape_raise_parse_error(body, message):
    with pytest.raises(ParseError, match=message):
        parse_energy_details(body, SITE.timezone)


def test_units_are_scaled_to_wh(details_body):
    def to_kwh(data):
        data["energyDetails"]["unit"] = "kWh"
        for meter in data["energyDetails"]["meters"]:
            for v in meter["values"]:
                v["value"] = v["value"] / 1000

    wh = parse_energy_details(details_body, SITE.timezone)
    kwh = parse_energy_details(_edit(details_body, to_kwh), SITE.timezone)
    for a, b in zip(wh.intervals, kwh.intervals, strict=True):
        assert b.produced_wh == pytest.approx(a.produced_wh)


def _series(*labels: str) -> str:
    values = [{"date": label, "value": 10.0} for label in labels]
    meters = [{"type": "Production", "values": values}]
    return json.dumps(
        {"energyDetails": {"timeUnit": "QUARTER_OF_AN_HOUR", "unit": "Wh", "meters": meters}}
    )


def test_the_repeated_hour_is_summer_time_first_then_winter_time():
    body = _series("2026-10-25 02:00:00", "2026-10-25 02:00:00", "2026-10-25 02:00:00")
    parsed = parse_energy_details(body, "Europe/Amsterdam")
    starts = [i.start_at for i in parsed.intervals]
    assert starts == [
        datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    ]
    assert any("appears more than expected" in p for p in parsed.problems)


def test_a_time_in_the_skipped_hour_is_flagged():
    parsed = parse_energy_details(_series("2026-03-29 02:15:00"), "Europe/Amsterdam")
    assert parsed.intervals[0].flags == ("nonexistent_local_time",)
    assert parsed.problems


def test_site_energy_days_and_overview_agree(se_sim):
    client = make_client(se_sim, Recorder())
    [days] = client.site_energy_days(SITE.operational_date, date(2026, 11, 25))
    daily = parse_site_energy(days.body, SITE.timezone).daily_wh
    overview = parse_overview(client.overview().body, SITE.timezone)
    assert overview.lifetime_wh == pytest.approx(sum(daily.values()))
    assert overview.last_day_wh == pytest.approx(daily[date(2026, 11, 25)])
    assert overview.last_month_wh == pytest.approx(
        sum(v for d, v in daily.items() if d.month == 11)
    )
    assert (
        daily[date(2026, 6, 1)]
        == se_sim.true_energy(SITE.system_id, date(2026, 6, 1))["produced_wh"]
    )
    # lastUpdateTime is naive local: 12:00 CET is 11:00 UTC, minus the upload lag.
    assert overview.last_update_at == datetime(2026, 11, 25, 10, 45, tzinfo=UTC)
    assert overview.measured_by == "METER"


def test_overview_with_missing_parts_gives_unknowns_not_errors():
    parsed = parse_overview('{"overview": {"lifeTimeData": {}}}', SITE.timezone)
    assert parsed.lifetime_wh is None and parsed.last_update_at is None
    with pytest.raises(ParseError):
        parse_overview('{"overview": null}', SITE.timezone)


@pytest.mark.parametrize("body", json_refuses("energyDetails"))
def test_json_python_refuses_is_a_parse_error(body) -> None:
    """The parser says ParseError, which flags the answer, not AttributeError."""
    for parse in (parse_energy_details, parse_site_energy, parse_overview):
        with pytest.raises(ParseError, match="not JSON"):
            parse(body, "Europe/Amsterdam")
