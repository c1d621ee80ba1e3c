"""Fronius Solar API v1 devices on the LAN: raw answers -> fronius.intervals."""

from __future__ import annotations

import contextlib
from datetime import date, datetime
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from solar_pipeline.assets.provider import LOCAL_INVERTERS, LOCAL_METER
from solar_pipeline.assets.vendor import Fetch, Parsed, VendorSource, build_vendor
from solar_pipeline.sites import Site
from solar_pipeline.sources.fronius.client import (
    ARCHIVE,
    METER,
    POWER_FLOW,
    FroniusClient,
    FroniusResponse,
)
from solar_pipeline.sources.fronius.errors import FroniusApiError, FroniusUnsupported
from solar_pipeline.sources.fronius.parse import (
    GRID_LOCATION,
    SOURCE_ARCHIVE,
    SOURCE_ETOTAL,
    SOURCE_METER,
    archive_intervals,
    parse_meter_system,
    parse_power_flow,
)
from solar_pipeline.warehouse.vendor_tables import Answer, RawRow

GROUP = "fronius"


def _answer(resp: FroniusResponse) -> Answer:
    covers = None
    if resp.endpoint == ARCHIVE:
        q = parse_qs(resp.query)
        covers = (date.fromisoformat(q["StartDate"][0]), date.fromisoformat(q["EndDate"][0]))
    return Answer.of(resp, covers)


def fetch(f: Fetch) -> None:
    site = f.site
    client = FroniusClient(site.ids["url"], site.timezone, lambda r: f.record(_answer(r)))
    today = datetime.now(ZoneInfo(site.timezone)).date()
    gen24 = False
    if f.first <= today <= f.last:
        # Lifetime counters only tell about now: polled when the run covers the site's today
        # (the schedule's ticks), they give the E_Total and meter deltas.
        flow = parse_power_flow(client.power_flow().body, site.timezone)
        gen24 = flow.is_gen24
        with contextlib.suppress(FroniusUnsupported, FroniusApiError):
            client.meter_system()  # without a smart meter: production only
    last = min(f.last, today)
    if not gen24 and f.first <= last:
        # GEN24/Tauro keep no archive; their energy is the E_Total deltas.
        with contextlib.suppress(FroniusUnsupported):
            client.archive(f.first, last)


def parse(site: Site, row: RawRow) -> Parsed:
    tz = site.timezone
    if row.endpoint == POWER_FLOW:
        flow = parse_power_flow(row.body, tz)
        if flow.e_total_wh is None:
            return Parsed()
        return Parsed(readings=[(SOURCE_ETOTAL, "produced_wh", flow.at, flow.e_total_wh)])
    if row.endpoint == METER:
        readings = []
        for m in parse_meter_system(row.body, tz):
            if m.location != GRID_LOCATION:
                continue
            if m.consumed_wh is not None:
                readings.append((SOURCE_METER, "imported_wh", m.at, m.consumed_wh))
            if m.produced_wh is not None:
                readings.append((SOURCE_METER, "exported_wh", m.at, m.produced_wh))
        return Parsed(readings=readings)
    if row.endpoint == ARCHIVE:
        return Parsed(intervals=archive_intervals(row.body, tz))
    return Parsed()


SOURCE = VendorSource(
    vendor="fronius",
    group=GROUP,
    fetch=fetch,
    parse=parse,
    # The Datamanager's 5-minute log sees every interval, also while our poller was down;
    # E_Total deltas (the only way on GEN24/Tauro) see only what was polled.
    production={SOURCE_ARCHIVE: LOCAL_INVERTERS, SOURCE_ETOTAL: LOCAL_INVERTERS + 5},
    grid={SOURCE_METER: LOCAL_METER},
)

assets, PROVIDER = build_vendor(
    SOURCE,
    raw_doc="""Fronius Solar API answers for each Fronius site, verbatim.

    Per site of SOLAR_SITES with `vendor: fronius` and `ids.url` (http://<datamanager or
    inverter>): on runs covering the site's today, GetPowerFlowRealtimeData (E_Total) and
    GetMeterRealtimeData (grid meter counters); for past days, GetArchiveData Detail
    (5-minute production, Datamanager only; GEN24/Tauro have none). No credentials: the API is
    open on the LAN.
    """,
    intervals_doc="""Fronius energy per interval and site.

    `fronius_archive`: the Datamanager's 5-minute production log; `fronius_etotal`: production
    between polls from the lifetime E_Total (GEN24/Tauro, whose E_Day is always null);
    `fronius_meter`: grid import and export between polls of the feed-in meter's counters.
    Counter drops and spikes are flagged, never negative or giant energy.
    """,
)
