"""The cloud going through its faults run after run for the same day, as the schedule would meet
them: a 5xx burst, an HTML error page past the retries, answers slower than the timeout, the
month's quota gone, then recovery. test_client.py checks each fault alone; this checks that in
sequence every attempt is kept raw, each run reports what happened, the typed tables never hold
a row that is not the simulator's, and a good run afterwards needs nothing but itself.

The minute 429 is left to test_client.py: in a Dagster run the client waits the real minute out
(up to 61 s), which that test replaces with a shared fake clock.
"""

from __future__ import annotations

from datetime import date

from solar_pipeline.simulator import solar_model
from solar_pipeline_tests.conftest import SYSTEM, make_enphase
from solar_pipeline_tests.helpers import failure_message, query, run_range

DAY = "2025-06-10"
MICRO = "telemetry/production_micro"


def _typed(warehouse) -> dict[str, list[tuple]]:
    return {
        "micro": query(
            warehouse,
            "SELECT epoch(end_at)::BIGINT, wh FROM enphase.production_intervals "
            "WHERE source = 'micro' ORDER BY end_at",
        ),
        "consumption": query(
            warehouse,
            "SELECT epoch(end_at)::BIGINT, wh FROM enphase.consumption_intervals ORDER BY end_at",
        ),
        "daily": query(warehouse, "SELECT day, produced_wh FROM enphase.daily_energy"),
    }


def _truth() -> dict[str, list[tuple]]:
    day = date.fromisoformat(DAY)
    start, end = solar_model.local_day_bounds(SYSTEM, day)
    return {
        "micro": [
            (i["end_at"], i["enwh"]) for i in solar_model.micro_intervals(SYSTEM, start, end)
        ],
        "consumption": [
            (i["end_at"], i["enwh"]) for i in solar_model.consumption_intervals(SYSTEM, start, end)
        ],
        "daily": [(day, solar_model.daily_totals(SYSTEM, day)["production_wh"])],
    }


def _raw_since(warehouse, last_id: int) -> list[tuple]:
    return query(
        warehouse,
        "SELECT endpoint, status, content_type, valid_json FROM raw.enphase_responses "
        "WHERE id > ? ORDER BY id",
        [last_id],
    )


def _last_raw_id(warehouse) -> int:
    return query(warehouse, "SELECT coalesce(max(id), 0) FROM raw.enphase_responses")[0][0]


def test_fault_after_fault_keeps_every_answer_and_invents_no_row(sim, seeded, warehouse, tmp_path):
    # A short read timeout, so "slower than the timeout" costs a second.
    enphase = make_enphase(sim, tmp_path, read_timeout_s=0.5)
    truth = _truth()
    assert truth["micro"] and truth["consumption"]

    # 1. A burst of 502s on one endpoint: retried inside the run, which succeeds.
    sim.fail_next(count=2, status=502, path_contains="consumption_meter")
    first = run_range(enphase, warehouse, DAY, DAY)
    assert first.success
    assert _typed(warehouse) == truth
    statuses = [r[1] for r in _raw_since(warehouse, 0) if r[0] == "telemetry/consumption_meter"]
    assert statuses == [502, 502, 200]

    # 2. An HTML "queue full" page on every try: the run fails and names the endpoint.
    mark = _last_raw_id(warehouse)
    sim.fail_next(count=4, status=503, html=True, path_contains="production_micro")
    html = run_range(enphase, warehouse, DAY, DAY, raise_on_error=False)
    assert not html.success
    assert f"{MICRO} answered 503" in failure_message(html)
    kept = _raw_since(warehouse, mark)
    assert [r[1] for r in kept] == [503] * 4
    assert all(r[0] == MICRO and "text/html" in r[2] and not r[3] for r in kept)
    assert _typed(warehouse) == truth  # the earlier good rows stand; nothing from the page

    # 3. Answers slower than the read timeout (first try and the read retry): no answer at all.
    mark = _last_raw_id(warehouse)
    ledger_mark = query(warehouse, "SELECT count(*) FROM ops.api_requests")[0][0]
    sim.slow_next(2.0, count=2)
    slow = run_range(enphase, warehouse, DAY, DAY, raise_on_error=False)
    assert not slow.success
    assert "no response after retries" in failure_message(slow)
    # Both attempts are kept as answers without a status (and counted in the ledger).
    assert _raw_since(warehouse, mark) == [(MICRO, None, None, False)] * 2
    unanswered = query(
        warehouse,
        "SELECT endpoint, status FROM ops.api_requests ORDER BY requested_at OFFSET ?",
        [ledger_mark],
    )
    assert unanswered == [(MICRO, None), (MICRO, None)]
    assert _typed(warehouse) == truth

    # 4. The month's quota is gone: the run stops at the first 429 and says until when.
    mark = _last_raw_id(warehouse)
    sim.set_month_used(sim.per_month)
    sent = sum(sim.stats.data_requests.values())
    month = run_range(enphase, warehouse, DAY, DAY, raise_on_error=False)
    assert not month.success
    assert "monthly quota exhausted until" in failure_message(month)
    assert [(r[0], r[1]) for r in _raw_since(warehouse, mark)] == [(MICRO, 429)]
    assert sum(sim.stats.data_requests.values()) == sent  # nothing got through
    assert _typed(warehouse) == truth

    # 5. The quota is back: one ordinary run, and the tables are exactly the simulator's.
    sim.set_month_used(0)
    assert run_range(enphase, warehouse, DAY, DAY).success
    assert _typed(warehouse) == truth
    # Every answer of the whole sequence is still there, the failures included.
    by_status = dict(
        query(warehouse, "SELECT status, count(*) FROM raw.enphase_responses GROUP BY status")
    )
    assert by_status[502] == 2 and by_status[503] == 4 and by_status[429] == 1
