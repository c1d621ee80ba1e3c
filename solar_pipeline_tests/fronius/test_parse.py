"""Parsers on simulator answers and on the malformed or odd bodies real devices send."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from solar_pipeline.sources.fronius.errors import FroniusApiError, FroniusParseError
from solar_pipeline.sources.fronius.parse import (
    SOURCE_METER,
    archive_daily,
    archive_intervals,
    etotal_intervals,
    meter_intervals,
    parse_envelope,
    parse_inverter_system,
    parse_meter_system,
    parse_power_flow,
)
from solar_pipeline_tests.fronius.conftest import TZ, make_client


def _envelope(data, code: int = 0, reason: str = "", stamp="2026-06-15T12:00:03+02:00") -> str:
    head = {"Status": {"Code": code, "Reason": reason, "UserMessage": ""}, "Timestamp": stamp}
    return json.dumps({"Body": {"Data": data}, "Head": head})


def _archive(start: str, values: dict[str, float], channel="EnergyReal_WAC_Sum_Produced") -> str:
    node = {"Data": {channel: {"Unit": "Wh", "Values": values}}, "Start": start, "End": start}
    return _envelope({"inverter/1": node})


def test_simulator_answers_parse_consistently(datamanager, clock, records):
    client = make_client(datamanager, records)
    flow = parse_power_flow(client.power_flow().body, TZ)
    inv = parse_inverter_system(client.inverter_system().body, TZ)
    [meter] = parse_meter_system(client.meter_system().body, TZ)
    assert flow.e_total_wh == inv.total_wh == datamanager.e_total_at(clock.now)
    assert flow.e_day_wh == inv.day_wh > 0
    assert flow.device_types == (123,) and not flow.is_gen24
    assert flow.p_pv_w == inv.pac_w
    # Datamanager times are site-local with their offset (CEST in June).
    assert flow.at.utcoffset() == timedelta(hours=2)
    assert meter.location == 0 and meter.at.timestamp() == int(clock.now)
    assert meter.consumed_wh > 0 and meter.produced_wh > 0


def test_meter_counters_become_import_and_export_intervals(datamanager, clock, records):
    client = make_client(datamanager, records)
    readings = []
    for _ in range(4):
        readings += parse_meter_system(client.meter_system().body, TZ)
        clock.now += 900
    intervals = meter_intervals(readings, max_power_w=20_000)
    assert {iv.source for iv in intervals} == {SOURCE_METER}
    imported = sum(iv.imported_wh for iv in intervals if iv.imported_wh is not None)
    exported = sum(iv.exported_wh for iv in intervals if iv.exported_wh is not None)
    assert imported == readings[-1].consumed_wh - readings[0].consumed_wh
    assert exported == readings[-1].produced_wh - readings[0].produced_wh
    assert len(intervals) == 6  # 3 import + 3 export


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (None, "no body"),
        ("<html>404</html>", "not JSON"),
        ('{"Body": {}}', "Head missing"),
        (_envelope({}), "Site missing"),
        (_envelope({"Site": {"E_Total": "12 kWh"}}), "E_Total = '12 kWh' is not a number"),
        (_envelope({"Site": {"E_Total": 1.0}}, stamp=None), "Timestamp missing"),
        (_envelope({"Site": {}}, stamp="yesterday"), "not RFC 3339"),
    ],
)
def test_malformed_power_flow_is_a_parse_error(body, match):
    with pytest.raises(FroniusParseError, match=match):
        parse_power_flow(body, TZ)


def test_absent_and_null_fields_are_unknown_not_errors():
    flow = parse_power_flow(_envelope({"Site": {"E_Day": None, "P_PV": 10}}), TZ)
    assert flow.e_day_wh is None and flow.e_total_wh is None and flow.p_pv_w == 10.0
    assert etotal_intervals([flow, flow], max_power_w=5000) == []


def test_status_code_is_raised_with_the_device_reason():
    body = _envelope({}, code=12, reason="Device not available")
    with pytest.raises(FroniusApiError, match=r"Status\.Code 12: Device not available"):
        parse_power_flow(body, TZ)
    assert parse_envelope(body, "x", TZ).code == 12  # the raw header stays readable


def test_e_total_drop_is_flagged_not_negative():
    def flow(minute: int, total: float) -> str:
        stamp = f"2026-06-15T12:{minute:02d}:00+00:00"
        return _envelope({"Site": {"E_Total": total}}, stamp=stamp)

    flows = [parse_power_flow(flow(m, v), TZ) for m, v in [(0, 5e6), (5, 5e6 + 300), (10, 50)]]
    first, second = etotal_intervals(flows, max_power_w=5000)
    assert first.produced_wh == 300 and not first.flags
    assert second.produced_wh is None and second.flags == ("counter_reset",)


def test_naive_archive_start_is_site_local_on_a_dst_day():
    """Without an offset a time is the PV system's local time (documented); keys are seconds."""
    # 25-hour day: 00:00 local is CEST; the 300 keys cover 25 hours of real time.
    values = {str(300 * i): 1.0 for i in range(300)}
    intervals = archive_intervals(_archive("2026-10-25T00:00:00", values), TZ)
    assert intervals[0].start_at == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert intervals[-1].end_at == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)
    assert len(intervals) == 300


def test_daily_sum_keys_map_to_days_whether_real_or_nominal_seconds():
    start = "2026-10-24T00:00:00+02:00"
    real = {"0": 10.0, str(86400): 20.0, str(86400 + 90000): 30.0}
    nominal = {"0": 10.0, "86400": 20.0, "172800": 30.0}
    expected = {date(2026, 10, 24): 10.0, date(2026, 10, 25): 20.0, date(2026, 10, 26): 30.0}
    assert archive_daily(_archive(start, real), TZ) == expected
    assert archive_daily(_archive(start, nominal), TZ) == expected


def test_archive_sums_inverters_and_rejects_bad_keys():
    node = {"Unit": "Wh", "Values": {"0": 5, "300": None}}
    data = {
        f"inverter/{n}": {
            "Data": {"EnergyReal_WAC_Sum_Produced": node},
            "Start": "2026-06-15T00:00:00+02:00",
        }
        for n in (1, 2)
    }
    [iv] = archive_intervals(_envelope(data), TZ)
    assert iv.produced_wh == 10.0  # null values are "not logged", not zero
    bad = _archive("2026-06-15T00:00:00+02:00", {"noon": 1.0})
    with pytest.raises(FroniusParseError, match="not seconds"):
        archive_intervals(bad, TZ)
