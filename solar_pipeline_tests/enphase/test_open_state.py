"""Open alarms and events: the merge of window answers with the open lists, the fetch plan's
bounds, and the new parsers under hostile JSON."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from solar_pipeline.sources.enphase import parse, plan
from solar_pipeline.sources.enphase.errors import ParseError
from solar_pipeline.sources.enphase.open_state import Answer, merge_alarms, merge_events
from solar_pipeline_tests.faults.test_parser_properties import PROPERTY, json_values

SID = 4021157
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 8, tzinfo=UTC)
T2 = datetime(2026, 1, 1, 16, tzinfo=UTC)
NOW = 1_800_000_000
DAY = 86_400


def _alarm(alarm_id: str, cleared: bool = False, ended: datetime | None = None) -> dict:
    return {
        "system_id": SID,
        "alarm_id": alarm_id,
        "severity": 2,
        "event_type_id": 8,
        "cleared": cleared,
        "started_at": datetime(2025, 1, 1, tzinfo=UTC),
        "ended_at": ended,
    }


def test_an_alarm_missing_from_a_later_open_list_is_cleared_and_keeps_when_we_saw_it():
    answers = [
        Answer("open_alarms", 1, T0, [_alarm("a"), _alarm("b")]),
        Answer("open_alarms", 2, T1, [_alarm("b")]),
    ]
    rows = merge_alarms({}, answers)
    assert rows["a"]["cleared"] is True and rows["a"]["seen_cleared_at"] == T1
    assert rows["a"]["ended_at"] is None and rows["a"]["raw_id"] == 1
    assert rows["b"]["cleared"] is False and rows["b"]["seen_cleared_at"] is None

    # A later window answer brings Enphase's clear time; what we saw stays.
    stored = {"a": rows["a"]}
    window = Answer("alarms", 3, T2, [_alarm("a", cleared=True, ended=T1)])
    (row,) = merge_alarms(stored, [window]).values()
    assert (row["cleared"], row["ended_at"], row["seen_cleared_at"], row["raw_id"]) == (
        True,
        T1,
        T1,
        3,
    )


def test_the_newest_answer_wins_and_malformed_order_cannot_reopen_silently():
    # Cleared in a window answer, then listed open again by a later open_alarms: open again.
    answers = [
        Answer("alarms", 1, T0, [_alarm("a", cleared=True, ended=T0)]),
        Answer("open_alarms", 2, T1, [_alarm("a")]),
    ]
    (row,) = merge_alarms({}, answers).values()
    assert row["cleared"] is False and row["ended_at"] is None
    # An open list that does not mention an already cleared alarm changes nothing about it.
    stored = {"a": {**_alarm("a", cleared=True, ended=T0), "seen_cleared_at": None}}
    assert merge_alarms(stored, [Answer("open_alarms", 3, T2, [])]) == {}


def test_an_event_missing_from_open_events_is_closed():
    opened = {
        "system_id": SID,
        "event_type_id": 8,
        "status": "open",
        "serial_number": "x",
        "started_at": T0,
        "ended_at": None,
    }
    key = (SID, 8, "x", T0)
    rows = merge_events({key: opened}, [Answer("open_events", 5, T1, [])])
    assert rows[key]["status"] == "closed" and rows[key]["ended_at"] is None
    # Listed again: open.
    rows = merge_events(rows, [Answer("open_events", 6, T2, [opened])])
    assert rows[key]["status"] == "open"


def test_catching_up_after_downtime_is_bounded_per_tick_and_resumes():
    since = NOW - 60 * DAY
    first = plan.window_chunks(since, NOW)
    assert len(first) == plan.MAX_WINDOWS_PER_TICK == 2
    assert first[0][0] == since - plan.EVENT_OVERLAP_S
    second = plan.window_chunks(first[-1][1], NOW)
    assert second[0][0] == first[-1][1] - plan.EVENT_OVERLAP_S  # resumes, skips nothing
    # Beyond the look-back the windows start at its edge.
    assert plan.window_chunks(NOW - 400 * DAY, NOW)[0][0] == NOW - plan.EVENT_LOOKBACK_S


def test_clear_time_reads_share_a_week_skip_what_cannot_be_asked_and_are_capped():
    resume, until = NOW - 9 * 3600, NOW
    starts = [NOW - 60 * DAY, NOW - 60 * DAY + DAY, NOW - 90 * DAY, NOW - 365 * DAY, NOW - 3600]
    (read,) = plan.clear_time_fetches(starts, resume, until, NOW)
    # The oldest askable week first; a year back is past the look-back, the last one was in
    # this tick's window.
    assert read.params["start_time"] == NOW - 90 * DAY - plan.EVENT_OVERLAP_S
    both = plan.clear_time_fetches(starts, resume, until, NOW, limit=5)
    assert [f.params["start_time"] for f in both] == [
        NOW - 90 * DAY - plan.EVENT_OVERLAP_S,
        NOW - 60 * DAY - plan.EVENT_OVERLAP_S,  # covers the alarm a day later too
    ]
    assert all(f.params["cleared"] == "true" for f in both)
    assert all(f.params["end_time"] - f.params["start_time"] <= plan.WEEK_S for f in both)
    # Never past the end of this tick's windows, so the next tick resumes where this one did.
    capped = plan.clear_time_fetches([NOW - 2 * DAY], resume, NOW - 5 * 3600, NOW)
    assert capped[0].params["end_time"] == NOW - 5 * 3600


def test_open_alarm_events_lists_only_events_still_open():
    body = {
        "system_id": SID,
        "alarms": [
            {
                "id": "1",
                "event_type_id": 8,
                "alarm_start_time": 5,
                "events": [
                    {"serial_number": "a", "start_date": 5, "end_date": None},
                    {"serial_number": "b", "start_date": 6, "end_date": 9},
                ],
            }
        ],
    }
    assert parse.open_alarm_events(body) == {(8, "a", 5)}
    (row,) = parse.parse_open_alarms(body)
    assert row["cleared"] is False and row["ended_at"] is None


_OPEN = parse.parse_open_alarms
_INSIDE = parse.open_alarm_events


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        (
            _INSIDE,
            '{"system_id": 1, "alarms": [{"id": "1", "event_type_id": 8, "alarm_start_time": 1,'
            ' "events": [{"serial_number": "a", "start_date": Infinity, "end_date": null}]}]}',
        ),
        (_INSIDE, '{"system_id": 1, "alarms": [{"event_type_id": NaN, "events": [{}]}]}'),
        (_OPEN, '{"system_id": 1, "alarms": [{"id": "1", "event_type_id": NaN}]}'),
        (_OPEN, '{"system_id": 1, "alarms": [{"id": "1", "event_type_id": 1e400}]}'),
        (
            parse.parse_events,
            '{"system_id": 1, "events": [{"status": "open", "event_type_id": -1e400}]}',
        ),
        (
            _OPEN,
            '{"system_id": 1, "alarms": [{"id": "1", "event_type_id": 8, '
            '"alarm_start_time": 1e400}]}',
        ),
        (_INSIDE, '{"system_id": 1, "alarms": [{"events": "no"}]}'),
        (_OPEN, '{"system_id": 1, "alarms": [' + "[" * 500 + "]" * 500 + "]}"),
        (_INSIDE, '{"system_id": 1, "alarms": [' + "[" * 500 + "]" * 500 + "]}"),
    ],
)
def test_open_alarms_parsers_flag_hostile_numbers_and_shapes(parser, text: str):
    with pytest.raises(ParseError):
        parser(json.loads(text))


open_alarms_bodies = st.fixed_dictionaries(
    {"system_id": st.integers() | json_values},
    optional={
        "alarms": st.lists(
            st.fixed_dictionaries(
                {"id": st.text() | json_values, "event_type_id": st.integers() | json_values},
                optional={
                    "alarm_start_time": st.integers() | json_values,
                    "events": st.lists(json_values, max_size=3) | json_values,
                },
            ),
            max_size=3,
        )
        | json_values
    },
)


@PROPERTY
@given(body=open_alarms_bodies | json_values)
def test_open_alarms_parsers_return_rows_or_raise_parse_error(body):
    body = json.loads(json.dumps(body))
    for parser in (parse.parse_open_alarms, parse.open_alarm_events):
        with contextlib.suppress(ParseError):  # flagged; any other exception fails the test
            parser(body)
