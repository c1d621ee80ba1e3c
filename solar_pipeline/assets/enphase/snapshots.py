"""Unpartitioned Enphase tables parsed incrementally from the raw answers (by watermark)."""

import json
from collections.abc import Callable
from typing import Any

import dagster as dg
import pandas as pd

from solar_pipeline.assets.enphase import raw_reads
from solar_pipeline.checks import CLOUD_POLICY
from solar_pipeline.constants import (
    DUCKDB_POOL,
    ENPHASE_ALARMS,
    ENPHASE_EVENTS,
    ENPHASE_GROUP,
    ENPHASE_SYSTEM_SUMMARY,
    RAW_ENPHASE_RESPONSES,
)
from solar_pipeline.resources import DuckDBWarehouse, EnphaseCloudResource
from solar_pipeline.sources.enphase import parse
from solar_pipeline.sources.enphase.errors import ParseError
from solar_pipeline.warehouse import upsert_rows
from solar_pipeline.warehouse.watermarks import get_watermark, set_watermark

WELL_FORMED_CHECK = "raw_answers_well_formed"


def _parse_new(
    conn, system_id: int, endpoint: str, consumer: str, parser: Callable[[Any], Any]
) -> tuple[list[tuple[int, Any, Any]], int, int]:
    """Parse the answers newer than the consumer's watermark.

    Returns ((raw_id, fetched_at, parsed) for each usable answer, malformed count, new mark).
    Error answers (non-200) are skipped: they are kept raw and the raw asset already failed on
    them. A 200 answer that is not the documented JSON counts as malformed.
    """
    mark = get_watermark(conn, consumer)
    parsed, malformed = [], 0
    for raw_id, fetched_at, status, valid_json, body in raw_reads.responses_after(
        conn, system_id, endpoint, mark
    ):
        mark = raw_id
        if status != 200:
            continue
        try:
            if not valid_json:
                raise ParseError("not JSON")
            parsed.append((raw_id, fetched_at, parser(json.loads(body))))
        except ParseError:
            malformed += 1
    return parsed, malformed, mark


def _result(rows: int, malformed: int, extra: dict | None = None) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"rows_written": rows, "malformed_answers": malformed, **(extra or {})},
        check_results=[
            dg.AssetCheckResult(
                check_name=WELL_FORMED_CHECK,
                passed=malformed == 0,
                metadata={"malformed_answers": malformed},
            )
        ],
    )


_COMMON = dict(
    deps=[RAW_ENPHASE_RESPONSES],
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DUCKDB_POOL,
    group_name=ENPHASE_GROUP,
    kinds={"duckdb"},
)


@dg.asset(
    key=ENPHASE_SYSTEM_SUMMARY,
    freshness_policy=CLOUD_POLICY,
    check_specs=[dg.AssetCheckSpec(WELL_FORMED_CHECK, asset=ENPHASE_SYSTEM_SUMMARY)],
    **_COMMON,
)
def system_summary(
    enphase: EnphaseCloudResource, warehouse: DuckDBWarehouse
) -> dg.MaterializeResult:
    """One snapshot row per summary fetch: status, current power, energy today and lifetime.

    `energy_lifetime_wh` is Enphase's figure up to the day before `summary_date`.
    """
    system_id = enphase.system()
    with warehouse.connect() as conn:
        parsed, malformed, mark = _parse_new(
            conn, system_id, "summary", "enphase.system_summary", parse.parse_summary
        )
        frame = pd.DataFrame([{"raw_id": rid, "fetched_at": at, **row} for rid, at, row in parsed])
        conn.execute("BEGIN TRANSACTION")
        if len(frame):
            conn.register("_summary", frame)
            conn.execute("INSERT INTO enphase.system_summary BY NAME SELECT * FROM _summary")
        set_watermark(conn, "enphase.system_summary", mark)
        conn.execute("COMMIT")
    latest = parsed[-1][2] if parsed else {}
    return _result(
        len(frame),
        malformed,
        {
            "current_power_w": latest.get("current_power_w") or 0,
            "status": latest.get("status") or "",
        },
    )


def _upsert_parsed(
    warehouse: DuckDBWarehouse, system_id: int, endpoint: str, table: str, key: list[str], parser
) -> tuple[int, int]:
    with warehouse.connect() as conn:
        parsed, malformed, mark = _parse_new(conn, system_id, endpoint, table, parser)
        rows: dict[tuple, dict] = {}
        for raw_id, _, batch in parsed:  # oldest first: a later answer updates the row
            for row in batch:
                rows[tuple(row[k] for k in key)] = {**row, "raw_id": raw_id}
        conn.execute("BEGIN TRANSACTION")
        upsert_rows(conn, table, pd.DataFrame(list(rows.values())), key)
        set_watermark(conn, table, mark)
        conn.execute("COMMIT")
    return len(rows), malformed


@dg.asset(
    key=ENPHASE_EVENTS,
    check_specs=[dg.AssetCheckSpec(WELL_FORMED_CHECK, asset=ENPHASE_EVENTS)],
    **_COMMON,
)
def events(enphase: EnphaseCloudResource, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """System events (e.g. 28 = gateway not reporting), upserted on (system, type, serial,
    start): an event fetched again when it closes updates its row instead of adding one.
    `status` is lower case (info, open, closed)."""
    n, malformed = _upsert_parsed(
        warehouse,
        enphase.system(),
        "events",
        "enphase.events",
        ["system_id", "event_type_id", "serial_number", "started_at"],
        parse.parse_events,
    )
    return _result(n, malformed)


@dg.asset(
    key=ENPHASE_ALARMS,
    check_specs=[dg.AssetCheckSpec(WELL_FORMED_CHECK, asset=ENPHASE_ALARMS)],
    **_COMMON,
)
def alarms(enphase: EnphaseCloudResource, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """Alarms (escalated events), upserted on `alarm_id`; `cleared` turns true when Enphase
    reports the alarm cleared. Severity 1 FATAL .. 6 NONE."""
    n, malformed = _upsert_parsed(
        warehouse, enphase.system(), "alarms", "enphase.alarms", ["alarm_id"], parse.parse_alarms
    )
    return _result(n, malformed)
