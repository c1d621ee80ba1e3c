"""An alarm open for a year costs the cloud tick no more than a day-old one (issue 13, item 5).

The real cloud assets run tick after tick against the simulator, which counts every data
request. Both ways the API might select alarms for a time window (by start, or by activity;
Enphase does not say) are tried.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from solar_pipeline.partitions import DAILY
from solar_pipeline.resources import DuckDBWarehouse, EnphaseCloudResource
from solar_pipeline.simulator import EnphaseCloudSimulator
from solar_pipeline_tests.conftest import SYSTEM, make_enphase
from solar_pipeline_tests.helpers import ALL_CLOUD, query, run_range

DAY = 86_400
# summary, events, open_alarms, cleared alarms, 3 telemetry; +devices on the first tick,
# +open_events while an event is open, +one read to learn when a cleared alarm ended.
TICK_BOUND = 10


@pytest.fixture(params=["start", "overlap"])
def board_sim(request) -> Iterator[EnphaseCloudSimulator]:
    with EnphaseCloudSimulator(
        [SYSTEM], per_minute=50, per_month=50_000, window_match=request.param
    ) as s:
        yield s


def _cloud(
    sim: EnphaseCloudSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> EnphaseCloudResource:
    monkeypatch.setenv("ENPHASE_REFRESH_TOKEN", sim.mint_refresh_token())
    return make_enphase(sim, tmp_path)


def _tick(sim: EnphaseCloudSimulator, enphase, warehouse) -> tuple[int, dict[str, int]]:
    """Run the cloud tick for today; its data requests as the simulator counted them."""
    before = dict(sim.stats.data_requests)
    today = DAILY.get_partition_key_for_timestamp(time.time())
    assert run_range(enphase, warehouse, today, today, selection=ALL_CLOUD).success
    spent = {k: v - before.get(k, 0) for k, v in sim.stats.data_requests.items()}
    spent = {k: v for k, v in spent.items() if v}
    return sum(spent.values()), spent


def _alarm(warehouse: DuckDBWarehouse, alarm_id: str) -> list[tuple]:
    return query(
        warehouse,
        "SELECT cleared, epoch(started_at)::BIGINT, epoch(ended_at)::BIGINT "
        "FROM enphase.alarms WHERE alarm_id = ?",
        [alarm_id],
    )


def _seen_cleared(warehouse: DuckDBWarehouse, alarm_id: str) -> int | None:
    (row,) = query(
        warehouse,
        "SELECT epoch(seen_cleared_at)::BIGINT FROM enphase.alarms WHERE alarm_id = ?",
        [alarm_id],
    )
    return row[0]


def _event_status(warehouse: DuckDBWarehouse, start: int) -> list[tuple]:
    return query(
        warehouse,
        "SELECT status, epoch(ended_at)::BIGINT FROM enphase.events "
        "WHERE event_type_id = 8 AND epoch(started_at) = ?",
        [start],
    )


def test_a_year_old_alarm_costs_a_constant_per_tick_and_is_seen_to_clear(
    board_sim: EnphaseCloudSimulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    warehouse: DuckDBWarehouse,
) -> None:
    sim = board_sim
    enphase = _cloud(sim, tmp_path, monkeypatch)
    start = int(time.time()) - 365 * DAY
    alarm_id = sim.raise_alarm(start)

    first, by_endpoint = _tick(sim, enphase, warehouse)
    assert first <= TICK_BOUND, by_endpoint
    assert _alarm(warehouse, alarm_id) == [(False, start, None)]
    assert _event_status(warehouse, start) == [("open", None)]

    second, by_endpoint = _tick(sim, enphase, warehouse)
    assert second <= first, by_endpoint
    assert by_endpoint.get("alarms", 0) <= 1, by_endpoint  # only the new window
    assert _alarm(warehouse, alarm_id) == [(False, start, None)]
    # The answer that told us is kept verbatim.
    ((body,),) = query(
        warehouse,
        "SELECT body FROM raw.enphase_responses WHERE endpoint = 'open_alarms' "
        "ORDER BY id DESC LIMIT 1",
    )
    listed = {a["id"]: a for a in json.loads(body)["alarms"]}
    assert listed[alarm_id]["alarm_start_time"] == start

    cleared_at = int(time.time()) - 1
    sim.clear_alarm(alarm_id, at=cleared_at)
    third, by_endpoint = _tick(sim, enphase, warehouse)
    seen_by = int(time.time())
    assert third <= TICK_BOUND, by_endpoint
    ((cleared, started, ended),) = _alarm(warehouse, alarm_id)
    seen = _seen_cleared(warehouse, alarm_id)
    assert cleared is True and started == start
    if sim.alarm_board.match == "overlap":
        # The new window holds the alarm (it was active in it) with Enphase's clear time.
        assert ended == cleared_at
    else:
        # Its start is beyond the 9-month look-back: no window can return it. It is shown
        # cleared, with the time we saw it gone from open_alarms (after the clear, this tick).
        assert ended is None and seen is not None and cleared_at <= seen <= seen_by
    assert [s for s, _ in _event_status(warehouse, start)] == ["closed"]

    fourth, by_endpoint = _tick(sim, enphase, warehouse)
    assert fourth <= second, by_endpoint  # the clear is not chased again
    assert _alarm(warehouse, alarm_id) == [(cleared, started, ended)]


def test_a_cleared_alarm_within_the_look_back_gets_its_clear_time_from_one_read(
    sim: EnphaseCloudSimulator,
    enphase: EnphaseCloudResource,
    warehouse: DuckDBWarehouse,
) -> None:
    # Default simulator: windows select alarms by start, so this week's window never holds an
    # alarm raised 60 days ago; one read of the week it started in does.
    start = int(time.time()) - 60 * DAY
    alarm_id = sim.raise_alarm(start)
    _tick(sim, enphase, warehouse)
    second, _ = _tick(sim, enphase, warehouse)
    assert _alarm(warehouse, alarm_id) == [(False, start, None)]

    cleared_at = int(time.time()) - 1
    sim.clear_alarm(alarm_id, at=cleared_at)
    third, by_endpoint = _tick(sim, enphase, warehouse)
    assert third <= TICK_BOUND, by_endpoint
    assert by_endpoint["alarms"] == 2, by_endpoint  # the new window + the week it started in
    assert _alarm(warehouse, alarm_id) == [(True, start, cleared_at)]

    fourth, by_endpoint = _tick(sim, enphase, warehouse)
    assert fourth <= second and by_endpoint["alarms"] == 1, by_endpoint


def test_clears_in_different_weeks_are_looked_up_one_read_per_tick_and_only_once(
    sim: EnphaseCloudSimulator,
    enphase: EnphaseCloudResource,
    warehouse: DuckDBWarehouse,
) -> None:
    now = int(time.time())
    older = sim.raise_alarm(now - 90 * DAY, event_type_id=9)
    newer = sim.raise_alarm(now - 60 * DAY)
    _tick(sim, enphase, warehouse)
    usual, _ = _tick(sim, enphase, warehouse)
    for alarm_id in (older, newer):
        sim.clear_alarm(alarm_id, at=int(time.time()) - 1)

    costs, reads = [], []
    for _ in range(3):
        cost, by_endpoint = _tick(sim, enphase, warehouse)
        costs.append(cost)
        reads.append(by_endpoint["alarms"])
    assert max(costs) <= TICK_BOUND, costs
    # Both cleared at once, started in different weeks: one extra read each, on two ticks.
    assert reads == [2, 2, 1], reads
    assert costs[-1] == usual
    for alarm_id in (older, newer):
        ((cleared, _, ended),) = _alarm(warehouse, alarm_id)
        assert cleared is True and ended is not None


def test_open_lists_not_parsed_yet_are_not_archived(
    sim: EnphaseCloudSimulator,
    enphase: EnphaseCloudResource,
    warehouse: DuckDBWarehouse,
    tmp_path: Path,
) -> None:
    from solar_pipeline.warehouse.archive import archive_raw
    from solar_pipeline.warehouse.db import connect

    sim.raise_alarm(int(time.time()) - 30 * DAY)
    today = DAILY.get_partition_key_for_timestamp(time.time())
    raw_only = [k for k in ALL_CLOUD if k.path[0] == "raw"]
    assert run_range(enphase, warehouse, today, today, selection=raw_only).success
    with connect(warehouse.path) as conn:
        conn.execute("UPDATE raw.enphase_responses SET fetched_at = fetched_at - INTERVAL 400 DAY")
    archive_raw(warehouse.path, tmp_path / "data", 300, SYSTEM.timezone)
    left = query(warehouse, "SELECT DISTINCT endpoint FROM raw.enphase_responses ORDER BY 1")
    # The alarms and events parsers have not read these yet: they stay.
    assert {"open_alarms", "open_events", "alarms", "events"} <= {e for (e,) in left}
