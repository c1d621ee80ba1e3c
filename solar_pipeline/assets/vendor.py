"""The two assets every fleet vendor (SolarEdge, SMA, GoodWe, Fronius) has, built from a
`VendorSource` that says only how to fetch a site's days and how to read one answer.

`raw/<vendor>_responses` fetches each site's own local days and keeps every answer verbatim,
errors included; `<vendor>/intervals` reads them back into `<vendor>.intervals` and
`<vendor>.daily_energy`. Both loop over the vendor's sites in SOLAR_SITES; a failing site is
recorded in ops.site_status and does not fail the others.
"""

# No `from __future__ import annotations`: Dagster reads the context annotation at runtime.
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import dagster as dg
import duckdb

from solar_pipeline.assets.common import daily_duckdb_asset
from solar_pipeline.assets.provider import Provider
from solar_pipeline.assets.sites import each_site, site_metadata, sites_check
from solar_pipeline.energy.model import (
    ANOMALIES,
    DEFAULT_MAX_POWER_W,
    FIGURES,
    Interval,
    checked,
    counter_intervals,
    implausible,
    local_day_bounds,
)
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.settings import InvalidSettingError
from solar_pipeline.sites import Site, load_sites
from solar_pipeline.warehouse.vendor_tables import (
    Answer,
    RawRow,
    flag_problems,
    raw_rows,
    replace_site_energy,
    requests_since,
    site_daily_totals,
    site_intervals,
    store_answers,
)

PARSE_CHECK = "answers_parse"
FETCH_CHECK = "every_site_answered"


@dataclass(frozen=True)
class Fetch:
    """One site's fetch of its local days first..last: each answer goes to `record` as it
    arrives, and `requests_since` counts the site's metered requests in the ledger."""

    site: Site
    first: date
    last: date
    record: Callable[[Answer], None]
    requests_since: Callable[[datetime], int]


@dataclass
class Parsed:
    intervals: list[Interval] = field(default_factory=list)  # one or several figures each
    daily_wh: dict[date, float] = field(default_factory=dict)  # the vendor's production total
    readings: list[tuple[str, str, datetime, float]] = field(default_factory=list)
    # (source, figure, at, lifetime Wh counter): intervals come from consecutive readings
    problem: str | None = None


@dataclass(frozen=True)
class VendorSource:
    vendor: str
    group: str
    fetch: Callable[[Fetch], None]
    parse: Callable[[Site, RawRow], Parsed]
    production: Mapping[str, int]
    grid: Mapping[str, int] = field(default_factory=dict)
    daily_source: str | None = None
    # The request ledger's api name for a metered key (its budget counts every process's use).
    ledger_api: Callable[[Site], str] | None = None
    # The array's power ceiling when the site gives no `ids.kwp` (site_max_power_w).
    max_power_w: float = DEFAULT_MAX_POWER_W


def vendor_sites(vendor: str) -> list[Site]:
    return [s for s in load_sites() if s.vendor == vendor]


def _days(context: dg.AssetExecutionContext) -> list[date]:
    return [date.fromisoformat(k) for k in context.partition_keys]


def _window(site: Site, days: list[date]) -> tuple[datetime, datetime]:
    return local_day_bounds(days[0], site.timezone)[0], local_day_bounds(days[-1], site.timezone)[1]


def build_vendor(
    source: VendorSource, raw_doc: str, intervals_doc: str
) -> tuple[list[dg.AssetsDefinition], Provider]:
    vendor = source.vendor
    raw_key = dg.AssetKey(["raw", f"{vendor}_responses"])
    typed_key = dg.AssetKey([vendor, "intervals"])

    @dg.asset(
        key=raw_key,
        description=raw_doc,
        check_specs=[dg.AssetCheckSpec(FETCH_CHECK, asset=raw_key)],
        **daily_duckdb_asset(source.group),
    )
    def raw_asset(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse
    ) -> dg.MaterializeResult:
        days = _days(context)

        def work(site: Site) -> int:
            answers: list[Answer] = []
            api = source.ledger_api(site) if source.ledger_api else None

            def since(at: datetime) -> int:
                with warehouse.connect() as conn:
                    stored = requests_since(conn, api, at) if api else 0
                return stored + sum(1 for a in answers if a.fetched_at >= at.timestamp())

            try:
                source.fetch(Fetch(site, days[0], days[-1], answers.append, since))
            finally:
                # Also the answers of a failed fetch: an error page is evidence, kept verbatim.
                with warehouse.connect() as conn:
                    store_answers(conn, vendor, site.site_id, answers, api, context.run_id)
            return len(answers)

        outcomes = each_site(context, warehouse, vendor_sites(vendor), work, fail_if_all_fail=False)
        return dg.MaterializeResult(
            metadata={
                "answers": sum(o.result or 0 for o in outcomes),
                **site_metadata(outcomes),
            },
            check_results=[sites_check(FETCH_CHECK, outcomes)],
        )

    @dg.asset(
        key=typed_key,
        deps=[raw_key],
        description=intervals_doc,
        check_specs=[dg.AssetCheckSpec(PARSE_CHECK, asset=typed_key)],
        **daily_duckdb_asset(source.group),
    )
    def typed_asset(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse
    ) -> dg.MaterializeResult:
        days = _days(context)

        def work(site: Site) -> dict[str, int]:
            start, end = _window(site, days)
            with warehouse.connect() as conn:
                rows = raw_rows(conn, vendor, site.site_id, days[0], days[-1], start, end)
                return _parse_site(conn, source, site, rows, days, start, end)

        outcomes = each_site(context, warehouse, vendor_sites(vendor), work)
        problems = {o.site.site_id: o.result["problems"] for o in outcomes if o.result}
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(o.result["rows"] for o in outcomes if o.result),
                **site_metadata(outcomes),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=PARSE_CHECK,
                    passed=not any(problems.values()),
                    severity=dg.AssetCheckSeverity.WARN,
                    description=(
                        "answers that could not be read, or that hold energy values that cannot "
                        "be true (kept raw, see parse_error)"
                    ),
                    metadata={"unreadable_answers": dg.MetadataValue.json(problems)},
                )
            ],
        )

    provider = Provider(
        vendor=vendor,
        deps=(typed_key,),
        intervals=lambda conn, site, start, end: site_intervals(
            conn, vendor, site.site_id, start, end
        ),
        production=source.production,
        grid=source.grid,
        daily_totals=(
            (lambda conn, site, a, b: site_daily_totals(conn, vendor, site.site_id, a, b))
            if source.daily_source
            else None
        ),
    )
    return [raw_asset, typed_asset], provider


def site_max_power_w(site: Site, default: float = DEFAULT_MAX_POWER_W) -> float:
    """The most power the site's array can make: `ids.kwp` of the sites file (its peak power
    in kW) when given, else `default`, a ceiling no home reaches."""
    raw = site.ids.get("kwp")
    if raw is None:
        return default
    try:
        kwp = float(raw)
    except ValueError:
        kwp = math.nan
    if not (math.isfinite(kwp) and kwp > 0):
        raise InvalidSettingError(
            f"SOLAR_SITES: site {site.site_id!r} has ids.kwp {raw!r}; set it to the array's "
            "peak power in kW (e.g. 6.4), or leave it out"
        )
    return kwp * 1000


def _parse_site(
    conn: duckdb.DuckDBPyConnection,
    source: VendorSource,
    site: Site,
    rows: list[RawRow],
    days: list[date],
    start: datetime,
    end: datetime,
) -> dict[str, int]:
    # Later answers about the same span replace earlier ones (a day refreshed every tick).
    latest: dict[tuple, tuple[str, Interval, int]] = {}
    daily: dict[date, tuple[str, float, int]] = {}
    readings: dict[tuple[str, str], dict[datetime, tuple[float, int]]] = {}
    problems: dict[int, str] = {}
    answers: list[tuple[int, Parsed]] = []
    for row in rows:
        try:
            parsed = source.parse(site, row)
        except Exception as exc:  # a malformed answer is flagged, never lost or fatal
            problems[row.id] = f"{type(exc).__name__}: {exc}"
            continue
        if parsed.problem:
            problems[row.id] = parsed.problem
        answers.append((row.id, parsed))
    # Household consumption and the grid are not bounded by the array, but by the main fuse.
    array_w = site_max_power_w(site, source.max_power_w)
    limit = {
        f: array_w if f == "produced_wh" else max(array_w, DEFAULT_MAX_POWER_W) for f in FIGURES
    }
    measured = {
        (i.source, f)
        for _, p in answers
        for i in p.intervals
        for f in FIGURES
        if getattr(i, f) is not None
    }
    for raw_id, parsed in answers:
        for i in parsed.intervals:
            for figure in FIGURES:
                one = _figure_interval(i, figure, limit[figure], (i.source, figure) in measured)
                if one is None:
                    continue
                if getattr(one, figure) is None and getattr(i, figure) is not None:
                    _add_problem(
                        problems,
                        raw_id,
                        f"{i.source} {figure} {i.start_at:%Y-%m-%dT%H:%MZ}: {one.flags[-1]} "
                        f"value {getattr(i, figure):g} Wh, not used",
                    )
                latest[(i.source, figure, i.start_at, i.end_at)] = (figure, one, raw_id)
        for day, wh in parsed.daily_wh.items():
            day_start, day_end = local_day_bounds(day, site.timezone)
            flag = implausible(wh, (day_end - day_start).total_seconds(), limit["produced_wh"])
            if flag:
                # The newest answer is the vendor's word on the day: no usable total for it.
                daily.pop(day, None)
                _add_problem(problems, raw_id, f"{day}: {flag} daily value {wh:g} Wh, not used")
                continue
            daily[day] = (source.daily_source or source.vendor, wh, raw_id)
        for src, figure, at, value in parsed.readings:
            readings.setdefault((src, figure), {})[at.astimezone(UTC)] = (value, raw_id)
    for (src, figure), points in readings.items():
        for i in counter_intervals(
            [(at, v) for at, (v, _) in points.items()],
            source=src,
            figure=figure,
            max_power_w=limit[figure],
        ):
            latest[(src, figure, i.start_at, i.end_at)] = (figure, i, points[i.end_at][1])
    n = replace_site_energy(
        conn, source.vendor, site.site_id, latest.values(), daily, days[0], days[-1], start, end
    )
    # A re-parse after a parser fix clears the marks of the answers it now reads.
    flag_problems(conn, source.vendor, problems, (row.id for row in rows))
    return {"rows": n, "problems": len(problems)}


def _figure_interval(
    i: Interval, figure: str, max_power_w: float, measured: bool
) -> Interval | None:
    """The interval's row for one figure, with the anomaly rules applied: a negative or
    impossible value is removed and flagged. A figure the parser found unusable (its
    `bad_value` flag, say) keeps a row without energy if the source measures that figure,
    so the flag shows and another source can fill it; otherwise the figure has no row."""
    value = getattr(i, figure)
    if value is None:
        if measured and any(f in ANOMALIES for f in i.flags):
            return Interval(i.start_at, i.end_at, i.source, flags=i.flags)
        return None
    # `bad_value` of a multi-figure interval was another figure's: this one has its value.
    flags = tuple(f for f in i.flags if f != "bad_value")
    one = Interval(i.start_at, i.end_at, i.source, flags=flags, **{figure: value})
    return checked(one, figure, max_power_w)


def _add_problem(problems: dict[int, str], raw_id: int, problem: str) -> None:
    problems[raw_id] = f"{problems[raw_id]}; {problem}" if raw_id in problems else problem
