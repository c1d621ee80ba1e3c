"""solar-pipeline: the simulator, the first Enphase authorization, and token status."""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import click
from dotenv import load_dotenv

from solar_pipeline.settings import InvalidSettingError, MissingSettingError, Settings, env, require

# Why a path refused a write, and what the user can do about it.
_WRITE_REFUSALS = {
    errno.EACCES: "permission denied: choose a folder you can write to, or fix its owner/mode",
    errno.EPERM: "not permitted (an immutable flag, or a mount that refuses it): choose "
    "another folder",
    errno.EROFS: "the file system is read-only: choose a folder on a writable one",
    errno.ENOSPC: "the disk is full: free some space or choose another disk",
    errno.EDQUOT: "the disk quota is used up: free some space or choose another disk",
}


class _Commands(click.Group):
    """A setting that is missing or wrong (a variable, the sites file), a damaged database, or
    a folder that refuses a write is a message that says what to fix, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from solar_pipeline.warehouse.damage import DamagedDatabaseError

        try:
            return super().invoke(ctx)
        except (InvalidSettingError, MissingSettingError, DamagedDatabaseError) as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            # Only a refused write is the user's to fix; anything else is a bug to report with
            # its traceback. A full disk fails a write() of data, which names no file.
            if exc.errno not in _WRITE_REFUSALS:
                raise
            where = f" {exc.filename}" if exc.filename else ""
            raise click.ClickException(
                f"Cannot write{where}: {_WRITE_REFUSALS[exc.errno]}."
            ) from None
        except Exception as exc:
            import duckdb

            # DuckDB reports a refused write as an IOException carrying the OS's words and the
            # path; those are the same refusals.
            if isinstance(exc, duckdb.IOException):
                for code, hint in _WRITE_REFUSALS.items():
                    if os.strerror(code) in str(exc):
                        text = str(exc).removeprefix("IO Error: ")
                        raise click.ClickException(f"{text}: {hint}.") from None
            raise


@click.group(cls=_Commands)
def main() -> None:
    """solar_pipeline command line (reads a .env file in the working directory too)."""
    load_dotenv(Path.cwd() / ".env")


@main.command("enphase-auth")
@click.option("--code", help="The authorization code shown after the owner approved the app.")
@click.option("--redirect-uri", help="The redirect URI registered with the Enphase app.")
def enphase_auth(code: str | None, redirect_uri: str | None) -> None:
    """First authorization: print the consent URL, or exchange CODE and store the tokens."""
    from solar_pipeline.sources.enphase.oauth import OAuthClient
    from solar_pipeline.sources.http import build_session
    from solar_pipeline.warehouse.request_log import DuckDBRequestLog

    settings = Settings.from_env()
    try:
        client_id = require("ENPHASE_CLIENT_ID", "the Enphase application's client id")
        secret = require("ENPHASE_CLIENT_SECRET", "the Enphase application's client secret")
    except MissingSettingError as exc:
        raise click.ClickException(str(exc)) from None
    # Token calls count in the same request ledger as the pipeline's.
    log = DuckDBRequestLog(settings.duckdb_path, "enphase", "raw.enphase_responses")
    oauth = OAuthClient(settings.enphase_api_url, client_id, secret, build_session(), log)
    if not code:
        click.echo("1. Open this URL in a browser, log in with the system owner's Enlighten")
        click.echo("   account and approve the application:\n")
        click.echo(f"   {oauth.authorize_url(redirect_uri)}\n")
        click.echo("2. Copy the code from the page you land on, then run:\n")
        click.echo(
            "   solar-pipeline enphase-auth --code CODE"
            + (f" --redirect-uri {redirect_uri}" if redirect_uri else "")
        )
        return
    from solar_pipeline.sources.enphase.errors import EnphaseError
    from solar_pipeline.sources.enphase.tokens import (
        TokenManager,
        TokenStoreError,
        token_store_from_uri,
    )

    store = token_store_from_uri(settings.enphase_token_store)
    try:
        with store.lock():
            # The store proves it can take the pair before the (single-use) code is spent.
            pair = TokenManager(store, oauth).store_new(
                lambda: oauth.exchange_code(code, redirect_uri)
            )
    except (EnphaseError, TokenStoreError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        log.close()
    status = pair.status(time.time())
    click.echo(f"Stored a new Enphase token pair in {store.describe()}.")
    click.echo(
        f"The refresh token lapses in {status['refresh_token_expires_in_days']} days "
        "unless the pipeline refreshes it (every run does when needed)."
    )


@main.command("token-status")
def token_status() -> None:
    """How old the stored Enphase tokens are and when they lapse (never the tokens)."""
    from solar_pipeline.sources.enphase.tokens import TokenStoreError, token_store_from_uri

    uri = Settings.from_env().enphase_token_store
    store = token_store_from_uri(uri)
    try:
        for warning in getattr(store, "warnings", list)():
            click.echo(f"Warning: {warning}", err=True)
        pair = store.read()
    except TokenStoreError as exc:
        raise click.ClickException(str(exc)) from None
    if pair is None:
        raise click.ClickException(f"No tokens in {uri}: run `solar-pipeline enphase-auth`.")
    click.echo(
        json.dumps({"store": uri, "origin": pair.origin, **pair.status(time.time())}, indent=2)
    )


@main.command("sma-consent")
@click.option("--site", "plant_id", required=True, help="The SMA plant id (for messages).")
@click.option("--email", required=True, help="The plant owner's Sunny Portal e-mail address.")
@click.option("--wait", is_flag=True, help="Poll until the owner has approved the e-mail.")
@click.option("--timeout", default=900, show_default=True, type=int, help="Seconds to wait.")
def sma_consent(plant_id: str, email: str, wait: bool, timeout: int) -> None:
    """Ask SMA to e-mail the plant owner for consent (or show its state); with --wait, store a
    token obtained after the owner approved. Needs SMA_CLIENT_ID and SMA_CLIENT_SECRET."""
    from solar_pipeline.sources.enphase.tokens import TokenStoreError
    from solar_pipeline.sources.sma import oauth as sma
    from solar_pipeline.sources.sma.errors import SmaError

    try:
        client_id = require("SMA_CLIENT_ID", "the SMA application's client id")
        secret = require("SMA_CLIENT_SECRET", "the SMA application's client secret")
    except MissingSettingError as exc:
        raise click.ClickException(str(exc)) from None
    oauth, tokens = sma.sma_auth(client_id, secret, Settings.from_env().data_dir)
    consent = sma.SmaConsent(oauth, tokens)
    try:
        if wait:
            status = consent.wait(email, timeout_s=timeout, plant_id=plant_id)
        else:
            status = consent.request(email, plant_id)
    except (SmaError, TokenStoreError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Plant {plant_id}: consent {status.state}. {status.instructions()}")
    if status.accepted and wait:
        click.echo(f"Stored a token obtained after the consent in {tokens.store.describe()}.")


@main.command("envoy-reparse")
def envoy_reparse() -> None:
    """Parse the whole raw.envoy_responses table again (after a parser fix), as a Dagster run.

    Readings of answers moved to the archive are kept; `raw-restore` them first to re-parse
    those too."""
    import dagster as dg

    from solar_pipeline.assets import envoy
    from solar_pipeline.definitions import build_resources

    resources = build_resources(Settings.from_env())
    # Recorded in the instance (DAGSTER_HOME) like any run, so the UI shows the re-parse.
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    result = dg.materialize(
        [envoy.envoy_readings],
        resources={"warehouse": resources["warehouse"]},
        run_config={"ops": {"envoy_readings": {"config": {"full_reparse": True}}}},
        instance=instance,
    )
    meta = result.asset_materializations_for_node("envoy_readings")
    for m in meta:
        click.echo(
            f"{m.asset_key.to_user_string()}: {m.metadata['rows_written'].value} rows, "
            f"{m.metadata['malformed_answers'].value} malformed answers"
        )


@main.command("export")
@click.option(
    "--to",
    "to_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the Parquet export (default: $SOLAR_DATA_DIR/export).",
)
def export(to_dir: Path | None) -> None:
    """Write the enphase, envoy, energy and fleet vendor tables as Parquet, one file per table
    and month (DIR/<schema>.<table>/year=YYYY/month=MM/data.parquet); only changed months are
    rewritten."""
    from solar_pipeline.warehouse.export import export_parquet

    settings = Settings.from_env()
    target = to_dir or settings.data_dir / "export"
    try:
        summary = export_parquet(settings.duckdb_path, target, settings.timezone)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary.describe())
    for written in summary.written:
        click.echo(f"  wrote {written}")
    for removed in summary.removed:
        click.echo(f"  removed {removed}")


@main.command("report")
@click.option(
    "--to",
    "to_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the page (default: $SOLAR_DATA_DIR/reports).",
)
@click.option("--open", "open_it", is_flag=True, help="Open the page in the default browser.")
def report(to_dir: Path | None, open_it: bool) -> None:
    """Build the energy dashboard now: one self-contained HTML page (works offline)."""
    import webbrowser

    from solar_pipeline.reports.dashboard import build_dashboard
    from solar_pipeline.warehouse import connect

    settings = Settings.from_env()
    if not settings.duckdb_path.exists():
        raise click.ClickException(
            f"No database at {settings.duckdb_path} yet: run the pipeline first (make demo), "
            "or set SOLAR_DATA_DIR / SOLAR_DUCKDB_PATH."
        )
    # Read-only: the page never writes, and a running pipeline keeps its writer lock.
    with connect(settings.duckdb_path, read_only=True) as conn:
        dash = build_dashboard(conn, settings, to_dir)
    sites = ", ".join(s.site_id for s in dash.report.sites) or "no site with data yet"
    click.echo(f"Wrote {dash.html_path} ({dash.page.charts} charts; {sites})")
    if open_it and not webbrowser.open(dash.html_path.resolve().as_uri()):
        click.echo("No browser to open it here; open the file above.")


@main.command("raw-archive")
@click.option(
    "--older-than-days",
    type=click.IntRange(min=0),
    help="Archive raw rows fetched more than N days ago "
    "(default: SOLAR_RAW_RETENTION_DAYS, else 90).",
)
def raw_archive(older_than_days: int | None) -> None:
    """Move old raw API answers from DuckDB into zstd Parquet files under
    $SOLAR_DATA_DIR/archive/raw (deleted from DuckDB only once verified in a file)."""
    from solar_pipeline.settings import InvalidSettingError
    from solar_pipeline.warehouse.archive import archive_raw, retention_days_from_env

    settings = Settings.from_env()
    try:
        days = older_than_days if older_than_days is not None else retention_days_from_env()
    except InvalidSettingError as exc:
        raise click.ClickException(str(exc)) from None
    summary = archive_raw(settings.duckdb_path, settings.data_dir, days, settings.timezone)
    click.echo(summary.describe())
    for path in summary.files:
        click.echo(f"  wrote {path}")


@main.command("raw-restore")
@click.option(
    "--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day."
)
@click.option(
    "--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day (included)."
)
def raw_restore(first: datetime, last: datetime) -> None:
    """Put archived raw answers of local days FROM..TO back into DuckDB (ids already there are
    skipped), e.g. before `solar-pipeline envoy-reparse`; the archive files are kept."""
    from solar_pipeline.warehouse.archive import restore_raw

    settings = Settings.from_env()
    try:
        summary = restore_raw(
            settings.duckdb_path,
            settings.data_dir,
            first.date(),
            last.date(),
            settings.timezone,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary.describe())


@main.command("backup")
@click.option(
    "--to",
    "to_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder that receives a new solar-backup-<time> folder.",
)
def backup_cmd(to_dir: Path) -> None:
    """Copy the DuckDB database (consistently, while the pipeline may run), the Enphase token
    file and the Envoy state files into a new timestamped folder with a manifest."""
    from solar_pipeline.warehouse.backup import BackupError, backup

    try:
        result = backup(Settings.from_env(), to_dir)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    files = result.manifest["files"]
    click.echo(f"Backup written to {result.path}")
    for entry in files:
        click.echo(f"  {entry['name']}: {entry['size']} bytes, sha256 {entry['sha256'][:16]}...")
    tables = result.manifest["tables"]
    click.echo(f"  {sum(tables.values())} rows in {len(tables)} tables")
    for note in result.notes:
        click.echo(note)


@main.command("restore")
@click.option(
    "--from",
    "from_dir",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A backup folder (solar-backup-<time>, holding manifest.json).",
)
@click.option(
    "--force", is_flag=True, help="Overwrite files in a SOLAR_DATA_DIR that is not empty."
)
@click.option(
    "--tokens-only",
    is_flag=True,
    help="Restore only the token files (the pipeline may keep running).",
)
@click.option(
    "--overwrite-tokens",
    is_flag=True,
    help="Restore the backup's token files even where the current ones are newer.",
)
def restore_cmd(from_dir: Path, force: bool, tokens_only: bool, overwrite_tokens: bool) -> None:
    """Restore a backup into SOLAR_DATA_DIR (which must be empty or missing unless --force),
    after checking every file's SHA-256. A token newer than the backup's is kept."""
    from solar_pipeline.sources.enphase.token_pair import TokenStoreError
    from solar_pipeline.warehouse.backup import BackupError, restore

    settings = Settings.from_env()
    try:
        result = restore(
            settings,
            from_dir,
            force=force,
            tokens_only=tokens_only,
            overwrite_tokens=overwrite_tokens,
        )
    except (BackupError, TokenStoreError) as exc:
        raise click.ClickException(str(exc)) from None
    what = "the token files of the backup" if tokens_only else "the backup"
    click.echo(f"Restored {what} of {result.manifest['created_at']} into {settings.data_dir}.")
    for note in result.notes:
        click.echo(note)


@main.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=int)
@click.option(
    "--envoy-port",
    default=8788,
    show_default=True,
    type=int,
    help="Port of the simulated Envoy (HTTPS); 0 disables it.",
)
@click.option("--envoy-firmware", default="D8.2.4345", show_default=True)
@click.option(
    "--envoy-replay",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Serve a captured fixture folder instead of live data.",
)
@click.option("--plan", default=None, help="Quota plan to enforce (default: ENPHASE_PLAN).")
@click.option("--system-id", default=4021157, show_default=True, type=int)
@click.option("--lenient", is_flag=True, help="Keep old refresh tokens valid after a refresh.")
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the ENPHASE_* and ENVOY_* settings that point the pipeline at the simulators.",
)
@click.option(
    "--fleet-sites",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also simulate one site per fleet vendor (SolarEdge, Fronius, GoodWe, SMA), each in its "
    "own time zone, and write the sites file (SOLAR_SITES) that lists them with the home "
    "system.",
)
def simulate(
    host: str,
    port: int,
    envoy_port: int,
    envoy_firmware: str,
    envoy_replay: Path | None,
    plan: str | None,
    system_id: int,
    lenient: bool,
    env_file: Path | None,
    fleet_sites: Path | None,
) -> None:
    """Run the Enphase cloud and Envoy simulators (real HTTP servers) until Ctrl-C.

    Both serve the same synthetic system, so the cloud and the gateway agree on production.
    """
    from solar_pipeline.simulator import EnphaseCloudSimulator, SystemSpec
    from solar_pipeline.simulator.envoy import EnvoySimulator
    from solar_pipeline.sources.enphase.budget import plan_named

    settings = Settings.from_env()
    quota = plan_named(plan or env("ENPHASE_PLAN", "watt") or "watt")
    spec = SystemSpec(system_id=system_id, timezone=settings.timezone)
    sim = EnphaseCloudSimulator(
        [spec], per_minute=quota.per_minute, per_month=quota.per_month, strict=not lenient
    )
    url = sim.start(host, port)
    settings_out = {
        "ENPHASE_API_URL": url,
        "ENPHASE_API_KEY": sim.api_key,
        "ENPHASE_CLIENT_ID": sim.client_id,
        "ENPHASE_CLIENT_SECRET": sim.client_secret,
        "ENPHASE_SYSTEM_ID": str(system_id),
        "ENPHASE_PLAN": quota.name,
        "ENPHASE_REFRESH_TOKEN": sim.mint_refresh_token(),
    }
    gateway = None
    if envoy_port:
        gateway = EnvoySimulator(spec, firmware=envoy_firmware, replay=envoy_replay)
        settings_out["ENVOY_URL"] = gateway.start(host, envoy_port)
        settings_out["ENLIGHTEN_URL"] = gateway.enlighten_url
        settings_out["ENTREZ_URL"] = gateway.entrez_url
        if gateway.cert_fingerprint:
            settings_out["ENVOY_CERT_FINGERPRINT"] = gateway.cert_fingerprint
        if gateway.version[:1] >= (7,):
            settings_out["ENVOY_TOKEN"] = gateway.mint_token()
    fleet = None
    if fleet_sites:
        from solar_pipeline.simulator.fleet import FleetSimulators

        fleet = FleetSimulators(host).start()
        home = {"site_id": "home", "vendor": "enphase", "timezone": settings.timezone}
        fleet_sites.parent.mkdir(parents=True, exist_ok=True)
        fleet_sites.write_text(
            fleet.sites_yaml(
                [home] + ([{**home, "vendor": "envoy"}] if gateway is not None else [])
            )
        )
        settings_out["SOLAR_SITES"] = str(fleet_sites.resolve())
        settings_out.update(fleet.settings)
        click.echo(f"Fleet simulators (SolarEdge, Fronius, GoodWe, SMA) listed in {fleet_sites}")
    if env_file:
        env_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in settings_out.items())
        click.echo(f"Wrote the simulators' settings to {env_file}")
    click.echo(
        f"Enphase cloud simulator on {url} (plan {quota.name}, "
        f"{'lenient' if lenient else 'strict'} refresh tokens)"
    )
    if gateway is not None:
        click.echo(
            f"Envoy simulator on {gateway.base_url} (firmware {gateway.firmware}"
            f"{', replaying ' + str(envoy_replay) if envoy_replay else ''}); "
            "Ctrl-C stops both."
        )
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        if gateway is not None:
            gateway.stop()
        if fleet is not None:
            fleet.stop()


if __name__ == "__main__":
    main()
