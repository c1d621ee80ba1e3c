"""The sites of the energy tables, each with its zone and the providers that feed it.

With SOLAR_SITES every listed site is one (an Enphase cloud system and its gateway may share a
site_id: one array, two views). Without it the deployment is one site named by SOLAR_SITE_ID,
else after the cloud system, else after the gateway that reported (as before fleets existed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from solar_pipeline.assets.envoy.provider import gateway_site_id
from solar_pipeline.assets.provider import Provider
from solar_pipeline.assets.registry import PROVIDERS
from solar_pipeline.energy.model import local_day_bounds
from solar_pipeline.settings import InvalidSettingError, Settings, env
from solar_pipeline.sites import Site, load_sites


@dataclass(frozen=True)
class EnergySite:
    site: Site  # the site as the status table sees it; vendor "enphase+envoy" when shared
    members: tuple[Site, ...]

    @property
    def site_id(self) -> str:
        return self.site.site_id

    @property
    def timezone(self) -> str:
        return self.site.timezone

    def providers(self) -> list[tuple[Site, Provider]]:
        return [(m, PROVIDERS[m.vendor]) for m in self.members if m.vendor in PROVIDERS]

    def window(self, days: Sequence[date]) -> tuple[datetime, datetime]:
        """UTC instants bounding the site's own local days `days[0]` .. `days[-1]`."""
        return (
            local_day_bounds(days[0], self.timezone)[0],
            local_day_bounds(days[-1], self.timezone)[1],
        )


def energy_sites(conn: duckdb.DuckDBPyConnection, settings: Settings) -> list[EnergySite]:
    if env("SOLAR_SITES") is None:
        site_id = settings.site_id or gateway_site_id(conn)
        if site_id is None:
            return []
        members = tuple(Site(site_id, v, settings.timezone) for v in ("enphase", "envoy"))
        return [_group(members)]
    groups: dict[str, list[Site]] = {}
    for s in load_sites(settings):
        groups.setdefault(s.site_id, []).append(s)
    return [_group(tuple(g)) for g in groups.values()]


def _group(members: tuple[Site, ...]) -> EnergySite:
    first = members[0]
    zones = {m.timezone for m in members}
    if len(zones) > 1:
        raise InvalidSettingError(
            f"SOLAR_SITES: the entries of site {first.site_id!r} have different time zones "
            f"{sorted(zones)}; one site has one local day"
        )
    vendor = "+".join(m.vendor for m in members)
    return EnergySite(Site(first.site_id, vendor, first.timezone), members)
