"""The data client against the simulator: throttling, quotas, budget, error bodies, timeouts."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from solar_pipeline.simulator import EnphaseCloudSimulator
from solar_pipeline.sources.enphase.budget import RequestBudget, plan_named
from solar_pipeline.sources.enphase.client import EnphaseClient
from solar_pipeline.sources.enphase.errors import (
    BudgetExceeded,
    EnphaseResponseError,
    EnphaseTransportError,
    QuotaExhausted,
)
from solar_pipeline.sources.enphase.ledger import LedgerEntry
from solar_pipeline.sources.enphase.oauth import OAuthClient
from solar_pipeline.sources.enphase.tokens import FileTokenStore, TokenManager
from solar_pipeline.sources.http import build_session
from solar_pipeline.warehouse.request_log import DuckDBRequestLog
from solar_pipeline_tests.conftest import SYSTEM, make_enphase
from solar_pipeline_tests.helpers import failure_message, query, run_range


class FakeClock:
    """Shared by the simulator and the client so that waiting a minute takes no time."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 25, 10, 0, 30, tzinfo=UTC))


def _client(
    sim, tmp_path: Path, clock: FakeClock, plan: str, read_timeout: float = 10.0
) -> tuple[EnphaseClient, DuckDBRequestLog]:
    log = DuckDBRequestLog(tmp_path / "solar.duckdb", "enphase", "raw.enphase_responses")
    oauth = OAuthClient(
        sim.base_url, sim.client_id, sim.client_secret, build_session(0.01), log, clock=clock
    )
    tokens = TokenManager(FileTokenStore(tmp_path / "tokens.json"), oauth, clock=clock)
    tokens.seed_if_empty(sim.mint_refresh_token())
    client = EnphaseClient(
        sim.base_url,
        sim.api_key,
        SYSTEM.system_id,
        tokens,
        RequestBudget(plan_named(plan), log, clock=clock, sleep=clock.sleep),
        log,
        build_session(0.01),
        timeout=(2.0, read_timeout),
        clock=clock,
        sleep=clock.sleep,
    )
    return client, log


def test_minute_429_is_waited_out_until_period_end(tmp_path, clock):
    # The simulator allows 2 calls a minute; our ledger thinks the plan allows 50.
    with EnphaseCloudSimulator([SYSTEM], per_minute=2, per_month=1000, clock=clock) as sim:
        client, log = _client(sim, tmp_path, clock, "kilowatt")
        for _ in range(3):
            assert client.get("summary").data["system_id"] == SYSTEM.system_id
        assert sim.stats.throttled == 1
        # Waited until the period_end of the 429 body: the next clock minute (+1 s margin).
        assert clock.slept == [pytest.approx(30 + 1, abs=0.01)]
        log.close()
    statuses = [r[0] for r in query_log(tmp_path) if r[2] == "data"]
    assert statuses == [200, 200, 429, 200]


def query_log(tmp_path: Path) -> list[tuple]:
    from solar_pipeline.resources import DuckDBWarehouse

    return query(
        DuckDBWarehouse(path=str(tmp_path / "solar.duckdb")),
        "SELECT status, endpoint, kind FROM ops.api_requests ORDER BY requested_at",
    )


def test_our_budget_waits_before_the_api_has_to_throttle(tmp_path, clock):
    with EnphaseCloudSimulator([SYSTEM], per_minute=10, per_month=1000, clock=clock) as sim:
        client, _ = _client(sim, tmp_path, clock, "watt")
        for _ in range(12):
            client.get("summary")
        assert sim.stats.throttled == 0
        assert len(clock.slept) == 1  # waited once for the next clock minute


def test_month_429_stops_with_the_date_it_resets(tmp_path, clock):
    with EnphaseCloudSimulator([SYSTEM], per_minute=10, per_month=1000, clock=clock) as sim:
        client, _ = _client(sim, tmp_path, clock, "kilowatt")
        sim.set_month_used(1000)
        with pytest.raises(QuotaExhausted, match="monthly quota exhausted until 2026-12-01"):
            client.get("summary")
        assert clock.slept == []


def test_ledger_blocks_a_run_that_would_exceed_the_month(sim, seeded, warehouse, tmp_path):
    log = DuckDBRequestLog(warehouse.path, "enphase", "raw.enphase_responses")
    log.record(LedgerEntry("enphase", "summary", "data", datetime.now(UTC).timestamp(), 200, 1.0))
    log.close()
    with warehouse.connect() as conn:  # 989 more earlier this month
        conn.execute(
            "INSERT INTO ops.api_requests SELECT a.* REPLACE (requested_at - INTERVAL 1 "
            "SECOND AS requested_at) FROM ops.api_requests a, range(989)"
        )
    watt = make_enphase(sim, tmp_path, plan="watt")
    result = run_range(watt, warehouse, "2025-06-01", "2025-06-10", raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert "only 10 of the 1000 monthly requests of ENPHASE_PLAN=watt remain" in message
    assert "Nothing was sent" in message
    assert sum(sim.stats.data_requests.values()) == 0


def test_html_error_page_is_kept_raw_and_every_attempt_is_counted(sim, enphase, warehouse):
    sim.fail_next(count=10, status=503, html=True, path_contains="devices")
    result = run_range(enphase, warehouse, "2025-06-10", "2025-06-10", raise_on_error=False)
    assert not result.success
    assert "devices answered 503" in failure_message(result)
    rows = query(
        warehouse,
        "SELECT status, content_type, valid_json, body FROM "
        "raw.enphase_responses WHERE endpoint = 'devices'",
    )
    assert len(rows) == 4  # the first try and 3 retries, every one kept
    for status, content_type, valid_json, body in rows:
        assert status == 503 and "text/html" in content_type and not valid_json
        assert "heavy load" in body
    ledger = query(warehouse, "SELECT count(*) FROM ops.api_requests WHERE endpoint = 'devices'")
    assert ledger == [(4,)]


def test_a_200_that_is_not_json_is_an_error_that_keeps_the_body(sim, enphase, warehouse):
    sim.fail_next(count=1, status=200, html=True, path_contains="devices")
    result = run_range(enphase, warehouse, "2025-06-10", "2025-06-10", raise_on_error=False)
    assert "body is not JSON" in failure_message(result)
    rows = query(
        warehouse, "SELECT status, valid_json FROM raw.enphase_responses WHERE endpoint = 'devices'"
    )
    assert rows == [(200, False)]


def test_5xx_burst_is_retried_and_the_run_succeeds(sim, enphase, warehouse):
    sim.fail_next(count=2, status=502, path_contains="production_micro")
    assert run_range(enphase, warehouse, "2025-06-10", "2025-06-10").success
    statuses = query(
        warehouse,
        "SELECT status FROM raw.enphase_responses "
        "WHERE endpoint = 'telemetry/production_micro' ORDER BY id",
    )
    assert statuses == [(502,), (502,), (200,)]


def test_slow_answers_past_the_timeout_are_a_transport_error(tmp_path, clock):
    with EnphaseCloudSimulator([SYSTEM], per_minute=50, per_month=1000) as sim:
        client, _ = _client(sim, tmp_path, FakeClock(datetime.now(UTC)), "kilowatt", 0.5)
        client.tokens.access_token()  # the token call is not what this test slows down
        sim.slow_next(2.0, count=5)
        with pytest.raises(EnphaseTransportError, match="no response after retries"):
            client.get("summary")
    errors = [r for r in query_log(tmp_path) if r[1] == "summary"]
    assert len(errors) == 2 and all(r[0] is None for r in errors)  # first try + 1 read retry


def test_a_4xx_names_the_endpoint_and_the_raw_row(tmp_path, clock):
    with EnphaseCloudSimulator([SYSTEM], clock=clock) as sim:
        client, _ = _client(sim, tmp_path, clock, "kilowatt")
        with pytest.raises(
            EnphaseResponseError, match=r"events answered 422.*raw.enphase_responses id"
        ):
            client.get("events")  # start_time is required


def test_unknown_plan_names_the_variable():
    with pytest.raises(ValueError, match="ENPHASE_PLAN"):
        plan_named("gigawatt")


def test_budget_refuses_up_front(tmp_path, clock):
    log = DuckDBRequestLog(tmp_path / "solar.duckdb", "enphase", "raw.enphase_responses")
    budget = RequestBudget(plan_named("watt"), log, clock=clock, sleep=clock.sleep)
    budget.ensure_available(1000)
    with pytest.raises(BudgetExceeded):
        budget.ensure_available(1001)
