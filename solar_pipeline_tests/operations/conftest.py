"""Fixtures for running the pipeline the way a deployment does: the dagster CLI and daemon in
their own processes, a persistent Dagster instance, the simulators as the only outside world,
and, where the instance is the subject, a throw-away database on the machine's PostgreSQL."""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from solar_pipeline.simulator import EnphaseCloudSimulator
from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.helpers import ROOT

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


@dataclass
class Stack:
    """Running simulators and the settings a user would put in .env for them."""

    cloud: EnphaseCloudSimulator
    gateway: EnvoySimulator
    env: dict[str, str]
    secrets: dict[str, str]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Cloud and gateway simulators whose secrets are long random strings, so any copy of one
    in a log or a table can be found by a plain substring search."""
    values = {
        "ENPHASE_API_KEY": f"apikey-{secrets.token_hex(16)}",
        "ENPHASE_CLIENT_SECRET": f"clientsecret-{secrets.token_hex(16)}",
        "ENLIGHTEN_PASSWORD": f"password-{secrets.token_hex(16)}",
    }
    cloud = EnphaseCloudSimulator(
        [SYSTEM],
        per_minute=50,
        per_month=50_000,
        api_key=values["ENPHASE_API_KEY"],
        client_secret=values["ENPHASE_CLIENT_SECRET"],
    )
    # Plain HTTP and no nightly outage: the runs here are about the instance, not the gateway.
    gateway = EnvoySimulator(
        SYSTEM, firmware="D8.2.4345", outage=None, tls=False, password=values["ENLIGHTEN_PASSWORD"]
    )
    with cloud, gateway:
        values["ENPHASE_REFRESH_TOKEN"] = cloud.mint_refresh_token()
        env = {
            "SOLAR_DATA_DIR": str(tmp_path / "data"),
            "SOLAR_TIMEZONE": SYSTEM.timezone,
            "ENPHASE_API_URL": cloud.base_url,
            "ENPHASE_CLIENT_ID": cloud.client_id,
            "ENPHASE_SYSTEM_ID": str(SYSTEM.system_id),
            "ENPHASE_PLAN": "kilowatt",
            "ENVOY_URL": gateway.base_url,
            "ENLIGHTEN_URL": gateway.enlighten_url,
            "ENTREZ_URL": gateway.entrez_url,
            "ENLIGHTEN_USERNAME": gateway.username,
            **values,
        }
        yield Stack(cloud, gateway, env, values)


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A new, empty database on the machine's PostgreSQL, dropped afterwards."""
    try:
        admin = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
    except psycopg2.OperationalError as exc:
        pytest.fail(
            "PostgreSQL is not reachable on 127.0.0.1:5432 (start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, "
            f"as .ci/run does): {exc}"
        )
    admin.autocommit = True
    name = f"solar_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def postgres_instance_home(home: Path, db: str) -> dict[str, str]:
    """DAGSTER_HOME holding deploy/dagster.postgres.yaml, and the variables it reads."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": PG["host"],
        "DAGSTER_PG_PORT": str(PG["port"]),
        "DAGSTER_PG_USER": PG["user"],
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": db,
    }


def cli_env(**settings: str) -> dict[str, str]:
    """The test process's environment without anything that would point the dagster CLI at
    another instance, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_HOME", "DAGSTER_PG"))}
    env.update(settings)
    return env
