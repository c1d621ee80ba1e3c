"""The SEMS parsers on simulator answers, and on answers damaged the ways real ones can be."""

import itertools
import json
from datetime import UTC, date, datetime, timedelta

import pytest

from solar_pipeline.sources.goodwe.errors import ParseError
from solar_pipeline.sources.goodwe.parse import (
    GAP_S,
    SOURCE_DAILY,
    SOURCE_PAC,
    parse_daily_energy,
    parse_day_power,
)
from solar_pipeline_tests.faults.poison import json_refuses
from solar_pipeline_tests.goodwe.conftest import SITE, Recorder, make_client

DAY = date(2026, 6, 1)
TZ = "Europe/Amsterdam"


def _answer(data) -> str:
    return json.dumps({"hasError": False, "code": 0, "msg": "success", "data": data})


def _pacs(*items: tuple[str, object]) -> str:
    return _answer({"pacs": [{"date": d, "pac": p} for d, p in items]})


@pytest.fixture
def pac_body(gw_sim) -> str:
    body = make_client(gw_sim, Recorder()).day_power(DAY).body
    assert body is not None
    return body


def test_daily_kwh_become_wh_per_local_day_and_whole_day_intervals():
    body = _answer(
        [
            {"d": "03/28/2026", "p": 12.345},
            {"d": "03/29/2026", "p": "7.5"},
            {"d": "10/25/2026", "p": 0},
        ]
    )
    parsed = parse_daily_energy(body, TZ)
    assert parsed.problems == ()
    assert parsed.daily_wh == {
        date(2026, 3, 28): pytest.approx(12345.0),
        date(2026, 3, 29): 7500.0,
        date(2026, 10, 25): 0.0,
    }
    hours = [i.seconds / 3600 for i in parsed.intervals]
    assert hours == [24, 23, 25]
    first = parsed.intervals[0]
    assert first.source == SOURCE_DAILY
    assert first.start_at == datetime(2026, 3, 27, 23, 0, tzinfo=UTC)  # 00:00 CET


def test_bad_daily_items_are_reported_and_the_rest_kept():
    body = _answer(
        [
            {"d": "06/01/2026", "p": 10.0},
            {"d": "06/01/2026", "p": 11.0},
            {"d": "2026-06-02", "p": 9.0},
            {"d": "13/45/2026", "p": 1.0},
            {"d": "06/03/2026", "p": "n/a"},
            {"d": "06/04/2026", "p": -1},
            {"d": "06/05/2026"},
            "junk",
        ]
    )
    parsed = parse_daily_energy(body, TZ)
    assert parsed.daily_wh == {date(2026, 6, 1): 10000.0, date(2026, 6, 2): 9000.0}
    text = "\n".join(parsed.problems)
    for needle in ("listed twice", "bad day '13/45/2026'", "bad energy 'n/a'", "bad energy -1"):
        assert needle in text
    assert "bad energy None" in text and "not an object" in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty body"),
        ("<html>Bad gateway</html>", "not JSON"),
        ("[]", "expected a JSON object"),
        ('{"msg": "success", "data": []}', "no 'code'"),
        ('{"code": 100002, "msg": "expired", "data": null}', "error answer, code 100002"),
        ('{"code": "GY0429", "msg": "slow down"}', "code GY0429"),
        ('{"code": 0, "data": {"d": "06/01/2026"}}', "not a list of days"),
    ],
)
def test_daily_bodies_of_the_wrong_shape_raise_parse_error(body, message):
    with pytest.raises(ParseError, match=message):
        parse_daily_energy(body, TZ)


def test_simulator_pac_answer_parses_into_contiguous_five_minute_intervals(pac_body):
    parsed = parse_day_power(pac_body, SITE.timezone, DAY)
    assert parsed.problems == ()
    assert len(parsed.samples) == 288 and len(parsed.intervals) == 287
    assert parsed.samples[0][0] == datetime(2026, 5, 31, 22, 0, tzinfo=UTC)  # 00:00 CEST
    assert all(i.seconds == 300 and i.source == SOURCE_PAC for i in parsed.intervals)
    raw = json.loads(pac_body)["data"]["pacs"]
    noon = next(p["pac"] for p in raw if p["date"] == "06/01/2026 12:00:00")
    assert dict(parsed.samples)[datetime(2026, 6, 1, 10, 0, tzinfo=UTC)] == noon


def test_trapezoid_energy_and_gaps():
    body = _pacs(
        ("06/01/2026 10:00:00", 1000),
        ("06/01/2026 10:05:00", 2000),
        ("06/01/2026 10:30:00", 0),
    )
    parsed = parse_day_power(body, TZ)
    first, second = parsed.intervals
    assert first.produced_wh == pytest.approx(1500 * 300 / 3600)  # 125 Wh, not 83.3 (left sum)
    assert first.flags == ()
    assert second.seconds == 1500 > GAP_S and second.flags == ("gap",)
    assert second.produced_wh == pytest.approx(1000 * 1500 / 3600)
    assert parsed.produced_wh == pytest.approx(first.produced_wh + second.produced_wh)


def test_bad_samples_are_reported_and_bridged():
    body = _pacs(
        ("06/01/2026 10:00:00", 1000),
        ("06/01/2026 10:05:00", "broken"),
        ("06/01/2026 10:10:00", None),
        ("yesterday", 5),
        ("06/01/2026 10:15:00", "1000"),
    )
    parsed = parse_day_power(body, TZ)
    assert [w for _, w in parsed.samples] == [1000.0, 1000.0]
    [bridge] = parsed.intervals
    assert bridge.seconds == 900 and bridge.produced_wh == pytest.approx(250.0)
    text = "\n".join(parsed.problems)
    assert "bad power 'broken'" in text and "bad power None" in text
    assert "bad time 'yesterday'" in text


def test_samples_of_another_day_are_left_out_when_the_day_is_given():
    body = _pacs(("05/31/2026 23:55:00", 0), ("06/01/2026 00:00:00", 0), ("06/02/2026 00:00:00", 0))
    parsed = parse_day_power(body, TZ, DAY)
    assert len(parsed.samples) == 1
    assert sum("not on 2026-06-01" in p for p in parsed.problems) == 2
    assert len(parse_day_power(body, TZ).samples) == 3


def test_the_repeated_hour_is_summer_time_first_then_winter_time():
    labels = ["10/25/2026 01:55:00"]
    labels += [f"10/25/2026 02:{m:02d}:00" for m in range(0, 60, 5)] * 2
    labels += ["10/25/2026 03:00:00"]
    parsed = parse_day_power(_pacs(*((label, 100) for label in labels)), TZ)
    assert parsed.problems == ()
    starts = [t for t, _ in parsed.samples]
    assert starts[0] == datetime(2026, 10, 24, 23, 55, tzinfo=UTC)
    assert starts[-1] == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)
    assert all(b - a == timedelta(minutes=5) for a, b in itertools.pairwise(starts))
    # A third copy of a repeated label cannot be a real time.
    third = _pacs(*(("10/25/2026 02:00:00", 1) for _ in range(3)))
    assert any("more often" in p for p in parse_day_power(third, TZ).problems)


def test_the_skipped_hour_is_flagged():
    body = _pacs(
        ("03/29/2026 01:55:00", 0), ("03/29/2026 02:15:00", 10), ("03/29/2026 03:00:00", 0)
    )
    parsed = parse_day_power(body, TZ)
    assert any("02:15:00: nonexistent_local_time" in p for p in parsed.problems)
    # Read with the pre-jump offset, 02:15 lands after 03:00 CEST; only its interval is flagged.
    odd = datetime(2026, 3, 29, 1, 15, tzinfo=UTC)
    assert [t for t, _ in parsed.samples][-1] == odd
    flagged = [i for i in parsed.intervals if "nonexistent_local_time" in i.flags]
    assert [(i.start_at, i.end_at) for i in flagged] == [
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), odd)
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty body"),
        ('{"hasError":false,"code":0,"msg":"success","data":{"pacs":[{"da', "not JSON"),
        ('{"code": 100001, "msg": "No access"}', "code 100001"),
        ('{"code": 0, "data": []}', "'data' is not an object"),
        ('{"code": 0, "data": {"pac": []}}', "'data.pacs' is missing"),
        ('{"code": 0, "data": {"pacs": {}}}', "'data.pacs' is not a list"),
    ],
)
def test_pac_bodies_of_the_wrong_shape_raise_parse_error(body, message):
    with pytest.raises(ParseError, match=message):
        parse_day_power(body, TZ)


def test_an_empty_day_is_no_intervals_not_an_error():
    assert parse_day_power(_answer({"pacs": []}), TZ).intervals == []
    assert parse_day_power(_answer(None), TZ).samples == []
    assert parse_daily_energy(_answer(None), TZ).daily_wh == {}


@pytest.mark.parametrize("body", json_refuses("data"))
def test_json_python_refuses_is_a_parse_error(body) -> None:
    """The parser says ParseError, which flags the answer, not AttributeError."""
    with pytest.raises(ParseError, match="not JSON"):
        parse_daily_energy(body, "Europe/Amsterdam")
    with pytest.raises(ParseError, match="not JSON"):
        parse_day_power(body, "Europe/Amsterdam")
