"""Summary snapshots append; events and alarms upsert on their keys across overlapping fetches."""

import time

from solar_pipeline.partitions import DAILY
from solar_pipeline.simulator import solar_model
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.helpers import ALL_CLOUD, query, run_range


def _today() -> str:
    return DAILY.get_partition_key_for_timestamp(time.time())


def test_events_and_alarms_upsert_without_duplicates(sim, enphase, warehouse):
    today = _today()
    assert run_range(enphase, warehouse, today, today, selection=ALL_CLOUD).success
    now = time.time()
    expected_events = solar_model.events_between(SYSTEM, int(now) - 7 * 86400, int(now), int(now))
    events = query(
        warehouse,
        "SELECT event_type_id, status, serial_number, epoch(started_at) "
        "FROM enphase.events ORDER BY started_at",
    )
    assert len(events) == len(expected_events) > 0
    assert {e[1] for e in events} <= {"open", "closed", "info"}  # lower case
    assert [int(e[3]) for e in events] == sorted(e["event_start_time"] for e in expected_events)

    alarms = query(warehouse, "SELECT alarm_id, cleared FROM enphase.alarms")
    assert alarms, "the simulator raises one alarm a week"

    # A second tick re-fetches an overlapping window: rows are updated, never duplicated.
    assert run_range(enphase, warehouse, today, today, selection=ALL_CLOUD).success
    assert query(warehouse, "SELECT count(*) FROM enphase.events") == [(len(events),)]
    assert query(warehouse, "SELECT count(*) FROM enphase.alarms") == [(len(alarms),)]
    requests = query(
        warehouse,
        "SELECT json_extract_string(query, '$.start_time')::BIGINT "
        "FROM raw.enphase_responses WHERE endpoint = 'events' ORDER BY id",
    )
    assert len(requests) == 2 and requests[1][0] > requests[0][0]  # resumed, not the whole week

    summaries = query(
        warehouse, "SELECT system_id, status, summary_date FROM enphase.system_summary"
    )
    assert len(summaries) == 2 and summaries[0][0] == SYSTEM.system_id


def test_summary_snapshot_parse_is_incremental(sim, enphase, warehouse):
    today = _today()
    assert run_range(enphase, warehouse, today, today, selection=ALL_CLOUD).success
    first = query(warehouse, "SELECT raw_id FROM enphase.system_summary")
    # Re-running only the parser (no fetch) adds nothing: the watermark has moved past it.
    parse_only = [k for k in ALL_CLOUD if k.path == ["enphase", "system_summary"]]
    assert run_range(enphase, warehouse, today, today, selection=parse_only).success
    assert query(warehouse, "SELECT raw_id FROM enphase.system_summary") == first
