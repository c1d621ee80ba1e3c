import json
import subprocess
import sys
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from solar_pipeline.simulator import SystemSpec
from solar_pipeline.simulator import solar_model as m

SPEC = SystemSpec()
AMS = ZoneInfo(SPEC.timezone)


@pytest.mark.parametrize(
    ("day", "hours", "micro", "meter"),
    [
        (date(2025, 6, 21), 24, 288, 96),
        (date(2025, 3, 30), 23, 276, 92),
        (date(2025, 10, 26), 25, 300, 100),
    ],
)
def test_local_days_follow_dst(day: date, hours: int, micro: int, meter: int) -> None:
    start, end = m.local_day_bounds(SPEC, day)
    assert datetime.fromtimestamp(start, AMS).replace(tzinfo=None) == datetime(
        day.year, day.month, day.day
    )
    assert end - start == hours * 3600
    assert len(m.micro_intervals(SPEC, start, end)) == micro
    assert len(m.meter_production_intervals(SPEC, start, end)) == meter
    assert len(m.consumption_intervals(SPEC, start, end)) == meter


def test_micro_curve_is_plausible() -> None:
    start, end = m.local_day_bounds(SPEC, date(2025, 6, 21))
    intervals = m.micro_intervals(SPEC, start, end)
    assert [i["end_at"] for i in intervals] == list(range(start + 300, end + 1, 300))
    by_hour = {datetime.fromtimestamp(i["end_at"] - 1, AMS).hour: i for i in intervals}
    assert by_hour[2]["powr"] == 0 and by_hour[23]["powr"] == 0
    assert by_hour[13]["powr"] > 0
    for i in intervals:
        assert 0 <= i["powr"] < SPEC.size_w
        assert i["enwh"] == round(i["powr"] / 12)
        assert i["devices_reporting"] == SPEC.modules
    winter = m.local_day_bounds(SPEC, date(2025, 12, 21))
    winter_peak = max(i["powr"] for i in m.micro_intervals(SPEC, *winter))
    clear_summer = 0.82 * SPEC.size_w * 0.86
    assert winter_peak < clear_summer


def test_any_window_gives_the_same_numbers() -> None:
    start, end = m.local_day_bounds(SPEC, date(2025, 5, 4))
    whole = {i["end_at"]: i for i in m.micro_intervals(SPEC, start - 7200, end + 7200)}
    m._micro_day.cache_clear()
    piece = m.micro_intervals(SPEC, start + 36_000, start + 36_900)
    assert [i["end_at"] for i in piece] == [start + 36_300, start + 36_600, start + 36_900]
    assert all(whole[i["end_at"]] == i for i in piece)


def test_values_are_stable_across_processes() -> None:
    start, end = m.local_day_bounds(SPEC, date(2025, 5, 4))
    code = (
        "import json; from solar_pipeline.simulator import solar_model as m;"
        f"print(json.dumps(m.micro_intervals(m.SystemSpec(), {start}, {end})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == m.micro_intervals(SPEC, start, end)


def test_meter_reads_a_little_under_the_micros() -> None:
    start, end = m.local_day_bounds(SPEC, date(2025, 6, 21))
    micro = {i["end_at"]: i["enwh"] for i in m.micro_intervals(SPEC, start, end)}
    for q in m.meter_production_intervals(SPEC, start, end):
        assert q["end_at"] % 900 == 0
        assert q["wh_del"] == round(0.98 * sum(micro[q["end_at"] - k * 300] for k in range(3)))


def test_daily_totals_are_sums_of_the_day() -> None:
    day = date(2025, 10, 26)
    start, end = m.local_day_bounds(SPEC, day)
    totals = m.daily_totals(SPEC, day)
    assert totals["micro_wh"] == sum(i["enwh"] for i in m.micro_intervals(SPEC, start, end))
    assert totals["meter_wh"] == sum(
        i["wh_del"] for i in m.meter_production_intervals(SPEC, start, end)
    )
    assert totals["consumption_wh"] == sum(
        i["enwh"] for i in m.consumption_intervals(SPEC, start, end)
    )
    assert totals["production_wh"] == totals["meter_wh"] > 0
    unmetered = SystemSpec(has_production_meter=False)
    assert m.daily_totals(unmetered, day)["production_wh"] == totals["micro_wh"]


def test_consumption_profile() -> None:
    start, end = m.local_day_bounds(SPEC, date(2025, 2, 3))
    wh = [i["enwh"] for i in m.consumption_intervals(SPEC, start, end)]
    assert all(isinstance(v, int) and v > 0 for v in wh)
    night, evening = sum(wh[8:16]) / 8, sum(wh[74:80]) / 6  # 02:00-04:00 vs 18:30-20:00
    assert evening > 2 * night


def test_events_open_then_closed() -> None:
    day = date(2025, 6, 10)
    start, end = m.local_day_bounds(SPEC, day)
    (event,) = m.events_between(SPEC, start, end, now=end + 3600)
    begin = datetime.fromtimestamp(event["event_start_time"], AMS)
    assert (begin.hour, begin.minute // 10) == (23, 0)
    assert 300 <= event["event_end_time"] - event["event_start_time"] <= 1200
    assert event["status"] == "Closed" and event["event_type_id"] == 28
    assert event["serial_number"] == "202241095486"
    (running,) = m.events_between(SPEC, start, end, now=event["event_start_time"] + 1)
    assert running["status"] == "Open" and running["event_end_time"] is None
    assert m.events_between(SPEC, start, end, now=event["event_start_time"] - 1) == []


def test_one_alarm_a_week() -> None:
    start = m.local_day_bounds(SPEC, date(2025, 6, 2))[0]
    end = start + 7 * 86400
    (alarm,) = m.alarms_between(SPEC, start, end, now=end + 86400)
    assert alarm["id"] == f"{SPEC.system_id}.28.{alarm['alarm_start_time']}"
    assert alarm["cleared"] is True and alarm["severity"] == 3
    assert alarm["events"] == [
        {
            "serial_number": "202241095486",
            "start_date": alarm["alarm_start_time"],
            "end_date": alarm["alarm_end_time"],
        }
    ]
    assert m.alarms_between(SPEC, start, alarm["alarm_start_time"], now=end) == []
