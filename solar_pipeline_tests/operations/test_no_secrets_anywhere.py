"""The whole demo pipeline (scripts/demo_pipeline.sh, as `make demo` runs it, with the mixed
fleet of SOLAR_SITES) with recognisable secret values, then a failing run after the owner
revoked access: no secret may appear in the captured output, Dagster's instance (event log,
run tags, metadata, compute logs), the data directory beside the token stores, or any DuckDB
table. The token stores themselves must be private: data dir 0700, token files 0600."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from solar_pipeline.simulator.fleet import FleetSimulators
from solar_pipeline.sources.enphase.tokens import FileTokenStore
from solar_pipeline_tests.helpers import ROOT
from solar_pipeline_tests.operations.conftest import cli_env
from solar_pipeline_tests.operations.test_postgres_instance import materialize

# Where secrets are meant to live; everything else is searched.
TOKEN_FILES = {"enphase_tokens.json", "envoy_token.json", "sma_tokens.json"}


def duckdb_text(path: Path) -> str:
    """Every value of every table as text (the file itself is compressed, so grep is not enough)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'solar'"
        ).fetchall()
        out = []
        for schema, table in tables:
            out += [repr(row) for row in con.execute(f"SELECT * FROM {schema}.{table}").fetchall()]
        return "\n".join(out)
    finally:
        con.close()


@pytest.fixture
def fleet() -> Iterator[FleetSimulators]:
    """The demo's SolarEdge, Fronius and GoodWe sites, with fresh random key and password."""
    sims = FleetSimulators().start()
    try:
        yield sims
    finally:
        sims.stop()


def test_no_secret_in_outputs_instance_or_tables(stack, fleet, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    sites = tmp_path / "sites.yaml"
    here = {"site_id": "home", "timezone": stack.env["SOLAR_TIMEZONE"]}
    sites.write_text(fleet.sites_yaml([{**here, "vendor": "enphase"}, {**here, "vendor": "envoy"}]))
    env = cli_env(
        **stack.env, **fleet.settings, SOLAR_SITES=str(sites), DAGSTER_HOME=str(home), DEMO_DAYS="2"
    )
    demo = subprocess.run(
        [str(ROOT / "scripts" / "demo_pipeline.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]

    # The owner withdraws the app's access: the next run fails and says how to re-authorize,
    # without quoting the token it tried.
    stack.cloud.revoke_refresh_tokens()
    stack.cloud.expire_access_tokens()
    failed = materialize(env, "raw/enphase_responses", "--partition", "2026-11-20")
    assert failed.returncode != 0
    assert "enphase-auth" in failed.stdout + failed.stderr

    data = Path(stack.env["SOLAR_DATA_DIR"])
    pair = FileTokenStore(data / "enphase_tokens.json").read()
    envoy_jwt = (data / "envoy_token.json").read_text()
    secrets = {
        **stack.secrets,
        "rotated access token": pair.access_token,
        "rotated refresh token": pair.refresh_token,
        "SolarEdge key": fleet.settings["SOLAREDGE_COTTAGE_KEY"],
        "GoodWe password": fleet.settings["GOODWE_FARM_PASSWORD"],
        "SMA client secret": fleet.settings["SMA_CLIENT_SECRET"],
    }
    sma_pair = FileTokenStore(data / "sma_tokens.json").read()
    secrets["SMA access token"] = sma_pair.access_token
    if sma_pair.refresh_token:  # SMA may issue none with client credentials
        secrets["SMA refresh token"] = sma_pair.refresh_token
    goodwe_tokens = [
        t for sim in fleet.sims if hasattr(sim, "issued_tokens") for t in sim.issued_tokens()
    ]
    assert goodwe_tokens  # the fleet step did log in
    secrets.update({f"GoodWe token {n}": t for n, t in enumerate(goodwe_tokens)})
    assert pair.refresh_token != stack.secrets["ENPHASE_REFRESH_TOKEN"]  # it did rotate
    # The gateway token fetched with ENLIGHTEN_PASSWORD: the JWT's signature is the secret part.
    secrets["envoy token"] = next(
        part for part in envoy_jwt.replace('"', " ").split() if part.count(".") == 2
    ).rsplit(".", 1)[1]

    places: dict[str, str] = {
        "demo output": demo.stdout + demo.stderr,
        "failed run output": failed.stdout + failed.stderr,
        "DuckDB tables": duckdb_text(data / "solar.duckdb"),
    }
    compute_logs = 0
    for root in (home, data):
        for path in root.rglob("*"):
            if path.is_file() and path.name not in TOKEN_FILES and path.suffix != ".duckdb":
                places[str(path.relative_to(tmp_path))] = path.read_bytes().decode(
                    "utf-8", errors="replace"
                )
                compute_logs += "compute_logs" in path.parts and path.stat().st_size > 0
    # The search must have something to search: the event log (SQLite under DAGSTER_HOME) holds
    # the runs' events, tags and metadata, and the steps' compute logs were captured.
    event_logs = "".join(v for k, v in places.items() if k.endswith(".db"))
    assert "ASSET_MATERIALIZATION" in event_logs and "enphase-auth" in event_logs
    assert compute_logs > 0
    for name, secret in secrets.items():
        assert len(secret) >= 16
        for place, text in places.items():
            assert secret not in text, f"{name} found in {place}"

    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    for name in TOKEN_FILES:
        assert stat.S_IMODE(os.stat(data / name).st_mode) == 0o600, name
