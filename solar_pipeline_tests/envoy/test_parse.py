"""The Envoy parsers against every pyenphase fixture folder, plus the known quirks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from solar_pipeline.sources.envoy.parse import (
    EnvoyParseError,
    parse_api_v1_production,
    parse_device_data,
    parse_info,
    parse_inverters_v1,
    parse_meters,
    parse_production_json,
)
from solar_pipeline_tests.envoy.fixtures import EXPECTED, FIXTURES, Expected

MEASURES = ("production", "total-consumption", "net-consumption")


def body(folder: str, name: str) -> str | None:
    """A body file's text, or None when it is missing or its log says it was not a 200."""
    path = FIXTURES / folder / name
    if not path.is_file():
        return None
    log = FIXTURES / folder / f"{name}_log.json"
    if log.is_file() and json.loads(log.read_text()).get("code") != 200:
        return None
    return path.read_text(encoding="utf-8", errors="replace")


def raw(folder: str, name: str) -> str:
    """A body file's text whatever its status (for the error-body tests)."""
    return (FIXTURES / folder / name).read_text(encoding="utf-8", errors="replace")


def whole(rows: list[dict[str, Any]], source: str, measurement: str) -> dict[str, Any] | None:
    """The whole-system (phase None) row of one source and measurement, if any."""
    found = [
        r
        for r in rows
        if r["source"] == source and r["measurement"] == measurement and r["phase"] is None
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def whole_row(rows: list[dict[str, Any]], source: str, measurement: str) -> dict[str, Any]:
    """The whole-system row of one source and measurement, which must be there."""
    row = whole(rows, source, measurement)
    assert row is not None, (source, measurement)
    return row


def production_rows(folder: str) -> list[dict[str, Any]] | None:
    """Rows of details_1 when captured with a 200, else of production.json; None if not JSON."""
    text = body(folder, "production.json_details_1") or body(folder, "production.json")
    if text is None:
        return None
    try:
        return parse_production_json(text)
    except EnvoyParseError:
        return None


def primary(folder: str) -> tuple[dict[str, Any] | None, str | None]:
    rows = production_rows(folder)
    if rows is not None:
        eim = whole(rows, "eim", "production")
        if eim is not None:
            return eim, "eim"
        inverters = whole(rows, "inverters", "production")
        return inverters, ("inverters" if inverters else None)
    text = body(folder, "api_v1_production")
    v1 = parse_api_v1_production(text) if text is not None else []
    return (v1[0], "api_v1") if v1 else (None, None)


def meter_count(folder: str) -> int:
    meters, readings = body(folder, "ivp_meters"), body(folder, "ivp_meters_readings")
    if meters is None or readings is None:
        return 0
    try:
        return sum(r["phase"] is None for r in parse_meters(meters, readings))
    except EnvoyParseError:
        return 0


def inverter_count(folder: str) -> int | None:
    text = body(folder, "api_v1_production_inverters")
    if text is None:
        return None
    try:
        return len({r["serial_number"] for r in parse_inverters_v1(text)})
    except EnvoyParseError:
        return None


# --- every folder against the hand-read table ----------------------------------------------


def test_table_covers_every_folder() -> None:
    folders = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
    assert sorted(e.folder for e in EXPECTED) == folders
    assert len(EXPECTED) == 19


@pytest.mark.parametrize("exp", EXPECTED, ids=lambda e: e.folder)
def test_folder(exp: Expected) -> None:
    info = parse_info(body(exp.folder, "info") or "")
    assert (info.serial, info.firmware) == (exp.serial, exp.firmware)
    assert (info.version >= (3, 9)) == exp.supported

    reading, source = primary(exp.folder)
    assert source == exp.production_source
    assert (reading["w_now"] if reading else None) == exp.production_w
    assert (reading["wh_lifetime"] if reading else None) == exp.lifetime_wh

    rows = production_rows(exp.folder) or []
    total = whole(rows, "eim", "total-consumption")
    net = whole(rows, "eim", "net-consumption")
    assert (total["w_now"] if total else None) == exp.consumption_w
    assert (net["w_now"] if net else None) == exp.net_consumption_w

    assert inverter_count(exp.folder) == exp.inverter_count
    assert meter_count(exp.folder) == exp.meters


@pytest.mark.parametrize("exp", EXPECTED, ids=lambda e: e.folder)
def test_row_types(exp: Expected) -> None:
    """Whatever the firmware sends (int or float), the row types are the same."""
    for row in production_rows(exp.folder) or []:
        assert isinstance(row["w_now"], float) and isinstance(row["wh_lifetime"], float)
        assert row["wh_today"] is None or isinstance(row["wh_today"], float)
        assert row["reading_at"] is None or (
            isinstance(row["reading_at"], int) and row["reading_at"] > 0
        )
        assert row["phase"] in (None, "L1", "L2", "L3")
        assert row["source"] in ("eim", "inverters")
    text = body(exp.folder, "api_v1_production_inverters")
    for row in parse_inverters_v1(text) if text else []:
        assert isinstance(row["serial_number"], str) and isinstance(row["last_report_at"], int)


# --- /info ---------------------------------------------------------------------------------


def test_info_fields() -> None:
    old = parse_info(raw("3.7.0", "info"))
    assert old.version == (3, 7, 0)
    assert old.part_number == "800-00069-r05"
    assert old.imeter is None  # no <imeter> on 3.x
    assert old.web_tokens is False
    assert parse_info(raw("3.9.36", "info")).version == (3, 9, 36)
    assert parse_info(raw("4.10.35", "info")).imeter is True
    assert parse_info(raw("5.0.62", "info")).imeter is False
    new = parse_info(raw("8.2.4345_with_device_data", "info"))
    assert new.version == (8, 2, 4345)
    assert new.web_tokens is True
    assert new.part_number == "800-00649-r01"


@pytest.mark.parametrize("exp", EXPECTED, ids=lambda e: e.folder)
def test_web_tokens_from_firmware_7(exp: Expected) -> None:
    info = parse_info(raw(exp.folder, "info"))
    assert info.web_tokens == (info.version >= (7,))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Error: 401",
        "<html><body><h2>401 Unauthorized</h2></body></html>",
        "<?xml version='1.0'?><envoy_info><device><pn>800-00069-r05</pn></device></envoy_info>",
        "<envoy_info><device><sn>   </sn></device>",
    ],
)
def test_info_without_serial_raises(text: str) -> None:
    with pytest.raises(EnvoyParseError):
        parse_info(text)


def test_firmware_with_odd_characters() -> None:
    text = "<envoy_info><device><sn>1</sn><software>M4.2.33b</software></device></envoy_info>"
    assert parse_info(text).version == (4, 2, 33)


# --- production.json -----------------------------------------------------------------------


def test_inactive_ct_entries_give_no_rows() -> None:
    rows = parse_production_json(raw("7.3.130_no_consumption", "production.json"))
    assert {r["measurement"] for r in rows if r["source"] == "eim"} == {"production"}
    rows = parse_production_json(raw("7.6.175_total", "production.json"))
    assert [r["source"] for r in rows] == ["inverters"]
    assert rows[0]["active_count"] == 14


def test_inactive_eim_lines_are_dropped_too() -> None:
    body = json.loads(raw("7.3.466_with_cts_3phase", "production.json"))
    body["consumption"][0]["activeCount"] = 0
    rows = parse_production_json(json.dumps(body))
    assert not [r for r in rows if r["measurement"] == "total-consumption"]
    assert len([r for r in rows if r["measurement"] == "net-consumption"]) == 4


def test_consumption_selected_by_measurement_type() -> None:
    text = raw("4.10.35", "production.json")
    swapped = json.loads(text)
    swapped["consumption"].reverse()
    assert swapped["consumption"][0]["measurementType"] == "net-consumption"
    for rows in (parse_production_json(text), parse_production_json(json.dumps(swapped))):
        assert whole_row(rows, "eim", "total-consumption")["w_now"] == 806.405
        assert whole_row(rows, "eim", "net-consumption")["w_now"] == 640.874


def test_consumption_without_measurement_type_is_skipped() -> None:
    body = json.loads(raw("4.10.35", "production.json"))
    del body["consumption"][0]["measurementType"]
    rows = parse_production_json(json.dumps(body))
    assert whole(rows, "eim", "total-consumption") is None
    assert whole_row(rows, "eim", "net-consumption")["w_now"] == 640.874


def test_production_eim_without_measurement_type_is_production() -> None:
    """M4.2.33 has no measurementType on the production eim entry."""
    body = json.loads(raw("4.10.35", "production.json"))
    del body["production"][1]["measurementType"]
    assert (
        whole_row(parse_production_json(json.dumps(body)), "eim", "production")["w_now"] == 165.53
    )


def test_lines_become_phases_and_zero_filled_lines_are_skipped() -> None:
    rows = parse_production_json(raw("8.3.1598_collar", "production.json"))
    phases = {
        m: [r["phase"] for r in rows if r["measurement"] == m and r["phase"]] for m in MEASURES
    }
    # The third line is all zeros on this split-phase system.
    assert phases == {m: ["L1", "L2"] for m in MEASURES}
    l2 = next(r for r in rows if r["measurement"] == "production" and r["phase"] == "L2")
    assert (l2["w_now"], l2["wh_lifetime"], l2["wh_today"]) == (0.0, 23572.321, 23572.321)
    assert l2["reading_at"] == 1752974748


def test_line_with_zero_power_but_a_counter_is_kept() -> None:
    """7.3.466 production L2 has wNow 0.0 but whLifetime 1241245.645: a real, idle phase."""
    rows = parse_production_json(raw("7.3.466_with_cts_3phase", "production.json"))
    prod = [r for r in rows if r["source"] == "eim" and r["measurement"] == "production"]
    assert [r["phase"] for r in prod] == [None, "L1", "L2", "L3"]
    assert (prod[2]["w_now"], prod[2]["wh_lifetime"]) == (0.0, 1241245.645)


def test_details_and_plain_production() -> None:
    folder = "8.3.5169_with_generator"
    detailed = parse_production_json(raw(folder, "production.json_details_1"))
    plain = parse_production_json(raw(folder, "production.json"))
    assert len(detailed) == 4 + 3 * 2  # inverters + 3 eim, each with 2 lines
    assert len(plain) == 4
    assert whole_row(plain, "eim", "production")["w_now"] == 2882.137
    # /production (no .json) on 7+ is the same JSON without lines.
    slow = parse_production_json(raw("7.6.175_with_cts", "production"))
    assert whole_row(slow, "eim", "production")["w_now"] == 487.903  # a separate capture


def test_night_inverters_entry_is_kept() -> None:
    rows = parse_production_json(raw("7.6.185_with_cts_and_battery_3t", "production.json"))
    inverters = whole(rows, "inverters", "production")
    assert inverters == {
        "reading_at": None,
        "measurement": "production",
        "source": "inverters",
        "phase": None,
        "w_now": 0.0,
        "wh_lifetime": 45349.0,
        "wh_today": None,
        "active_count": 5,
    }
    eim = whole_row(rows, "eim", "production")
    assert (eim["reading_at"], eim["wh_today"], eim["active_count"]) == (1695769629, 0.956, 1)


def test_storage_is_ignored() -> None:
    rows = parse_production_json(raw("8.2.4382_ACB", "production.json"))
    assert {r["measurement"] for r in rows} == set(MEASURES)


def test_odd_records_are_skipped_not_fatal() -> None:
    body = json.loads(raw("4.10.35", "production.json"))
    body["production"].insert(0, "garbage")
    body["production"].append({"type": "eim", "activeCount": 1, "measurementType": "production"})
    body["production"].append({"type": "rgms", "activeCount": 1, "wNow": 1, "whLifetime": 2})
    rows = parse_production_json(json.dumps(body))
    assert len(rows) == 4
    assert whole_row(rows, "eim", "production")["w_now"] == 165.53


# --- /api/v1/production --------------------------------------------------------------------


def test_api_v1_production_row() -> None:
    assert parse_api_v1_production(raw("3.17.3", "api_v1_production")) == [
        {
            "reading_at": None,
            "measurement": "production",
            "source": "inverters",
            "phase": None,
            "w_now": 5463.0,
            "wh_lifetime": 93706280.0,
            "wh_today": 5481.0,
            "active_count": None,
        }
    ]


def test_api_v1_all_zero_is_no_data() -> None:
    assert parse_api_v1_production(raw("7.6.175_total", "api_v1_production")) == []
    assert parse_api_v1_production(raw("8.3.1598_collar", "api_v1_production")) == []
    # Night with a non-zero week: a real reading of 0 W.
    night = parse_api_v1_production(raw("7.6.185_with_cts_and_battery_3t", "api_v1_production"))
    assert [(r["w_now"], r["wh_today"]) for r in night] == [(0.0, 0.0)]


# --- error bodies --------------------------------------------------------------------------

ERROR_BODIES = {
    "html_page_not_found": ("3.7.0", "production.json"),
    "html_error_r3_9": ("3.9.36", "production.json"),
    "html_legacy_production": ("3.17.3", "production"),
    "html_401": ("4.10.35", "production"),
    "json_404": ("3.7.0", "ivp_ensemble_inventory"),
}
INLINE_ERRORS = {
    "text_401": "Error: 401",
    "empty": "",
    "blank": "  \n",
    "json_401_r3_9": '{"status":401,"error":"","info":"Authentication required","moreInfo":""}',
    "truncated": '{"production":[{"type":"inverters"',
}
PARSERS = {
    "production_json": parse_production_json,
    "api_v1_production": parse_api_v1_production,
    "inverters_v1": parse_inverters_v1,
    "device_data": lambda text: parse_device_data(text),
    "meters": lambda text: parse_meters(text, "[]"),
    "meter_readings": lambda text: parse_meters("[]", text),
}


@pytest.mark.parametrize("parser", PARSERS.values(), ids=PARSERS.keys())
@pytest.mark.parametrize("source", ERROR_BODIES.values(), ids=ERROR_BODIES.keys())
def test_fixture_error_bodies_raise(parser: Any, source: tuple[str, str]) -> None:
    with pytest.raises(EnvoyParseError):
        parser(raw(*source))


@pytest.mark.parametrize("parser", PARSERS.values(), ids=PARSERS.keys())
@pytest.mark.parametrize("text", INLINE_ERRORS.values(), ids=INLINE_ERRORS.keys())
def test_inline_error_bodies_raise(parser: Any, text: str) -> None:
    with pytest.raises(EnvoyParseError):
        parser(text)


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        (parse_production_json, "[]"),
        (parse_production_json, '{"storage": []}'),
        (parse_production_json, '{"production": {}}'),
        (parse_api_v1_production, "[]"),
        (parse_api_v1_production, '{"wattHoursToday": 1}'),
        (parse_inverters_v1, "{}"),
        (parse_device_data, "[]"),
        (parse_device_data, "{}"),
    ],
)
def test_wrong_top_level_shape_raises(parser: Any, text: str) -> None:
    with pytest.raises(EnvoyParseError):
        parser(text)


# --- /api/v1/production/inverters ----------------------------------------------------------


def test_inverters_v1_keeps_acb_and_old_firmware_rows() -> None:
    rows = parse_inverters_v1(raw("8.2.4382_ACB", "api_v1_production_inverters"))
    assert sorted(r["dev_type"] for r in rows) == [1] * 17 + [11] * 3
    old = parse_inverters_v1(raw("3.17.3", "api_v1_production_inverters"))
    assert old[0] == {
        "serial_number": "121512041640",
        "last_report_at": 1618082927,
        "watts": 200,
        "max_watts": 249,
        "dev_type": None,
    }


def test_inverters_v1_skips_records_without_key_fields() -> None:
    items = json.loads(raw("7.6.175_with_cts", "api_v1_production_inverters"))
    items += [None, {"serialNumber": "x"}, {"lastReportDate": 1}]
    assert len(parse_inverters_v1(json.dumps(items))) == 7


# --- /ivp/pdm/device_data ------------------------------------------------------------------


def test_device_data_rows() -> None:
    rows, truncated = parse_device_data(raw("8.2.4345_with_device_data", "ivp_pdm_device_data"))
    assert truncated is False
    assert len(rows) == 15  # 15 pcu; the 2 eim devices are not inverters
    assert rows[0] == {
        "serial_number": "122344043197",
        "last_report_at": 1748576887,
        "watts": 255,
        "max_watts": 371,
        "dev_type": 1,
        "dc_voltage_v": 32.363,
        "dc_current_a": 8.078,
        "ac_voltage_v": 248.156,
        "ac_frequency_hz": 50.013,
        "temperature_c": 38,
        "energy_wh": 64.0,  # 230400 J / 3600
        "duration_s": 903,
    }
    rows, _ = parse_device_data(raw("8.3.5169_with_generator", "ivp_pdm_device_data"))
    assert len({r["serial_number"] for r in rows}) == 20


def test_device_data_truncated_flag() -> None:
    body = json.loads(raw("8.2.4345_with_device_data", "ivp_pdm_device_data"))
    assert (body["deviceCount"], body["deviceDataLimit"]) == (17, 50)
    body["deviceDataLimit"] = 17
    assert parse_device_data(json.dumps(body))[1] is True
    body["deviceDataLimit"] = 18
    assert parse_device_data(json.dumps(body))[1] is False


def test_device_data_skips_inactive_and_readingless_pcus() -> None:
    body = json.loads(raw("8.2.4345_with_device_data", "ivp_pdm_device_data"))
    ids = [k for k, v in body.items() if isinstance(v, dict) and v["devName"] == "pcu"]
    body[ids[0]].update(active=False, modGone=True)  # removed unit
    body[ids[1]]["channels"][0]["lastReading"] = {}  # no reading yet
    del body[ids[2]]["channels"][0]["lastReading"]["dcVoltageINmV"]  # odd field: still a row
    rows, _ = parse_device_data(json.dumps(body))
    assert len(rows) == 13
    assert rows[0]["serial_number"] == body[ids[2]]["sn"]
    assert rows[0]["dc_voltage_v"] is None


# --- /ivp/meters + readings ----------------------------------------------------------------


def test_meters_join_by_eid_and_skip_unknown_eid() -> None:
    folder = "8.3.1598_collar"
    meters, readings = raw(folder, "ivp_meters"), raw(folder, "ivp_meters_readings")
    assert (len(json.loads(meters)), len(json.loads(readings))) == (7, 8)
    rows = parse_meters(meters, readings)
    whole_rows = [r for r in rows if r["phase"] is None]
    assert [r["measurement_type"] for r in whole_rows] == [
        "production",
        "net-consumption",
        "storage",
        "backfeed",
        "load",
        "evse",
        "pv3p",
    ]
    assert 1023410688 not in {r["eid"] for r in rows}
    # Order of readings does not matter: the join is by eid.
    shuffled = json.dumps(list(reversed(json.loads(readings))))
    assert parse_meters(meters, shuffled) == rows


def test_meter_rows_and_channels() -> None:
    folder = "4.10.35"
    rows = parse_meters(raw(folder, "ivp_meters"), raw(folder, "ivp_meters_readings"))
    assert [(r["eid"], r["phase"]) for r in rows] == [
        (704643328, None),
        (704643328, "L1"),
        (704643328, "L2"),
        (704643584, None),
        (704643584, "L1"),
        (704643584, "L2"),
    ]
    assert rows[0] == {
        "eid": 704643328,
        "measurement_type": "production",
        "state": "enabled",
        "phase_mode": "split",
        "phase": None,
        "reading_at": 1695301419,
        "active_power": 166.489,
        "energy_delivered": 26785327.449,
        "energy_received": 0.001,
        "apparent_power": rows[0]["apparent_power"],
        "reactive_power": rows[0]["reactive_power"],
        "voltage": 247.659,
        "current": 3.692,
        "frequency": rows[0]["frequency"],
        "power_factor": rows[0]["power_factor"],
    }
    assert rows[4]["energy_received"] == 8001771.78  # net L1 export counter


def test_meters_disabled_ct_keeps_state() -> None:
    folder = "7.6.175_total"
    rows = parse_meters(raw(folder, "ivp_meters"), raw(folder, "ivp_meters_readings"))
    assert {r["state"] for r in rows} == {"disabled"}


def test_meters_empty_and_errors() -> None:
    assert parse_meters(raw("5.0.62", "ivp_meters"), raw("5.0.62", "ivp_meters_readings")) == []
    with pytest.raises(EnvoyParseError):
        parse_meters('{"error": "404 - Not Found"}', "[]")
    with pytest.raises(EnvoyParseError):
        parse_meters("[]", '{"error": "404 - Not Found"}')
