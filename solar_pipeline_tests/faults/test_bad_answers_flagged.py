"""One bad answer never stops parsing: through the real assets, a gateway or cloud answer that
Python's json reads but no parser can use (readingTime 1e400 or NaN, nesting 100,000 levels
deep, a count beyond the column, enwh 1e400) is stored raw, marked in its row's parse_error,
counted, fails the answers check, and the answers after it are parsed as usual; the gateway's
watermark passes it, so the next run and `solar-pipeline envoy-reparse` work.

The bad bodies are served by the simulators' own fault hook (the gateway's `fail_next` with a
body) or, for the cloud, which has no hook for a 200 body, by a WSGI wrapper in this file that
edits one answer on its way out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from datetime import date

import dagster as dg
from click.testing import CliRunner

from solar_pipeline.cli import main
from solar_pipeline.partitions import DAILY
from solar_pipeline.simulator import solar_model
from solar_pipeline.sources.envoy import poll
from solar_pipeline.warehouse.watermarks import get_watermark
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.envoy.conftest import make_envoy, run_envoy
from solar_pipeline_tests.faults.poison import DEEP_ARRAY
from solar_pipeline_tests.helpers import failure_message, query, run_range

ENVOY_PRODUCTION = dg.AssetKey(["envoy", "production_readings"])
WELL_FORMED = "raw_answers_well_formed"


def _check(result: dg.ExecuteInProcessResult, key: dg.AssetKey, name: str) -> bool | None:
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.asset_key == key and evaluation.check_name == name:
            return evaluation.passed
    return None


# --- the gateway ---------------------------------------------------------------------------


def _production_rows(warehouse) -> list[tuple[int, str | None]]:
    return query(
        warehouse,
        "SELECT id, parse_error FROM raw.envoy_responses WHERE endpoint = ? ORDER BY id",
        [poll.PRODUCTION],
    )


def test_bad_gateway_answers_are_flagged_and_parsing_goes_on(
    live_envoy, warehouse, tmp_path, monkeypatch
):
    resource = make_envoy(live_envoy, tmp_path)
    assert run_envoy(resource, warehouse).success
    good = query(
        warehouse,
        "SELECT body FROM raw.envoy_responses WHERE endpoint = ? AND http_status = 200",
        [poll.PRODUCTION],
    )[0][0]
    assert '"readingTime"' in good and '"activeCount"' in good

    def edit(field: str, value: str) -> str:
        return re.sub(rf'"{field}":\s*-?\d+', f'"{field}": {value}', good, count=1)

    bad = {
        "readingTime 1e400": (edit("readingTime", "1e400"), "readingTime"),
        "readingTime NaN": (edit("readingTime", "NaN"), "readingTime"),
        # Fits a Python int, not the INTEGER column: the insert must not fail the batch.
        "activeCount 2**63": (edit("activeCount", str(2**63)), "active_count"),
        "100,000 levels": ('{"production": ' + DEEP_ARRAY + "}", "nest"),
    }
    outcome: dict[str, tuple[bool, bool | None, str]] = {}
    for name, (body, _) in bad.items():
        live_envoy.fail_next(status=200, body=body, path_contains="production.json")
        result = run_envoy(resource, warehouse, raise_on_error=False)
        outcome[name] = (
            result.success,
            _check(result, ENVOY_PRODUCTION, WELL_FORMED),
            failure_message(result)[-300:],
        )
    # Every bad answer: the run goes on, the check says what happened.
    assert outcome == {name: (True, False, "") for name in bad}, outcome

    rows = _production_rows(warehouse)
    assert len(rows) == 1 + len(bad)
    assert rows[0][1] is None  # the good answer
    for (raw_id, error), (name, (_, clue)) in zip(rows[1:], bad.items(), strict=True):
        assert error and clue in error, (name, error)
        # Nothing was read from it.
        assert not query(
            warehouse, "SELECT 1 FROM envoy.production_readings WHERE raw_id = ?", [raw_id]
        ), name
    # The deep answer made the poll ask the v1 summary instead, which was parsed.
    v1 = query(
        warehouse, "SELECT id FROM raw.envoy_responses WHERE endpoint = ?", [poll.PRODUCTION_V1]
    )
    assert len(v1) == 1
    assert query(
        warehouse, "SELECT count(*) FROM envoy.production_readings WHERE raw_id = ?", [v1[0][0]]
    ) == [(1,)]

    # The next good answer is parsed, and the watermark is past everything.
    time.sleep(1.1)  # a new readingTime
    after = run_envoy(resource, warehouse)
    assert _check(after, ENVOY_PRODUCTION, WELL_FORMED) is True
    last = _production_rows(warehouse)[-1]
    assert last[1] is None
    assert query(
        warehouse, "SELECT count(*) > 0 FROM envoy.production_readings WHERE raw_id = ?", [last[0]]
    ) == [(True,)]
    with warehouse.connect() as conn:
        top = conn.execute("SELECT max(id) FROM raw.envoy_responses").fetchone()[0]
        assert get_watermark(conn, "envoy.readings") == top

    # A full re-parse reads them all again: the same readings, the same four flags.
    readings = query(warehouse, "SELECT * FROM envoy.production_readings ORDER BY ALL")
    monkeypatch.setenv("SOLAR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("ENVOY_INVERTER_TAGS", raising=False)
    reparse = CliRunner().invoke(main, ["envoy-reparse"])
    assert reparse.exit_code == 0, reparse.output
    assert re.search(
        rf"envoy/production_readings: \d+ rows, {len(bad)} malformed answers", reparse.output
    ), reparse.output[-500:]
    assert query(warehouse, "SELECT * FROM envoy.production_readings ORDER BY ALL") == readings
    assert [e is not None for _, e in _production_rows(warehouse)] == [
        False,
        *[True] * len(bad),
        False,
    ]


# --- the cloud ----------------------------------------------------------------------------


class EditNextAnswer:
    """WSGI wrapper around a simulator's app: the next answer whose path contains `part` goes
    out with its body passed through `change` (what a broken proxy or API release would send)."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.pending: list[tuple[str, Callable[[str], str]]] = []

    def arm(self, part: str, change: Callable[[str], str]) -> None:
        self.pending.append((part, change))

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        rule = next((r for r in self.pending if r[0] in path), None)
        if rule is None:
            return self.app(environ, start_response)
        self.pending.remove(rule)
        seen: dict = {}

        def keep(status: str, headers: list, exc_info=None):
            seen.update(status=status, headers=headers)
            return lambda data: None

        body = rule[1](b"".join(self.app(environ, keep)).decode()).encode()
        headers = [(k, v) for k, v in seen["headers"] if k.lower() != "content-length"]
        start_response(seen["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]


def _editor(sim) -> EditNextAnswer:
    editor = EditNextAnswer(sim.app.wsgi_app)
    sim.app.wsgi_app = editor
    return editor


DAY = "2025-06-10"
MICRO = "telemetry/production_micro"
PRODUCTION_INTERVALS = dg.AssetKey(["enphase", "production_intervals"])


def _micro_truth() -> list[tuple[int, int]]:
    start, end = solar_model.local_day_bounds(SYSTEM, date.fromisoformat(DAY))
    return [(i["end_at"], i["enwh"]) for i in solar_model.micro_intervals(SYSTEM, start, end)]


def test_cloud_enwh_1e400_is_flagged_and_a_later_answer_is_parsed(sim, enphase, warehouse):
    editor = _editor(sim)
    editor.arm(MICRO, lambda body: re.sub(r'"enwh":\s*\d+', '"enwh": 1e400', body, count=1))
    first = run_range(enphase, warehouse, DAY, DAY, raise_on_error=False)
    assert first.success, failure_message(first)
    assert _check(first, PRODUCTION_INTERVALS, WELL_FORMED) is False
    [(bad_id, error)] = query(
        warehouse, "SELECT id, parse_error FROM raw.enphase_responses WHERE endpoint = ?", [MICRO]
    )
    assert error and "enwh" in error
    assert not query(
        warehouse, "SELECT 1 FROM enphase.production_intervals WHERE raw_id = ?", [bad_id]
    )

    # Parsing the same answers again neither fails nor forgets the flag.
    again = run_range(
        enphase, warehouse, DAY, DAY, selection=[PRODUCTION_INTERVALS], raise_on_error=False
    )
    assert again.success, failure_message(again)
    assert _check(again, PRODUCTION_INTERVALS, WELL_FORMED) is False

    # The next fetch of the day is a good answer: it is parsed and the check passes.
    later = run_range(enphase, warehouse, DAY, DAY)
    assert _check(later, PRODUCTION_INTERVALS, WELL_FORMED) is True
    micro = query(
        warehouse,
        "SELECT epoch(end_at)::BIGINT, wh FROM enphase.production_intervals "
        "WHERE source = 'micro' ORDER BY end_at",
    )
    assert micro == _micro_truth()
    flags = query(
        warehouse,
        "SELECT id, parse_error IS NOT NULL FROM raw.enphase_responses "
        "WHERE endpoint = ? ORDER BY id",
        [MICRO],
    )
    assert flags[0] == (bad_id, True) and flags[-1][1] is False


SUMMARY = dg.AssetKey(["enphase", "system_summary"])


def test_cloud_summary_beyond_its_columns_is_flagged_and_the_next_is_parsed(
    sim, enphase, warehouse
):
    today = DAILY.get_partition_key_for_timestamp(time.time())
    snapshot = [dg.AssetKey(["raw", "enphase_responses"]), SUMMARY]
    editor = _editor(sim)
    outcome = {}
    for name, field, value in [
        ("current_power 1e400", "current_power", "1e400"),
        # A Python int, beyond the BIGINT column.
        ("energy_lifetime 2**63", "energy_lifetime", str(2**63)),
    ]:
        editor.arm(
            "/summary",
            lambda body, f=field, v=value: re.sub(rf'"{f}":\s*-?\d+', f'"{f}": {v}', body),
        )
        result = run_range(
            enphase, warehouse, today, today, selection=snapshot, raise_on_error=False
        )
        outcome[name] = (result.success, _check(result, SUMMARY, WELL_FORMED))
    assert outcome == {
        "current_power 1e400": (True, False),
        "energy_lifetime 2**63": (True, False),
    }, outcome
    good = run_range(enphase, warehouse, today, today, selection=snapshot)
    assert _check(good, SUMMARY, WELL_FORMED) is True
    raw = query(
        warehouse,
        "SELECT id, parse_error FROM raw.enphase_responses WHERE endpoint = 'summary' ORDER BY id",
    )
    assert [e is not None for _, e in raw] == [True, True, False]
    assert "current_power" in raw[0][1] and "energy_lifetime" in raw[1][1]
    assert query(warehouse, "SELECT raw_id FROM enphase.system_summary") == [(raw[2][0],)]
    with warehouse.connect() as conn:
        assert get_watermark(conn, "enphase.system_summary") == raw[2][0]


RAW_CLOUD = dg.AssetKey(["raw", "enphase_responses"])


def test_a_malformed_devices_answer_is_flagged_and_never_reused(sim, enphase, warehouse):
    """/devices decides which meter endpoints are worth a request, and a good answer is reused
    for a week. One that cannot be read must not fail a week of runs: it is flagged, the run
    fetches what every system has (the microinverters), and the next run asks again."""
    editor = _editor(sim)
    editor.arm("/devices", lambda body: '{"system_id": 4021157, "devices": ["not", "an object"]}')
    first = run_range(enphase, warehouse, DAY, DAY, raise_on_error=False)
    assert first.success, failure_message(first)
    [(bad_id, error)] = query(
        warehouse,
        "SELECT id, parse_error FROM raw.enphase_responses WHERE endpoint = 'devices'",
    )
    assert error and "devices" in error
    fetched = {
        e for (e,) in query(warehouse, "SELECT DISTINCT endpoint FROM raw.enphase_responses")
    }
    assert MICRO in fetched

    later = run_range(enphase, warehouse, DAY, DAY)
    assert later.success
    devices = query(
        warehouse,
        "SELECT id, parse_error IS NOT NULL FROM raw.enphase_responses "
        "WHERE endpoint = 'devices' ORDER BY id",
    )
    assert devices[0] == (bad_id, True) and devices[-1][1] is False and len(devices) == 2
    # With the devices known again, the meters' days are fetched too.
    fetched = {
        e for (e,) in query(warehouse, "SELECT DISTINCT endpoint FROM raw.enphase_responses")
    }
    assert "telemetry/production_meter" in fetched
