"""Fixtures for running the pipeline the way a deployment does: the dagster CLI and daemon in
their own processes, a persistent Dagster instance, the simulators as the only outside world,
and, where the instance is the subject, a throw-away database on the machine's PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml

from solar_pipeline.simulator import EnphaseCloudSimulator
from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.helpers import ROOT, free_port

PG: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
BIN = Path(sys.executable).parent


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


class Deployment:
    """The processes of deploy/docker-compose.yml on loopback: a gRPC code server and the daemon
    reading a workspace file that points at it (runs are subprocesses of the code server). Each
    process has its own group, so a kill takes its runs too; all are ended by stop()."""

    def __init__(self, tmp_path: Path, env: dict[str, str]):
        self.tmp_path, self.env = tmp_path, env
        self.port = free_port()
        self.workspace = tmp_path / "workspace.yaml"
        deployed = yaml.safe_load((ROOT / "deploy" / "workspace.yaml").read_text())
        deployed["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=self.port)
        self.workspace.write_text(yaml.safe_dump(deployed))
        env["TEST_WORKSPACE"] = str(self.workspace)
        self.processes: list[subprocess.Popen] = []

    def start(self, args: list[str], log: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            args,
            cwd=self.tmp_path,
            env=self.env,
            stdout=open(self.tmp_path / log, "ab"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(proc)
        return proc

    def start_code_server(self) -> subprocess.Popen:
        """Started and answering its health check, as Compose's healthcheck waits for."""
        serve = ["code-server", "start", "-h", "127.0.0.1", "-p", str(self.port)]
        location = ["-m", "solar_pipeline.definitions", "--location-name", "solar_pipeline"]
        code = self.start([str(BIN / "dagster"), *serve, *location], "code_server.log")
        log = self.tmp_path / "code_server.log"

        def up() -> bool:
            assert code.poll() is None, log.read_text()[-2000:]
            check = [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(self.port)]
            return subprocess.run(check, capture_output=True, env=self.env).returncode == 0

        wait_for(up, 120, "the code server's health check", 1.0)
        return code

    def start_daemon(self) -> subprocess.Popen:
        return self.start(
            [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)], "daemon.log"
        )

    def stop(self) -> None:
        for proc in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
