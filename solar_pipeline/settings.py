"""Environment variables -> typed settings, with errors that name the variable to set.

Only non-secret settings are read here (they shape partitions and file paths at load time).
Secrets are read through ``dagster.EnvVar`` in the resources, so the UI shows names, not values.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class MissingSettingError(RuntimeError):
    """A required environment variable is not set."""

    def __init__(self, name: str, purpose: str) -> None:
        super().__init__(
            f"Set the environment variable {name} ({purpose}); "
            "it can also go in a .env file in the working directory."
        )
        self.name = name


class InvalidSettingError(ValueError):
    """An environment variable is set to something unusable."""


# A site id goes into every table, message and dashboard: short, and no character that could
# break a line, a log or a page (fullmatch: `$` alone would let "home\n" through).
SITE_ID_RULE = "1 to 64 letters, digits and _.:- (starting with a letter or digit)"
_SITE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
# IANA keys are letters, digits and _+- in /-separated parts (Etc/GMT+5); checking the
# shape first keeps ZoneInfo from opening odd paths (and an over-long one from raising
# OSError). `localtime` is whatever zone the host has: not a site's zone.
_ZONE = re.compile(r"[A-Za-z0-9_+-]{1,32}(/[A-Za-z0-9_+-]{1,32}){0,2}")


def valid_site_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _SITE_ID.fullmatch(value) is not None


def valid_timezone(value: object) -> bool:
    if not isinstance(value, str) or not _ZONE.fullmatch(value) or value == "localtime":
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def shown(value: str) -> str:
    """A setting's value for a message: short printable text as it is, else described."""
    if not value.isprintable():
        return f"({len(value)} characters, with a line break or control character)"
    return repr(value) if len(value) <= 40 else f"({len(value)} characters)"


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or default


def require(name: str, purpose: str) -> str:
    value = env(name)
    if value is None:
        raise MissingSettingError(name, purpose)
    return value


def days_setting(name: str, default: int, minimum: int = 0) -> int:
    """A whole number of days from the environment; anything else names the variable."""
    raw = env(name, str(default)) or str(default)
    try:
        days = int(raw)
    except ValueError:
        days = minimum - 1
    if days < minimum:
        raise InvalidSettingError(
            f"{name}={raw!r} is not a whole number of days (at least {minimum}; e.g. {default})"
        )
    return days


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    duckdb_path: Path
    timezone: str
    start_date: date
    schedules_running: bool
    enphase_api_url: str
    enphase_token_store: str
    site_id: str | None

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(env("SOLAR_DATA_DIR", "./data") or "./data")
        duckdb_path = Path(env("SOLAR_DUCKDB_PATH") or data_dir / "solar.duckdb")
        tz = env("SOLAR_TIMEZONE", "UTC") or "UTC"
        if not valid_timezone(tz):
            raise InvalidSettingError(
                f"SOLAR_TIMEZONE={shown(tz)} is not an IANA time zone (e.g. Europe/Amsterdam)"
            )
        start = env("SOLAR_START_DATE", "2025-01-01") or "2025-01-01"
        try:
            start_date = date.fromisoformat(start)
        except ValueError as exc:
            raise InvalidSettingError(
                f"SOLAR_START_DATE={start!r} is not a date (YYYY-MM-DD)"
            ) from exc
        running = (env("SOLAR_SCHEDULES", "stopped") or "stopped").lower() == "running"
        api_url = env("ENPHASE_API_URL") or "https://api.enphaseenergy.com"
        token_store = env("ENPHASE_TOKEN_STORE") or f"file:{data_dir / 'enphase_tokens.json'}"
        # One site per deployment for now: named after the cloud system when there is one.
        system = env("ENPHASE_SYSTEM_ID")
        site = env("SOLAR_SITE_ID") or (f"enphase:{system}" if system else None)
        if site is not None and not valid_site_id(site):
            name = "SOLAR_SITE_ID" if env("SOLAR_SITE_ID") else "ENPHASE_SYSTEM_ID"
            raise InvalidSettingError(f"{name}: the site id {shown(site)} must be {SITE_ID_RULE}")
        return cls(data_dir, duckdb_path, tz, start_date, running, api_url, token_store, site)


@dataclass(frozen=True)
class EnvoySettings:
    """The gateway's non-secret settings; ENVOY_TOKEN and ENLIGHTEN_PASSWORD are read only
    when a run needs them."""

    url: str | None
    serial: str | None
    enlighten_url: str
    entrez_url: str
    cert_fingerprint: str | None
    inverter_tags: str | None

    @classmethod
    def from_env(cls) -> EnvoySettings:
        return cls(
            url=env("ENVOY_URL"),
            serial=env("ENVOY_SERIAL"),
            enlighten_url=env("ENLIGHTEN_URL") or "https://enlighten.enphaseenergy.com",
            entrez_url=env("ENTREZ_URL") or "https://entrez.enphaseenergy.com",
            cert_fingerprint=env("ENVOY_CERT_FINGERPRINT"),
            inverter_tags=env("ENVOY_INVERTER_TAGS"),
        )
