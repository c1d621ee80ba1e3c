import time
from typing import Any

import dagster as dg

from solar_pipeline.assets.common import daily_duckdb_asset
from solar_pipeline.assets.enphase import raw_reads
from solar_pipeline.assets.enphase.intervals import expected_intervals, merge_intervals
from solar_pipeline.assets.envoy.provider import GRID_MAX_W, max_production_w
from solar_pipeline.constants import (
    ENPHASE_CONSUMPTION_INTERVALS,
    ENPHASE_GROUP,
    ENPHASE_PRODUCTION_INTERVALS,
    RAW_ENPHASE_RESPONSES,
)
from solar_pipeline.partitions import DAILY
from solar_pipeline.resources import DuckDBWarehouse, EnphaseCloudResource
from solar_pipeline.warehouse import replace_rows
from solar_pipeline.warehouse.fit import column_checks
from solar_pipeline.warehouse.parse_errors import mark_parsed

MICRO = "telemetry/production_micro"
PRODUCTION_METER = "telemetry/production_meter"
CONSUMPTION_METER = "telemetry/consumption_meter"

COMPLETE_DAYS_CHECK = "complete_days"
WELL_FORMED_CHECK = raw_reads.WELL_FORMED_CHECK
PLAUSIBLE_CHECK = "values_plausible"


def _window_days(context: dg.AssetExecutionContext) -> list[tuple[str, dg.TimeWindow]]:
    return [(k, DAILY.time_window_for_partition_key(k)) for k in context.partition_keys]


def _check_results(
    asset_key: dg.AssetKey,
    context,
    frame,
    step_s: int,
    source: str | None,
    problems: dict[int, str],
    flagged: list[dict],
    max_power_w: float,
) -> list[dg.AssetCheckResult]:
    """Past days must hold every interval of the local day; a shortfall is worth a look."""
    now = time.time()
    short: dict[str, str] = {}
    rows = frame if source is None else frame[frame["source"] == source]
    ends: Any = rows["end_at"] if len(rows) else []
    for key, w in _window_days(context):
        if w.end.timestamp() > now:
            continue  # today is still filling in
        have = int(((ends > w.start) & (ends <= w.end)).sum()) if len(rows) else 0
        want = expected_intervals(w.start, w.end, step_s)
        if have != want:
            short[key] = f"{have}/{want}"
    return [
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=COMPLETE_DAYS_CHECK,
            passed=not short,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"incomplete_days": len(short), "detail": dg.MetadataValue.json(short)},
        ),
        raw_reads.well_formed_result(problems, asset_key),
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=PLAUSIBLE_CHECK,
            passed=not flagged,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                "Intervals whose energy is not used (wh NULL, see flags): negative, more than "
                f"{max_power_w:.0f} W could make (x1.2), or listed twice in one answer with "
                "different values (neither copy is used). energy.intervals takes their energy "
                "from another source or leaves it out."
            ),
            metadata={
                "flagged_intervals": len(flagged),
                "flagged": dg.MetadataValue.json(flagged[:100]),
                "max_power_w": max_power_w,
            },
        ),
    ]


def _checks(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(COMPLETE_DAYS_CHECK, asset=key),
        dg.AssetCheckSpec(WELL_FORMED_CHECK, asset=key),
        dg.AssetCheckSpec(PLAUSIBLE_CHECK, asset=key),
    ]


@dg.asset(
    key=ENPHASE_PRODUCTION_INTERVALS,
    deps=[RAW_ENPHASE_RESPONSES],
    **daily_duckdb_asset(ENPHASE_GROUP),
    check_specs=_checks(ENPHASE_PRODUCTION_INTERVALS),
)
def production_intervals(
    context: dg.AssetExecutionContext, enphase: EnphaseCloudResource, warehouse: DuckDBWarehouse
) -> dg.MaterializeResult:
    """Produced energy per interval (Wh), one row per interval end, per local day.

    `source = 'micro'`: 5-minute intervals from the microinverters (production_micro);
    `source = 'meter'`: 15-minute intervals from the revenue-grade production meter, when the
    system has one. A day owns the intervals ending in (local midnight, next local midnight]:
    288 micro intervals on a normal day, 276 and 300 on the DST switch days. Rebuilt from the
    newest raw answers on every run (delete-then-insert of the partition window). A negative
    value, more than the array can make, or an interval one answer lists twice with different
    values is stored without energy and flagged (`flags`; check `values_plausible`).
    """
    w = context.partition_time_window
    system_id = enphase.system()
    with warehouse.connect() as conn:
        responses = raw_reads.latest_covering(
            conn, system_id, [MICRO, PRODUCTION_METER], w.start, w.end
        )
        max_w = max_production_w(conn)
        frame, problems, flagged = merge_intervals(
            responses,
            w.start,
            w.end,
            {MICRO: "micro", PRODUCTION_METER: "meter"},
            max_w,
            column_checks(conn, "enphase.production_intervals"),
        )
        frame.insert(0, "system_id", system_id)
        replace_rows(
            conn,
            "enphase.production_intervals",
            frame,
            "system_id = ? AND end_at > ? AND end_at <= ?",
            [system_id, w.start, w.end],
        )
        mark_parsed(conn, raw_reads.RAW_TABLE, problems, (r[0] for r in responses))
    counts = frame["source"].value_counts().to_dict() if len(frame) else {}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "micro_intervals": int(counts.get("micro", 0)),
            "meter_intervals": int(counts.get("meter", 0)),
            "produced_kwh_micro": round(
                float(frame.loc[frame.source == "micro", "wh"].sum()) / 1000, 3
            ),
            "raw_answers_used": len(responses),
        },
        check_results=_check_results(
            ENPHASE_PRODUCTION_INTERVALS, context, frame, 300, "micro", problems, flagged, max_w
        ),
    )


@dg.asset(
    key=ENPHASE_CONSUMPTION_INTERVALS,
    deps=[RAW_ENPHASE_RESPONSES],
    **daily_duckdb_asset(ENPHASE_GROUP),
    check_specs=_checks(ENPHASE_CONSUMPTION_INTERVALS),
)
def consumption_intervals(
    context: dg.AssetExecutionContext, enphase: EnphaseCloudResource, warehouse: DuckDBWarehouse
) -> dg.MaterializeResult:
    """Consumed energy per 15-minute interval (Wh) from the consumption meter, per local day.

    Empty when the system has no consumption meter (the metadata says so): a site without
    consumption data has no consumption figures, never zeros.
    """
    w = context.partition_time_window
    system_id = enphase.system()
    with warehouse.connect() as conn:
        responses = raw_reads.latest_covering(conn, system_id, [CONSUMPTION_METER], w.start, w.end)
        frame, problems, flagged = merge_intervals(
            responses,
            w.start,
            w.end,
            {CONSUMPTION_METER: "meter"},
            GRID_MAX_W,
            column_checks(conn, "enphase.consumption_intervals"),
        )
        frame = frame.drop(columns=["source", "powr_w"])
        frame.insert(0, "system_id", system_id)
        replace_rows(
            conn,
            "enphase.consumption_intervals",
            frame,
            "system_id = ? AND end_at > ? AND end_at <= ?",
            [system_id, w.start, w.end],
        )
        mark_parsed(conn, raw_reads.RAW_TABLE, problems, (r[0] for r in responses))
    metadata: dict[str, Any] = {
        "dagster/row_count": len(frame),
        "consumed_kwh": round(float(frame["wh"].sum()) / 1000, 3) if len(frame) else 0.0,
        "raw_answers_used": len(responses),
    }
    checks = _check_results(
        ENPHASE_CONSUMPTION_INTERVALS, context, frame, 900, None, problems, flagged, GRID_MAX_W
    )
    if not responses:
        metadata["note"] = (
            "No consumption-meter data: the system has no consumption meter (per /devices), "
            "or nothing was fetched for these days."
        )
        checks[0] = dg.AssetCheckResult(
            asset_key=ENPHASE_CONSUMPTION_INTERVALS,
            check_name=COMPLETE_DAYS_CHECK,
            passed=True,
            description="skipped: no consumption meter data for these days",
        )
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
