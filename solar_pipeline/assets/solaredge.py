"""SolarEdge monitoring API sites: raw answers -> solaredge.intervals and daily totals."""

from __future__ import annotations

from datetime import UTC, datetime

from solar_pipeline.assets.provider import CLOUD_METER
from solar_pipeline.assets.vendor import Fetch, Parsed, VendorSource, build_vendor
from solar_pipeline.sites import Site
from solar_pipeline.sources.solaredge.budget import DailyBudget
from solar_pipeline.sources.solaredge.client import DEFAULT_URL, SolarEdgeClient
from solar_pipeline.sources.solaredge.parse import (
    SOURCE_DETAILS,
    SOURCE_ENERGY,
    parse_energy_details,
    parse_site_energy,
)
from solar_pipeline.warehouse.vendor_tables import Answer, RawRow

GROUP = "solaredge"


def _key_name(site: Site) -> str:
    return site.credentials.get("api_key", "SOLAREDGE_API_KEY")


def ledger_api(site: Site) -> str:
    # The 300/day limit is per key: sites sharing an account key share one budget.
    return f"solaredge:{_key_name(site)}"


def fetch(f: Fetch) -> None:
    site = f.site
    budget = DailyBudget(
        used_today=lambda now: f.requests_since(
            datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        ),
        key_name=_key_name(site),
    )
    client = SolarEdgeClient(
        int(site.ids["site_id"]),
        site.secret("api_key"),
        lambda resp: f.record(Answer.of(resp)),
        base_url=site.ids.get("api_url", DEFAULT_URL),
        auth=site.ids.get("auth", "v2"),  # type: ignore[arg-type]
        key_name=_key_name(site),
        budget=budget,
    )
    # Refuse up front what the day cannot afford, rather than stopping half-way on a 429.
    budget.ensure_available(client.requests_needed(f.first, f.last))
    client.energy_details(f.first, f.last)
    client.site_energy_days(f.first, f.last)


def parse(site: Site, row: RawRow) -> Parsed:
    if row.endpoint == "energyDetails":
        details = parse_energy_details(row.body, site.timezone)
        return Parsed(intervals=details.intervals, problem="; ".join(details.problems) or None)
    if row.endpoint == "energy":
        energy = parse_site_energy(row.body, site.timezone)
        return Parsed(
            intervals=energy.intervals,
            daily_wh=energy.daily_wh,
            problem="; ".join(energy.problems) or None,
        )
    return Parsed()


SOURCE = VendorSource(
    vendor="solaredge",
    group=GROUP,
    fetch=fetch,
    parse=parse,
    # energyDetails comes from the site's meters (or the inverters where there is no meter).
    production={SOURCE_DETAILS: CLOUD_METER},
    grid={SOURCE_DETAILS: CLOUD_METER},
    daily_source=SOURCE_ENERGY,
    ledger_api=ledger_api,
)

assets, PROVIDER = build_vendor(
    SOURCE,
    raw_doc="""SolarEdge answers for each SolarEdge site's local days, verbatim.

    Per site of SOLAR_SITES with `vendor: solaredge`: `energyDetails` (15-minute Wh of every
    meter, a month per call) and `energy?timeUnit=DAY` (daily production, a year per call),
    with the V2 `X-API-Key` header key named by `credentials.api_key`. Requests are counted in
    ops.api_requests per key; a run that would pass the 300-a-day budget is refused before it
    sends anything. A failing site is recorded in ops.site_status.
    """,
    intervals_doc="""SolarEdge 15-minute energy and daily totals per site.

    `solaredge_details` intervals carry production, consumption, import (Purchased) and export
    (FeedIn) where the site has the meters; the timestamps are site-local wall-clock times,
    localised with the site's zone (23- and 25-hour days included). `solaredge_energy` daily
    totals stand in for days the details do not cover. Unreadable answers stay raw, marked.
    """,
)
