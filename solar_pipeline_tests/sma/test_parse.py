"""The parsers on simulator answers, and on those answers damaged the ways real ones can be."""

import json
from datetime import UTC, date, datetime

import pytest

from solar_pipeline.sources.sma.errors import ParseError
from solar_pipeline.sources.sma.parse import SOURCE_PV, parse_day, parse_month
from solar_pipeline_tests.sma.conftest import PLANT, consented

DAY = date(2026, 6, 1)
TZ = PLANT.timezone


@pytest.fixture
def bodies(sma_sim, clock, tmp_path) -> dict[str, str]:
    setup = consented(sma_sim, tmp_path, clock)
    day, month = setup.client.day_series(DAY).body, setup.client.month_days(DAY).body
    assert day is not None and month is not None
    return {"day": day, "month": month}


def _edit(body: str, change) -> str:
    data = json.loads(body)
    change(data)
    return json.dumps(data)


def test_day_labels_are_period_ends_in_plant_local_time(bodies):
    parsed = parse_day(bodies["day"], TZ)
    assert len(parsed.intervals) == 288 and parsed.problems == ()
    items = json.loads(bodies["day"])["set"]
    assert items[0]["time"] == "2026-06-01T00:05:00" and items[-1]["time"] == "2026-06-02T00:00:00"
    noon = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # 12:00 CEST
    [at_noon] = [i for i in parsed.intervals if i.end_at == noon]
    label = next(v for v in items if v["time"] == "2026-06-01T12:00:00")
    assert at_noon.produced_wh == label["pvGeneration"] > 0
    assert at_noon.source == SOURCE_PV and at_noon.consumed_wh is None
    assert parsed.daily_wh == {DAY: pytest.approx(sum(v["pvGeneration"] for v in items))}


def test_month_values_become_whole_local_days(bodies):
    parsed = parse_month(bodies["month"], TZ)
    assert sorted(parsed.daily_wh) == [date(2026, 6, d) for d in range(1, 31)]
    first = parsed.intervals[0]
    assert first.start_at == datetime(2026, 5, 31, 22, tzinfo=UTC) and first.seconds == 86400


def test_one_bad_value_is_flagged_and_the_rest_kept(bodies):
    def damage(data):
        data["set"][140]["pvGeneration"] = "n/a"

    parsed = parse_day(_edit(bodies["day"], damage), TZ)
    assert len(parsed.intervals) == 288
    [bad] = [i for i in parsed.intervals if "bad_value" in i.flags]
    assert bad.produced_wh is None
    assert any("bad pvGeneration 'n/a'" in p for p in parsed.problems)


def test_null_values_are_left_out_not_zero(bodies):
    def drop(data):
        for item in data["set"][:10]:
            item["pvGeneration"] = None

    parsed = parse_day(_edit(bodies["day"], drop), TZ)
    assert len(parsed.intervals) == 278 and parsed.problems == ()


def test_a_bogus_first_value_is_flagged_as_a_spike(bodies):
    def spike(data):
        data["set"][100]["pvGeneration"] = 1024843.0

    parsed = parse_day(_edit(bodies["day"], spike), TZ, max_power_w=PLANT.size_w)
    [bad] = [i for i in parsed.intervals if "spike" in i.flags]
    assert bad.produced_wh is None
    assert sum(i.produced_wh or 0 for i in parsed.intervals) < 100_000


def test_a_label_in_the_skipped_hour_is_flagged():
    body = {
        "setType": "EnergyAndPowerPv",
        "resolution": "FiveMinutes",
        "set": [
            {"time": "2026-03-29T01:55:00", "pvGeneration": 0.0},
            {"time": "2026-03-29T02:30:00", "pvGeneration": 0.0},
            {"time": "2026-03-29T03:00:00", "pvGeneration": 0.0},
        ],
    }
    parsed = parse_day(json.dumps(body), TZ)
    assert [i.end_at.isoformat() for i in parsed.intervals] == [
        "2026-03-29T00:55:00+00:00",
        "2026-03-29T01:00:00+00:00",
    ]
    assert any("nonexistent_local_time" in p for p in parsed.problems)


def test_times_with_an_offset_and_grid_figures_are_read_as_given():
    body = {
        "plant": {"plantId": "1", "timezone": "Europe/Berlin"},
        "setType": "EnergyAndPowerInOut",
        "resolution": "FiveMinutes",
        "set": [{"time": "2026-06-01T10:05:00Z", "gridFeedIn": 12.5, "gridConsumption": 0.0}],
    }
    parsed = parse_day(json.dumps(body), TZ)
    [one] = parsed.intervals
    assert one.end_at == datetime(2026, 6, 1, 10, 5, tzinfo=UTC)
    assert (one.exported_wh, one.imported_wh, one.produced_wh) == (12.5, 0.0, None)
    assert one.source == "sma_grid"
    assert any("Europe/Berlin" in p for p in parsed.problems)  # the zones disagree


def test_month_values_off_midnight_or_repeated_are_reported(bodies):
    def damage(data):
        data["set"][1]["time"] = "2026-06-02T06:00:00"
        data["set"][2]["time"] = data["set"][0]["time"]

    parsed = parse_month(_edit(bodies["month"], damage), TZ)
    assert len(parsed.daily_wh) == 28
    assert any("not at midnight" in p for p in parsed.problems)
    assert any("appears twice" in p for p in parsed.problems)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty body"),
        ('{"plant": {"plantId": "1"}, "set": [', "not JSON"),
        ("[]", "expected a JSON object"),
        ('{"setType": "EnergyAndPowerPv"}', "'set' is missing"),
        ('{"set": {"time": 1}}', "not a list"),
        ('{"setType": "PowerAc", "set": []}', "not parsed"),
        ('{"resolution": "OneMonth", "set": []}', "not a series"),
    ],
)
def test_bodies_of_the_wrong_shape_raise_parse_errors(body, message):
    with pytest.raises(ParseError, match=message):
        parse_day(body, TZ)


def test_month_parser_refuses_a_day_series(bodies):
    with pytest.raises(ParseError, match="expected 'OneDay'"):
        parse_month(bodies["day"], TZ)
