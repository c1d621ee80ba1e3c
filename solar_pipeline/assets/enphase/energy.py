from datetime import date
from typing import Any

import dagster as dg
import pandas as pd

from solar_pipeline.assets.common import daily_duckdb_asset
from solar_pipeline.assets.enphase import raw_reads
from solar_pipeline.assets.envoy.provider import max_production_w
from solar_pipeline.constants import (
    ENPHASE_DAILY_ENERGY,
    ENPHASE_GROUP,
    ENPHASE_PRODUCTION_INTERVALS,
    RAW_ENPHASE_RESPONSES,
)
from solar_pipeline.energy.model import implausible, local_day_bounds
from solar_pipeline.partitions import DAILY
from solar_pipeline.resources import DuckDBWarehouse, EnphaseCloudResource
from solar_pipeline.sources.enphase.errors import ParseError
from solar_pipeline.sources.enphase.parse import loads, parse_energy_lifetime
from solar_pipeline.sources.parsing import reason
from solar_pipeline.warehouse import replace_rows
from solar_pipeline.warehouse.fit import column_checks, misfit
from solar_pipeline.warehouse.parse_errors import mark_parsed

MATCHES_INTERVALS_CHECK = "matches_interval_sum"
PLAUSIBLE_CHECK = "values_plausible"
SERIES = ("produced_wh", "micro_wh", "meter_wh")
# energy_lifetime and the interval telemetry come from the same meter or micros; more than
# this apart means one of them is incomplete.
TOLERANCE = 0.01


@dg.asset(
    key=ENPHASE_DAILY_ENERGY,
    # Depends on the intervals only for the cross-check, which must see them written first.
    deps=[RAW_ENPHASE_RESPONSES, ENPHASE_PRODUCTION_INTERVALS],
    **daily_duckdb_asset(ENPHASE_GROUP),
    check_specs=[
        dg.AssetCheckSpec(MATCHES_INTERVALS_CHECK, asset=ENPHASE_DAILY_ENERGY),
        dg.AssetCheckSpec(PLAUSIBLE_CHECK, asset=ENPHASE_DAILY_ENERGY),
    ],
)
def daily_energy(
    context: dg.AssetExecutionContext, enphase: EnphaseCloudResource, warehouse: DuckDBWarehouse
) -> dg.MaterializeResult:
    """Energy produced per local day (Wh) from Enphase's energy_lifetime series.

    `produced_wh` is Enphase's merged series (micro data until the production meter was
    installed, meter data after); `micro_wh` and `meter_wh` are the two series behind it.
    One API call covers a whole backfill range. Today's row appears once the day is complete.
    The check compares each day with the sum of that day's production intervals. A negative
    day, or more than the array can make in a day, is stored as NULL (the raw answer keeps it)
    and listed by the `values_plausible` check: it never stands in for a day's energy.
    """
    w = context.partition_time_window
    keys = context.partition_keys
    first, last = date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])
    system_id = enphase.system()
    with warehouse.connect() as conn:
        responses = raw_reads.latest_covering(conn, system_id, ["energy_lifetime"], w.start, w.end)
        max_w = max_production_w(conn)
        checks = column_checks(conn, "enphase.daily_energy")
        days: dict[date, dict] = {}
        problems: dict[int, str] = {}
        for raw_id, _, body in responses:
            try:
                rows = parse_energy_lifetime(loads(body))
                # The whole answer, not only these days: its verdict is the same for every run.
                why = next((bad for row in rows if (bad := misfit(row, checks))), None)
            except Exception as exc:  # one answer never fails the partition
                problems[raw_id] = reason(exc, ParseError)
                continue
            if why is not None:
                problems[raw_id] = why
                continue
            for row in rows:
                if first <= row["day"] <= last:
                    days[row["day"]] = {**row, "raw_id": raw_id}
        implausible_days = _drop_implausible(days, max_w)
        frame = pd.DataFrame(
            [{"day": d, "system_id": system_id, **r} for d, r in sorted(days.items())],
            columns=["day", "system_id", "produced_wh", "micro_wh", "meter_wh", "raw_id"],
        )
        replace_rows(
            conn,
            "enphase.daily_energy",
            frame,
            "system_id = ? AND day BETWEEN ? AND ?",
            [system_id, first, last],
        )
        mark_parsed(conn, raw_reads.RAW_TABLE, problems, (r[0] for r in responses))
        sums = dict(
            conn.execute(
                """
                SELECT CAST(timezone(?, end_at - INTERVAL 1 SECOND) AS DATE) AS day, sum(wh)
                FROM enphase.production_intervals
                WHERE system_id = ? AND source = ? AND end_at > ? AND end_at <= ?
                GROUP BY day
                """,
                [
                    DAILY.timezone,
                    system_id,
                    "meter" if frame["meter_wh"].notna().any() else "micro",
                    w.start,
                    w.end,
                ],
            ).fetchall()
        )
    mismatched = {}
    day_row: Any  # a row of `frame`: day, produced_wh, ...
    for day_row in frame.itertuples():
        summed = sums.get(day_row.day)
        if summed is None or not day_row.produced_wh:
            continue
        if abs(summed - day_row.produced_wh) / day_row.produced_wh > TOLERANCE:
            mismatched[str(day_row.day)] = {
                "energy_lifetime": int(day_row.produced_wh),
                "intervals": int(summed),
            }
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "produced_kwh": round(float(frame["produced_wh"].sum()) / 1000, 3)
            if len(frame)
            else 0.0,
            "malformed_answers": len(problems),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=PLAUSIBLE_CHECK,
                passed=not implausible_days,
                severity=dg.AssetCheckSeverity.WARN,
                description=(
                    "Days whose energy_lifetime value is negative or more than "
                    f"{max_w:.0f} W could make in the day (x1.2): stored as NULL, not used"
                ),
                metadata={"implausible_days": dg.MetadataValue.json(implausible_days)},
            ),
            dg.AssetCheckResult(
                check_name=MATCHES_INTERVALS_CHECK,
                passed=not mismatched and not problems,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "days_compared": len([d for d in frame["day"] if d in sums]),
                    "mismatched_days": dg.MetadataValue.json(mismatched),
                    "malformed_answers": len(problems),
                    "malformed_raw_ids": dg.MetadataValue.json(sorted(problems)[:20]),
                },
            ),
        ],
    )


def _drop_implausible(days: dict[date, dict], max_power_w: float) -> dict[str, dict[str, int]]:
    """Set each series' impossible daily value to None; {day: {series: value}} of those."""
    dropped: dict[str, dict[str, int]] = {}
    for day, row in days.items():
        start, end = local_day_bounds(day, DAILY.timezone)
        seconds = (end - start).total_seconds()
        for series in SERIES:
            wh = row.get(series)
            if wh is not None and implausible(wh, seconds, max_power_w):
                dropped.setdefault(str(day), {})[series] = wh
                row[series] = None
    return dropped
