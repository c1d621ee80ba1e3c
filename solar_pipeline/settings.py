"""Environment variables -> typed settings, with errors that name the variable to set.

Only non-secret settings are read here (they shape partitions and file paths at load time).
Secrets are read through ``dagster.EnvVar`` in the resources, so the UI shows names, not values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
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
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidSettingError(
                f"SOLAR_TIMEZONE={tz!r} is not an IANA time zone (e.g. Europe/Amsterdam)"
            ) from exc
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
