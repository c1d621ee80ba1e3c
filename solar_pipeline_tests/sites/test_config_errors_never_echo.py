"""A syntax error in the sites file or its secrets_file (or the inverter tags file) is reported
by file, line and column, never by quoting the line: PyYAML quotes the offending line, and
that line may hold a password. Unit checks of every YAML mistake we know of, then the real
thing: the dagster CLI and `solar-pipeline report` in their own processes, with the output,
the event log, the compute logs and ops.site_status searched for the secret."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from solar_pipeline.settings import InvalidSettingError
from solar_pipeline.sites import load_sites
from solar_pipeline.sources.envoy.tags import load_inverter_tags
from solar_pipeline.warehouse import connect
from solar_pipeline_tests.helpers import ROOT
from solar_pipeline_tests.operations.conftest import cli_env

DAGSTER = str(Path(sys.executable).parent / "dagster")
CLI = str(Path(sys.executable).parent / "solar-pipeline")
RUN_ARGS = ["--select", "raw/goodwe_responses", "--partition", "2026-11-20"]
SECRET = "pw-" + secrets.token_hex(16)

# Each a line holding SECRET that PyYAML cannot read, as a user could write it.
BROKEN_LINES = {
    "colon in an unquoted value": f"GOODWE_FARM_PASSWORD: {SECRET}: x",
    "unclosed quote": f'GOODWE_FARM_PASSWORD: "{SECRET}',
    "unclosed flow sequence": f"GOODWE_FARM_PASSWORD: [{SECRET}",
    "unknown tag": f"GOODWE_FARM_PASSWORD: !{SECRET} x",
    "undefined alias": f"GOODWE_FARM_PASSWORD: *{SECRET}",
    "unknown escape": f'GOODWE_FARM_PASSWORD: "\\q{SECRET}"',
    "tab indentation": f"A: b\n\tGOODWE_FARM_PASSWORD: {SECRET}",
    "bad indentation": f"A:\n  - b\n GOODWE_FARM_PASSWORD: {SECRET}",
    "control character": f"GOODWE_FARM_PASSWORD: {SECRET}\x07",
    "duplicate anchor": f"A: &{SECRET} 1\nB: &{SECRET} 2\nC: *{SECRET}",
}

SITE = """
    sites:
      - site_id: farm
        vendor: goodwe
        timezone: Europe/Amsterdam
        ids: {station_id: 7d1c0e6a-2b55-4a0e-9f4e-5a1c2b3d4e5f, api_url: "http://127.0.0.1:9"}
        credentials: {account: GOODWE_FARM_ACCOUNT, password: GOODWE_FARM_PASSWORD}
"""


def leaks(text: str, window: int) -> bool:
    """Whether any `window` characters of SECRET appear in `text` (PyYAML cuts long lines
    short, so a part of the secret is as bad as all of it)."""
    return any(SECRET[i : i + window] in text for i in range(len(SECRET) - window + 1))


def _message_chain(exc: BaseException) -> str:
    """The exception's text and that of everything chained to it (what a traceback shows)."""
    parts = []
    seen: BaseException | None = exc
    while seen is not None:
        parts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return "\n".join(parts)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENPHASE_SYSTEM_ID", "ENVOY_URL", "SOLAR_SITE_ID", "GOODWE_FARM_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOODWE_FARM_ACCOUNT", "owner@example.org")


@pytest.mark.parametrize("line", BROKEN_LINES.values(), ids=BROKEN_LINES.keys())
def test_a_broken_sites_file_names_file_line_and_column_only(
    tmp_path, monkeypatch, clean_env, line
):
    path = tmp_path / "sites.yaml"
    path.write_text(f"# the fleet\n{line}\nsites: []\n")
    monkeypatch.setenv("SOLAR_SITES", str(path))
    with pytest.raises(InvalidSettingError) as err:
        load_sites()
    text = _message_chain(err.value)
    assert not leaks(text, 6), text
    assert str(path) in str(err.value)
    assert "line " in str(err.value) and "column " in str(err.value)


@pytest.mark.parametrize("line", BROKEN_LINES.values(), ids=BROKEN_LINES.keys())
def test_a_broken_secrets_file_names_file_line_and_column_only(
    tmp_path, monkeypatch, clean_env, line
):
    (tmp_path / "sites.yaml").write_text("secrets_file: secrets.yaml\n" + textwrap.dedent(SITE))
    secrets_file = tmp_path / "secrets.yaml"
    secrets_file.write_text(f"GOODWE_FARM_ACCOUNT: owner@example.org\n{line}\n")
    os.chmod(secrets_file, 0o600)
    monkeypatch.setenv("SOLAR_SITES", str(tmp_path / "sites.yaml"))
    (farm,) = load_sites()
    with pytest.raises(InvalidSettingError) as err:
        farm.secret("password")
    text = _message_chain(err.value)
    assert not leaks(text, 6), text
    assert str(secrets_file) in str(err.value) and "line " in str(err.value)


def test_the_line_number_points_at_the_mistake(tmp_path, monkeypatch, clean_env):
    path = tmp_path / "sites.yaml"
    path.write_text(f"sites: []\nx: 1\nGOODWE_FARM_PASSWORD: {SECRET}: x\n")
    monkeypatch.setenv("SOLAR_SITES", str(path))
    with pytest.raises(InvalidSettingError, match=r"line 3, column \d+"):
        load_sites()


def test_an_unreadable_or_binary_sites_file_is_named(tmp_path, monkeypatch, clean_env):
    path = tmp_path / "sites.yaml"
    path.write_bytes(b"sites: []\npassword: \xff" + SECRET.encode() + b"\n")
    monkeypatch.setenv("SOLAR_SITES", str(path))
    with pytest.raises(InvalidSettingError, match=r"UTF-8.*line 2") as err:
        load_sites()
    assert not leaks(_message_chain(err.value), 6)
    monkeypatch.setenv("SOLAR_SITES", str(tmp_path))
    with pytest.raises(InvalidSettingError, match="is a directory"):
        load_sites()


def test_a_broken_inverter_tags_file_names_file_line_and_column_only(tmp_path):
    for suffix, text in (
        (".yaml", f'"2022": {{label: "{SECRET}}}\n'),
        (".toml", f'x = "{SECRET}\n'),
    ):
        path = tmp_path / f"tags{suffix}"
        path.write_text(text)
        with pytest.raises(InvalidSettingError) as err:
            load_inverter_tags(path)
        assert not leaks(_message_chain(err.value), 6)
        assert str(path) in str(err.value) and "line 1" in str(err.value)


# --- the real processes -------------------------------------------------------------------


def _everything_written(home: Path, data: Path, *outputs: str) -> dict[str, str]:
    """Every text the runs left: the outputs, each file of the instance (event log, run
    storage, compute logs) and of the data directory, and every DuckDB value."""
    places = {f"output {n}": text for n, text in enumerate(outputs)}
    for root in (home, data):
        for path in root.rglob("*"):
            if path.is_file() and path.suffix not in (".duckdb", ".wal"):
                places[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    db = data / "solar.duckdb"
    if db.exists():
        con = duckdb.connect(str(db), read_only=True)
        try:
            tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
            places["duckdb"] = "\n".join(
                repr(row) for s, t in tables for row in con.execute(f"FROM {s}.{t}").fetchall()
            )
        finally:
            con.close()
    return places


def _status(data: Path) -> dict[str, str]:
    con = duckdb.connect(str(data / "solar.duckdb"), read_only=True)
    try:
        return dict(con.execute("SELECT site_id, last_error FROM ops.site_status").fetchall())
    finally:
        con.close()


def _materialize(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "solar_pipeline.definitions", *RUN_ARGS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def deployment(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    return cli_env(
        DAGSTER_HOME=str(home),
        SOLAR_DATA_DIR=str(tmp_path / "data"),
        SOLAR_TIMEZONE="Europe/Amsterdam",
        SOLAR_SITES=str(tmp_path / "sites.yaml"),
        GOODWE_FARM_ACCOUNT="owner@example.org",
    )


def test_a_broken_secrets_file_leaks_nowhere_in_a_real_run(tmp_path, deployment):
    (tmp_path / "sites.yaml").write_text("secrets_file: secrets.yaml\n" + textwrap.dedent(SITE))
    secrets_file = tmp_path / "secrets.yaml"
    secrets_file.write_text(f"GOODWE_FARM_PASSWORD: {SECRET}: x\n")
    os.chmod(secrets_file, 0o600)
    run = _materialize(deployment)
    places = _everything_written(
        tmp_path / "dagster_home", tmp_path / "data", run.stdout, run.stderr
    )
    assert any("ASSET_MATERIALIZATION" in text for text in places.values())
    # The step's captured output is searched too (the site's error is logged there).
    assert any("compute_logs" in place and "farm" in text for place, text in places.items())
    for place, text in places.items():
        # 12 random hex digits cannot appear by chance in the instance's run ids and hashes.
        assert not leaks(text, 12), f"the secret is in {place}"
    # The site failed alone (the fetch reports through its check), and says where to look.
    error = _status(tmp_path / "data")["farm"]
    assert str(secrets_file) in error and "line 1" in error, error


def test_a_broken_sites_file_leaks_nowhere_in_a_real_run_or_the_report(tmp_path, deployment):
    # The password pasted where its variable's name belongs, with a quote left open.
    (tmp_path / "sites.yaml").write_text(
        textwrap.dedent(SITE).replace("password: GOODWE_FARM_PASSWORD}", f'password: "{SECRET}}}')
    )
    run = _materialize(deployment)
    assert run.returncode != 0
    with connect(tmp_path / "data" / "solar.duckdb"):
        pass  # a database for the report to open
    report = subprocess.run(
        [CLI, "report"], cwd=tmp_path, env=deployment, capture_output=True, text=True, timeout=300
    )
    assert report.returncode != 0
    assert "sites.yaml" in report.stderr and "line " in report.stderr, report.stderr
    assert "Traceback" not in report.stderr, report.stderr[-3000:]
    places = _everything_written(
        tmp_path / "dagster_home",
        tmp_path / "data",
        run.stdout,
        run.stderr,
        report.stdout,
        report.stderr,
    )
    assert any("STEP_FAILURE" in text for text in places.values())
    for place, text in places.items():
        # 12 random hex digits cannot appear by chance in the instance's run ids and hashes.
        assert not leaks(text, 12), f"the secret is in {place}"
