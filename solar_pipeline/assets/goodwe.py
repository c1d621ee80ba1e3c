"""GoodWe SEMS portal stations (an unofficial API): raw answers -> goodwe.intervals."""

from __future__ import annotations

from solar_pipeline.assets.vendor import Fetch, Parsed, VendorSource, build_vendor
from solar_pipeline.sites import Site
from solar_pipeline.sources.goodwe.client import DAILY_PATH, DEFAULT_URL, SemsClient
from solar_pipeline.sources.goodwe.parse import (
    SOURCE_DAILY,
    parse_daily_energy,
    parse_day_power,
)
from solar_pipeline.warehouse.vendor_tables import Answer, RawRow

GROUP = "goodwe"


def fetch(f: Fetch) -> None:
    site = f.site
    client = SemsClient(
        site.secret("account"),
        site.secret("password"),
        site.ids["station_id"],
        lambda resp: f.record(Answer.of(resp)),
        base_url=site.ids.get("api_url", DEFAULT_URL),
        account_name=site.credentials.get("account", "GOODWE_ACCOUNT"),
        password_name=site.credentials.get("password", "GOODWE_PASSWORD"),
    )
    client.days_energy(f.first, f.last)
    day = f.first
    while day <= f.last:
        client.day_power(day)
        day = day.fromordinal(day.toordinal() + 1)


def parse(site: Site, row: RawRow) -> Parsed:
    if row.endpoint == DAILY_PATH:
        daily = parse_daily_energy(row.body, site.timezone)
        return Parsed(daily_wh=daily.daily_wh, problem="; ".join(daily.problems) or None)
    if row.covers and "Pac" in row.endpoint:
        power = parse_day_power(row.body, site.timezone, row.covers[0])
        return Parsed(intervals=power.intervals, problem="; ".join(power.problems) or None)
    return Parsed()  # the login answer (stored with its token redacted)


SOURCE = VendorSource(
    vendor="goodwe",
    group=GROUP,
    fetch=fetch,
    parse=parse,
    # The intraday series is sampled power (a trapezoid estimate, within about 0.5 %): kept
    # for curves, but the day's energy is SEMS's own daily figure.
    production={},
    daily_source=SOURCE_DAILY,
)

assets, PROVIDER = build_vendor(
    SOURCE,
    raw_doc="""GoodWe SEMS answers for each GoodWe station's local days, verbatim.

    UNOFFICIAL API (the SEMS app's, as community clients use it): CrossLogin with the account
    and password named by `credentials.account` / `credentials.password`, a new login when the
    token expires, then the daily energy (`GetPowerStationPowerAndIncomeByDay`, up to 31 days
    a call) and one intraday power series per day. Login answers are stored with the token and
    password redacted. A failing station is recorded in ops.site_status.
    """,
    intervals_doc="""GoodWe energy per station: SEMS daily totals and 5-minute power.

    `goodwe_daily` is SEMS's production per local day, the day's figure in
    energy.daily_energy (status `estimated`: its timing inside the day is unknown);
    `goodwe_pac` intervals integrate the power samples (trapezoid) for the curves.
    """,
)
