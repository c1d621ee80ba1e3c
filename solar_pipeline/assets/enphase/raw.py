import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import dagster as dg

from solar_pipeline.assets.enphase import raw_reads, snapshot_fetch
from solar_pipeline.constants import DUCKDB_POOL, ENPHASE_GROUP, RAW_ENPHASE_RESPONSES
from solar_pipeline.partitions import DAILY
from solar_pipeline.resources import DuckDBWarehouse, EnphaseCloudResource
from solar_pipeline.sources.enphase import parse, plan
from solar_pipeline.sources.enphase.errors import ParseError
from solar_pipeline.sources.parsing import loads, reason
from solar_pipeline.warehouse.parse_errors import mark_parsed
from solar_pipeline.warehouse.request_log import DuckDBRequestLog

TOKEN_EXPIRY_CHECK = "refresh_token_not_expiring"
# Owners get a week's warning to re-approve the application before the refresh token lapses.
TOKEN_WARN_DAYS = 7
# Which meters a system has changes rarely; a week-old /devices answer is good enough.
DEVICES_MAX_AGE = timedelta(days=7)
# What every system has: the telemetry worth fetching when /devices cannot be read.
NO_METERS: parse.Devices = {
    "has_production_meter": False,
    "has_consumption_meter": False,
    "micros": 0,
}


class RawFetchConfig(dg.Config):
    snapshots: Literal["auto", "always", "never"] = "auto"
    """Fetch summary, events and alarms: `auto` when the partition range includes today."""


@dg.asset(
    key=RAW_ENPHASE_RESPONSES,
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=DUCKDB_POOL,
    group_name=ENPHASE_GROUP,
    kinds={"duckdb", "python"},
    check_specs=[dg.AssetCheckSpec(TOKEN_EXPIRY_CHECK, asset=RAW_ENPHASE_RESPONSES)],
)
def enphase_responses(
    context: dg.AssetExecutionContext,
    config: RawFetchConfig,
    enphase: EnphaseCloudResource,
    warehouse: DuckDBWarehouse,
) -> dg.MaterializeResult:
    """Every Enphase cloud API answer for the selected days, stored verbatim before parsing.

    One row per HTTP request: endpoint, query, status, fetch time, content type and the body
    as received (also HTML error pages and throttling answers), plus the time range the request
    covers. Telemetry is requested with the fewest calls the API allows (24 h of 5-minute micro
    data per call, 7 days of 15-minute meter data per call, one energy_lifetime call for the
    whole range of completed days); summary, events and alarms are fetched when the range
    includes today, at a constant cost per tick (open_alarms plus the new windows, see
    snapshot_fetch.py). Typed tables are parsed from here, so a parser fix never needs a
    re-fetch.
    """
    window = context.partition_time_window
    start, end = int(window.start.timestamp()), int(window.end.timestamp())
    now = int(time.time())
    system_id = enphase.system()
    log = DuckDBRequestLog(warehouse.path, "enphase", raw_reads.RAW_TABLE, context.run_id)
    client = enphase.client(log)

    today = DAILY.get_partition_key_for_timestamp(now)
    keys = context.partition_keys
    include_snapshots = config.snapshots == "always" or (
        config.snapshots == "auto" and today in keys
    )

    with warehouse.connect() as conn:
        cached = raw_reads.latest_answer(
            conn, system_id, "devices", datetime.now(UTC) - DEVICES_MAX_AGE
        )
        known = snapshot_fetch.read_known(conn, system_id) if include_snapshots else None

    # Refuse up front what the month cannot afford (worst case: both meters present, devices,
    # every conditional snapshot request).
    worst = plan.telemetry_fetches(start, end, now, True, True)
    snapshots = snapshot_fetch.most_requests(known, now) if known is not None else 0
    client.budget.ensure_available(len(worst) + 1 + snapshots)

    unreadable: dict[int, str] = {}
    try:
        meters = _meters(cached, unreadable) if cached is not None else None
        if meters is None:
            fresh = client.get("devices")
            # A good answer's row is written in a batch later; this one's id is needed now.
            raw_id = fresh.raw_id
            if raw_id is None:
                written = log.flush()
                raw_id = written[-1] if written else None
            meters = _meters((raw_id, fresh.data), unreadable)
        if meters is None:
            context.log.warning(
                "The /devices answer could not be read (see parse_error in "
                f"{raw_reads.RAW_TABLE}): fetching the microinverters only this run; the next "
                "run asks /devices again"
            )
            meters = NO_METERS

        fetches = plan.telemetry_fetches(
            start, end, now, meters["has_production_meter"], meters["has_consumption_meter"]
        )
        completed = [k for k in keys if k < today]
        if completed:
            first, last = date.fromisoformat(completed[0]), date.fromisoformat(completed[-1])
            fetches += plan.lifetime_fetch(first, last, date.fromisoformat(today), (start, end))
        for fetch in fetches:
            client.get(fetch.endpoint, fetch.params, fetch.covers)
        if known is not None:
            fetches += snapshot_fetch.fetch(client, known, now)
    finally:
        log.close()
        if unreadable:
            with warehouse.connect() as conn:
                mark_parsed(conn, raw_reads.RAW_TABLE, unreadable)

    by_endpoint = Counter(f.endpoint for f in fetches)
    pair = client.tokens.current()
    token_status = pair.status(time.time()) if pair else {}
    expires_in = token_status.get("refresh_token_expires_in_days")
    usage = log.usage(time.time())
    context.log.info(
        f"Fetched {len(fetches)} Enphase responses for {keys[0]}..{keys[-1]} "
        f"({client.requests_sent} HTTP requests in all)"
    )
    return dg.MaterializeResult(
        metadata={
            "requests_sent": client.requests_sent,
            "requests_by_endpoint": dg.MetadataValue.json(dict(by_endpoint)),
            "requests_per_day": round(client.requests_sent / max(len(keys), 1), 3),
            "partition_days": len(keys),
            "budget_used_this_month": usage.month_count,
            "budget_monthly_limit": client.budget.plan.per_month,
            "budget_wait_s": round(client.budget.waited_s, 1),
            "has_production_meter": meters["has_production_meter"],
            "has_consumption_meter": meters["has_consumption_meter"],
            **token_status,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=TOKEN_EXPIRY_CHECK,
                passed=expires_in is not None and expires_in > TOKEN_WARN_DAYS,
                severity=dg.AssetCheckSeverity.WARN,
                description=(
                    f"The Enphase refresh token lapses in {expires_in} days unless a run "
                    "refreshes it; if runs stop for that long, re-authorize with "
                    "`solar-pipeline enphase-auth`."
                ),
                metadata={"refresh_token_expires_in_days": expires_in or 0.0},
            )
        ],
    )


def _meters(answer: tuple[int | None, Any], unreadable: dict[int, str]) -> parse.Devices | None:
    """Which meters a /devices answer (raw id, text or decoded body) lists, or None, with the
    answer noted in `unreadable`, when it cannot be read."""
    raw_id, body = answer
    try:
        return parse.parse_devices(loads(body) if isinstance(body, str) else body)
    except Exception as exc:  # whatever the answer holds, it is flagged, never fatal
        if raw_id is not None:
            unreadable[raw_id] = reason(exc, ParseError)
        return None
