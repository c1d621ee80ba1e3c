"""Unpartitioned Enphase tables parsed incrementally from the raw answers (by watermark)."""

from collections.abc import Callable
from dataclasses import dataclass, field
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
from solar_pipeline.sources.enphase import open_state, parse
from solar_pipeline.sources.enphase.errors import ParseError
from solar_pipeline.sources.parsing import reason
from solar_pipeline.warehouse import upsert_rows
from solar_pipeline.warehouse.fit import column_checks, misfit, split_fitting
from solar_pipeline.warehouse.parse_errors import mark_parsed
from solar_pipeline.warehouse.watermarks import get_watermark, set_watermark

WELL_FORMED_CHECK = raw_reads.WELL_FORMED_CHECK


@dataclass
class NewAnswers:
    """What a watermark consumer made of the answers after its mark."""

    # (raw id, fetched, endpoint, rows)
    parsed: list[tuple[int, Any, str, Any]] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)  # raw id -> why it was not read
    mark: int = 0

    def drop(self, raw_id: int, why: str) -> None:
        """An answer parsed, but with a value its table cannot hold: not used at all."""
        self.problems.setdefault(raw_id, why)
        self.parsed = [p for p in self.parsed if p[0] != raw_id]

    def record(self, conn) -> None:
        """The verdicts on the answers' raw rows (called inside the caller's transaction)."""
        mark_parsed(conn, raw_reads.RAW_TABLE, self.problems, (p[0] for p in self.parsed))


def _parse_new(
    conn, system_id: int, parsers: dict[str, Callable[[Any], Any]], consumer: str
) -> NewAnswers:
    """Parse the answers of these endpoints newer than the consumer's watermark, in id order.

    Error answers (non-200) are skipped: they are kept raw and the raw asset already failed on
    them. A 200 answer that is not the documented JSON is malformed, and so is one that sets
    off any other exception: it is flagged, and the mark still passes it, so one bad answer
    never stops the answers after it.
    """
    out = NewAnswers(mark=get_watermark(conn, consumer))
    for raw_id, fetched_at, endpoint, status, valid_json, body in raw_reads.responses_after(
        conn, system_id, list(parsers), out.mark
    ):
        out.mark = raw_id
        if status != 200:
            continue
        try:
            if not valid_json or body is None:  # valid_json: it has a body
                raise ParseError("not JSON")
            out.parsed.append((raw_id, fetched_at, endpoint, parsers[endpoint](parse.loads(body))))
        except Exception as exc:  # a malformed answer is flagged, never fatal
            out.problems[raw_id] = reason(exc, ParseError)
    return out


def _result(rows: int, problems: dict[int, str], extra: dict | None = None) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"rows_written": rows, "malformed_answers": len(problems), **(extra or {})},
        check_results=[raw_reads.well_formed_result(problems)],
    )


_COMMON: dict[str, Any] = dict(
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
        new = _parse_new(
            conn, system_id, {"summary": parse.parse_summary}, "enphase.system_summary"
        )
        rows, misfits = split_fitting(
            conn,
            "enphase.system_summary",
            [{"raw_id": rid, "fetched_at": at, **row} for rid, at, _, row in new.parsed],
        )
        for row, why in misfits:
            new.drop(row["raw_id"], why)
        frame = pd.DataFrame(rows)
        conn.execute("BEGIN TRANSACTION")
        if len(frame):
            conn.register("_summary", frame)
            conn.execute("INSERT INTO enphase.system_summary BY NAME SELECT * FROM _summary")
        new.record(conn)
        set_watermark(conn, "enphase.system_summary", new.mark)
        conn.execute("COMMIT")
    latest = new.parsed[-1][3] if new.parsed else {}
    return _result(
        len(frame),
        new.problems,
        {
            "current_power_w": latest.get("current_power_w") or 0,
            "status": latest.get("status") or "",
        },
    )


def _dicts(cur) -> list[dict[str, Any]]:
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, values, strict=True)) for values in cur.fetchall()]


def _stored_rows(
    conn, table: str, system_id: int, open_where: str, key: list[str], mentioned: list[tuple]
) -> list[dict[str, Any]]:
    """The rows an open list can close, and the stored rows the answers mention (so what only
    the table knows, e.g. when an alarm was seen cleared, survives the upsert)."""
    sql = f"SELECT * FROM {table} WHERE system_id = ? AND ({open_where})"
    rows = _dicts(conn.execute(sql, [system_id]))
    if mentioned:
        conn.register("_mentioned", pd.DataFrame(mentioned, columns=key))
        try:
            on = " AND ".join(f"t.{k} = m.{k}" for k in key)
            rows += _dicts(conn.execute(f"SELECT t.* FROM {table} t JOIN _mentioned m ON {on}"))
        finally:
            conn.unregister("_mentioned")
    return rows


def _merge_and_write(
    warehouse: DuckDBWarehouse,
    system_id: int,
    table: str,
    parsers: dict[str, Callable[[Any], Any]],
    key: list[str],
    open_where: str,
    merge: Callable[[dict, list[open_state.Answer]], dict],
) -> tuple[int, dict[int, str]]:
    """Apply the new answers (windows and the open list) to the stored rows, in fetch order."""
    with warehouse.connect() as conn:
        new = _parse_new(conn, system_id, parsers, table)
        checks = column_checks(conn, table)
        for raw_id, _, _, batch in list(new.parsed):
            why = next((bad for row in batch if (bad := misfit(row, checks))), None)
            if why is not None:
                new.drop(raw_id, why)
        answers = [open_state.Answer(ep, rid, at, rows) for rid, at, ep, rows in new.parsed]
        mentioned = list({tuple(r[k] for k in key) for a in answers for r in a.rows})
        known = _stored_rows(conn, table, system_id, open_where, key, mentioned)
        changed = merge({tuple(r[k] for k in key): r for r in known}, answers)
        conn.execute("BEGIN TRANSACTION")
        upsert_rows(conn, table, pd.DataFrame(list(changed.values())), key)
        new.record(conn)
        set_watermark(conn, table, new.mark)
        conn.execute("COMMIT")
    return len(changed), new.problems


@dg.asset(
    key=ENPHASE_EVENTS,
    check_specs=[dg.AssetCheckSpec(WELL_FORMED_CHECK, asset=ENPHASE_EVENTS)],
    **_COMMON,
)
def events(enphase: EnphaseCloudResource, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """System events (e.g. 28 = gateway not reporting), upserted on (system, type, serial,
    start): an event fetched again when it closes updates its row instead of adding one.
    `status` is lower case (info, open, closed). An open event missing from a later
    open_events answer is closed; its `ended_at` stays NULL unless a window answer gives it."""
    n, problems = _merge_and_write(
        warehouse,
        enphase.system(),
        "enphase.events",
        {"events": parse.parse_events, "open_events": parse.parse_events},
        list(open_state.EVENT_KEY),
        "status = 'open'",
        open_state.merge_events,
    )
    return _result(n, problems)


@dg.asset(
    key=ENPHASE_ALARMS,
    check_specs=[dg.AssetCheckSpec(WELL_FORMED_CHECK, asset=ENPHASE_ALARMS)],
    **_COMMON,
)
def alarms(enphase: EnphaseCloudResource, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """Alarms (escalated events), upserted on `alarm_id`. Severity 1 FATAL .. 6 NONE.

    open_alarms says which are open; one missing from a later open_alarms answer is
    `cleared`, with `seen_cleared_at` = that answer's fetch time (it cleared before then).
    `ended_at` is Enphase's clear time, once a window answer holds the cleared alarm."""
    n, problems = _merge_and_write(
        warehouse,
        enphase.system(),
        "enphase.alarms",
        {"alarms": parse.parse_alarms, "open_alarms": parse.parse_open_alarms},
        ["alarm_id"],
        "cleared IS NOT TRUE",
        lambda known, answers: open_state.merge_alarms(
            {k[0]: v for k, v in known.items()}, answers
        ),
    )
    return _result(n, problems)
