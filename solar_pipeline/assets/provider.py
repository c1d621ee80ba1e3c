"""What the energy assets need from a vendor, and nothing more: its intervals for a site and a
span, its daily totals, and how far each of its sources is trusted.

A vendor's asset module defines one `Provider`; `solar_pipeline.assets.registry` lists them.
The energy assets loop over sites and ask the providers of each site's vendors, so adding a
vendor never touches them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

import dagster as dg
import duckdb

from solar_pipeline.energy.model import Interval
from solar_pipeline.sites import Site

# Ranks for `Provider.production` / `Provider.grid`: lower is trusted more. A meter measures
# what crossed a point; inverter counters miss their own losses and integrated power misses
# what happened between samples, so they come after any meter of the same site.
LOCAL_METER = 10
CLOUD_METER = 20
CLOUD_SERIES = 30
LOCAL_INVERTERS = 40

# (figure, interval) pairs: an anomalous interval has no value to tell which figure it is.
IntervalsFn = Callable[
    [duckdb.DuckDBPyConnection, Site, datetime, datetime], list[tuple[str, Interval]]
]
# {local day: {source: Wh}}: a vendor's own daily production total, used only for a day that no
# interval source covers (its timing inside the day is unknown).
DailyTotalsFn = Callable[
    [duckdb.DuckDBPyConnection, Site, date, date], dict[date, dict[str, float]]
]


@dataclass(frozen=True)
class Provider:
    vendor: str
    deps: tuple[dg.AssetKey, ...]
    # Intervals overlapping [start, end), the UTC instants bounding the site's local days.
    intervals: IntervalsFn
    production: Mapping[str, int]
    grid: Mapping[str, int] = field(default_factory=dict)  # consumption, import and export
    daily_totals: DailyTotalsFn | None = None


def preference(providers: Iterable[Provider], figure: str) -> tuple[str, ...]:
    """The sources trusted for `figure`, best first, across the site's vendors."""
    ranks: dict[str, int] = {}
    for p in providers:
        ranks.update(p.production if figure == "produced_wh" else p.grid)
    return tuple(sorted(ranks, key=lambda s: (ranks[s], s)))
