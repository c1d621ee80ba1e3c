"""SMA ennexOS monitoring API plants: raw answers -> sma.intervals and daily totals."""

from __future__ import annotations

from datetime import date, timedelta

from solar_pipeline.assets.provider import CLOUD_SERIES
from solar_pipeline.assets.vendor import Fetch, Parsed, VendorSource, build_vendor
from solar_pipeline.settings import Settings
from solar_pipeline.sites import Site
from solar_pipeline.sources.sma.client import DEFAULT_URL, SmaClient
from solar_pipeline.sources.sma.oauth import sma_auth
from solar_pipeline.sources.sma.parse import SOURCE_DAILY, SOURCE_PV, parse_day, parse_month
from solar_pipeline.warehouse.vendor_tables import Answer, RawRow

GROUP = "sma"


def _months(first: date, last: date) -> list[date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def fetch(f: Fetch) -> None:
    site = f.site
    _, tokens = sma_auth(
        site.secret("client_id"), site.secret("client_secret"), Settings.from_env().data_dir
    )
    client = SmaClient(
        site.ids["plant_id"],
        tokens,
        lambda resp: f.record(Answer.of(resp)),
        base_url=site.ids.get("api_url", DEFAULT_URL),
    )
    for month in _months(f.first, f.last):
        client.month_days(month)
    day = f.first
    while day <= f.last:
        client.day_series(day)
        day += timedelta(days=1)


def parse(site: Site, row: RawRow) -> Parsed:
    if row.endpoint.endswith("/Month"):
        month = parse_month(row.body, site.timezone)
        return Parsed(daily_wh=month.daily_wh, problem="; ".join(month.problems) or None)
    if row.endpoint.endswith("/Day"):
        day = parse_day(row.body, site.timezone)
        return Parsed(intervals=day.intervals, problem="; ".join(day.problems) or None)
    return Parsed()


SOURCE = VendorSource(
    vendor="sma",
    group=GROUP,
    fetch=fetch,
    parse=parse,
    # Energy per 5 minutes as the portal logged it from the inverters (not sampled power).
    production={SOURCE_PV: CLOUD_SERIES},
    daily_source=SOURCE_DAILY,
)

assets, PROVIDER = build_vendor(
    SOURCE,
    raw_doc="""SMA monitoring API answers for each SMA plant's local days, verbatim.

    Per site of SOLAR_SITES with `vendor: sma` and `ids.plant_id`: the app's OAuth2
    client-credentials token (`credentials.client_id` / `client_secret`, kept in the shared
    token store, SMA_TOKEN_STORE) reads the plant once its owner approved the consent e-mail
    (`solar-pipeline sma-consent`); then `EnergyAndPowerPv/Month` (daily energy) per month and
    `EnergyAndPowerPv/Day` (5-minute energy) per day. A 429 is recorded and fails the site, not
    the run; a missing or revoked consent says how to ask again.
    """,
    intervals_doc="""SMA PV energy per 5 minutes and per local day, per plant.

    `sma_pv`: pvGeneration of the Day set (period-end labels, site-local, localised with the
    site's zone; 23- and 25-hour days included); `sma_daily`: the Month set's daily values, for
    days the 5-minute series does not cover.
    """,
)
