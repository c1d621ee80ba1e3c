"""The sites a deployment collects: a YAML file (SOLAR_SITES) for a fleet, or, without one, the
single site that the ENPHASE_* / ENVOY_* variables describe.

A site names its vendor, its time zone (its days are its own local days), the vendor's ids for
it, and where its credentials are: environment variable names or keys of a private secrets
file, never the secrets themselves. A secret is read only when a run needs it, and a missing
one names the variable (or file and key) to set.

    # sites.yaml (SOLAR_SITES=/etc/solar/sites.yaml)
    secrets_file: /etc/solar/secrets.yaml     # optional, mode 0600: {KEY: value}
    sites:
      - site_id: home
        vendor: enphase
        timezone: Europe/Amsterdam
        ids: {system_id: 4021157}
        credentials: {api_key: ENPHASE_API_KEY, client_id: ENPHASE_CLIENT_ID,
                      client_secret: ENPHASE_CLIENT_SECRET}
      - site_id: barn
        vendor: solaredge
        timezone: America/Denver
        ids: {site_id: 1234567}
        credentials: {api_key: SOLAREDGE_BARN_KEY}
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solar_pipeline.config_files import load_yaml_settings
from solar_pipeline.settings import (
    SITE_ID_RULE,
    InvalidSettingError,
    MissingSettingError,
    Settings,
    env,
    shown,
    valid_site_id,
    valid_timezone,
)
from solar_pipeline.site_fields import (
    VENDOR_CREDENTIALS,
    check_ids,
    described,
    nameable,
    names,
    reference_problem,
    suggested_name,
    unknown_keys,
)

VENDORS = ("enphase", "envoy", "solaredge", "sma", "goodwe", "fronius")
ONE_PER_DEPLOYMENT = ("enphase", "envoy")
# Vendors whose tables carry a site_id, any number of sites each (warehouse/ddl template).
FLEET_VENDORS = tuple(v for v in VENDORS if v not in ONE_PER_DEPLOYMENT)
# Keys of the file itself; `x-...` keys are free for YAML anchors (as in docker-compose).
_TOP_LEVEL = ("secrets_file", "sites")
_ENTRY = ("site_id", "vendor", "timezone", "ids", "credentials")


@dataclass(frozen=True)
class Site:
    site_id: str
    vendor: str
    timezone: str
    ids: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)
    secrets_file: Path | None = None

    def secret(self, name: str) -> str:
        """The credential `name` of this site, read now (from the environment, else the
        secrets file); a missing one names what to set."""
        ref = self.credentials.get(name)
        if ref is None:
            raise InvalidSettingError(
                f"site {self.site_id!r}: no credential {name!r} in its `credentials` "
                f"(SOLAR_SITES); add `{name}: <VARIABLE_NAME>`"
            )
        value = os.environ.get(ref, "").strip()
        if not value and self.secrets_file is not None:
            stored = _read_secrets(self.secrets_file).get(ref)
            if stored is not None and (not isinstance(stored, str | int) or stored is True):
                key = ref if nameable(ref) else f"the key credentials.{name} names"
                raise InvalidSettingError(
                    f"secrets_file {self.secrets_file}: the value of {key} (site "
                    f"{self.site_id!r}) must be text, not {described(stored)}"
                )
            value = str(stored or "").strip()
        if value:
            return value
        if not nameable(ref):
            # Shaped like a name, but with no word a credential variable is named with: it may
            # be a passphrase pasted in, so it is pointed at rather than repeated.
            also = f" (nor a key of {self.secrets_file})" if self.secrets_file else ""
            raise InvalidSettingError(
                f"site {self.site_id!r}: the variable that credentials.{name} names (SOLAR_SITES) "
                f"is not set{also}. Its name is not repeated here: it has none of the words "
                "credential variables are named with (KEY, SECRET, PASSWORD, TOKEN, ID, ...) "
                "and may be a secret pasted by mistake. Set it, or rename it, e.g. "
                f"{suggested_name(self.vendor, self.site_id, name)}"
            )
        where = f" or as key {ref} in {self.secrets_file}" if self.secrets_file else ""
        raise MissingSettingError(ref, f"the {name} of site {self.site_id!r}{where}")

    def __repr__(self) -> str:  # credentials are names only, but keep reprs short anyway
        return f"Site({self.site_id!r}, {self.vendor}, {self.timezone})"


def _read_secrets(path: Path) -> dict[str, Any]:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError as exc:
        raise InvalidSettingError(f"secrets_file {path} (SOLAR_SITES) does not exist") from exc
    if mode & 0o077:
        raise InvalidSettingError(
            f"secrets_file {path} is readable by other users (mode {mode:o}): chmod 600 it"
        )
    # Its errors give the line and column only: that line may be a password.
    data = load_yaml_settings(path, f"secrets_file {path} (SOLAR_SITES)") or {}
    if not isinstance(data, dict):
        raise InvalidSettingError(f"secrets_file {path} must hold KEY: value pairs")
    return data


def _text(value: Any) -> str | None:
    """A scalar as text (YAML reads `site_id: 42` as a number); None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _site(entry: Any, n: int, secrets_file: Path | None, default_tz: str) -> Site:
    where = f"SOLAR_SITES sites[{n}]"
    if not isinstance(entry, dict):
        raise InvalidSettingError(f"{where} must be a mapping with site_id, vendor, timezone")
    unknown = [k for k in entry if k not in _ENTRY]
    if unknown:
        raise InvalidSettingError(
            f"{where}: unknown keys {names(unknown)} (it takes: {', '.join(_ENTRY)})"
        )
    site_id = _text(entry.get("site_id"))
    if not valid_site_id(site_id):
        value = shown(site_id) if site_id is not None else described(entry.get("site_id"))
        raise InvalidSettingError(f"{where}: site_id {value} must be {SITE_ID_RULE}")
    where = f"{where} ({site_id})"
    vendor = entry.get("vendor")
    if vendor not in VENDORS:
        value = shown(vendor) if isinstance(vendor, str) else described(vendor)
        raise InvalidSettingError(f"{where}: vendor {value} is not one of {VENDORS}")
    tz = entry.get("timezone") or default_tz
    if not valid_timezone(tz):
        value = shown(tz) if isinstance(tz, str) else described(tz)
        raise InvalidSettingError(
            f"{where}: timezone {value} is not an IANA time zone (e.g. Europe/Amsterdam)"
        )
    ids = entry.get("ids") or {}
    credentials = entry.get("credentials") or {}
    if not isinstance(ids, dict) or not isinstance(credentials, dict):
        raise InvalidSettingError(f"{where}: ids and credentials must be mappings")
    checked_ids = check_ids(where, vendor, ids)
    unknown_keys(where, "credentials", credentials, VENDOR_CREDENTIALS[vendor])
    for name, ref in credentials.items():
        problem = reference_problem(ref)
        if problem:
            # Do not echo the value: it may be the secret itself.
            raise InvalidSettingError(
                f"{where}: credentials.{name} must name an environment variable (or a "
                f"secrets_file key) in UPPER_SNAKE_CASE words, e.g. "
                f"{suggested_name(vendor, site_id, name)}, not hold the secret; {problem} "
                "(not shown)"
            )
    return Site(
        site_id=site_id,
        vendor=vendor,
        timezone=tz,
        ids=checked_ids,
        credentials=dict(credentials),
        secrets_file=secrets_file,
    )


def load_sites(settings: Settings | None = None) -> list[Site]:
    """Every configured site, in file order: SOLAR_SITES, else the single-site variables."""
    settings = settings or Settings.from_env()
    path = env("SOLAR_SITES")
    if path is None:
        return single_site(settings)
    file = Path(path)
    # Its errors give the line and column only: a pasted secret may be on that line.
    doc = load_yaml_settings(file, f"SOLAR_SITES={path}") or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("sites"), list):
        raise InvalidSettingError(f"SOLAR_SITES={path} must have a `sites:` list")
    unknown = [k for k in doc if k not in _TOP_LEVEL and not str(k).startswith("x-")]
    if unknown:
        raise InvalidSettingError(
            f"SOLAR_SITES={path}: unknown top-level key {names(unknown)} (it takes: "
            f"{', '.join(_TOP_LEVEL)}, and x-... keys for YAML anchors)"
        )
    secrets = doc.get("secrets_file")
    if secrets is not None and (not isinstance(secrets, str) or not secrets.strip()):
        raise InvalidSettingError(
            f"SOLAR_SITES={path}: secrets_file must be a file name, not {described(secrets)}"
        )
    secrets_file = (file.parent / secrets).resolve() if secrets else None
    sites = [_site(e, n, secrets_file, settings.timezone) for n, e in enumerate(doc["sites"])]
    seen: dict[str, str] = {}
    for s in sites:
        # The cloud system and the gateway of one Enphase array are one site seen twice.
        if s.site_id in seen and {seen[s.site_id], s.vendor} != {"enphase", "envoy"}:
            raise InvalidSettingError(f"SOLAR_SITES={path}: site_id {s.site_id!r} appears twice")
        seen[s.site_id] = s.vendor
    for vendor in ONE_PER_DEPLOYMENT:
        _check_single(path, [s for s in sites if s.vendor == vendor], settings)
    return sites


def _check_single(path: str, sites: list[Site], settings: Settings) -> None:
    """The Enphase assets keep one cloud system and one gateway per deployment (configured by
    the ENPHASE_* / ENVOY_* variables, partitioned in SOLAR_TIMEZONE); a sites file names
    them, it cannot add a second."""
    if len(sites) > 1:
        raise InvalidSettingError(
            f"SOLAR_SITES={path}: {len(sites)} {sites[0].vendor} sites; one per deployment "
            "(run a second deployment for a second Enphase system)"
        )
    if sites and sites[0].timezone != settings.timezone:
        raise InvalidSettingError(
            f"SOLAR_SITES={path}: the {sites[0].vendor} site {sites[0].site_id!r} is in "
            f"{sites[0].timezone}; set SOLAR_TIMEZONE={sites[0].timezone} (its partitions are "
            "local days of SOLAR_TIMEZONE)"
        )


def single_site(settings: Settings) -> list[Site]:
    """The earlier issues' variables as a fleet of one: the Enphase cloud system and/or the
    local gateway, both under the one site_id the energy tables already use."""
    sites = []
    system = env("ENPHASE_SYSTEM_ID")
    site_id = settings.site_id or (f"enphase:{system}" if system else None)
    if system:
        sites.append(
            Site(
                site_id=site_id or f"enphase:{system}",
                vendor="enphase",
                timezone=settings.timezone,
                ids={"system_id": system},
                credentials={
                    "api_key": "ENPHASE_API_KEY",
                    "client_id": "ENPHASE_CLIENT_ID",
                    "client_secret": "ENPHASE_CLIENT_SECRET",
                },
            )
        )
    url = env("ENVOY_URL")
    if url:
        ids = {"url": url}
        serial = env("ENVOY_SERIAL")
        if serial:
            ids["serial"] = serial
        sites.append(
            Site(
                # Without a configured id the energy tables name it after the gateway's serial.
                site_id=site_id or (f"envoy:{serial}" if serial else "envoy"),
                vendor="envoy",
                timezone=settings.timezone,
                ids=ids,
                credentials={"token": "ENVOY_TOKEN"},
            )
        )
    return sites
