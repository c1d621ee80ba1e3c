"""A week of the cloud, gateway and fleet paths with faults switched on at random, against a
clean week.

Two worlds with the same systems: each has its own Enphase cloud simulator, Envoy gateway
simulator (on a simulated clock, polled every hour as the 10-minute schedule would, coarser),
SolarEdge and Fronius sites, token store and DuckDB file. Every day, both worlds poll the
gateway through the day, fetch the day from the cloud and the fleet, and build the day's energy.
The faulty world meets, at random:

- cloud: 5xx bursts, an HTML page, redirects to another host, a 50 MB body, a gzip bomb, JSON
  nested 100,000 deep, NaN/Infinity/1e400 numbers; on one day an immutable token directory
  (`chattr +i`, which stops root too);
- gateway: 5xx, hangs past the read timeout, HTML, the same misbehaviours, on a third of its
  polls (not the midnight ones: a gateway keeps no history, and a day's energy is the
  difference of its lifetime counters at the two midnights);
- fleet: 5xx, HTML and the misbehaviours on the SolarEdge and Fronius answers;
- one day's cloud run is a real `dagster asset materialize` process on the world's Dagster
  instance, SIGKILLed while it holds the duckdb pool slot, with the real daemon running.

Then the one clean catch-up pass the nightly completion and the gap-fill sensor would give it.
The week must end as the clean week did: the same daily energy (every site, every day) and the
same cloud intervals, a refresh token that still works, no pool slot held, no secret in any
file, and requests within a week's share of the Watt plan and of SolarEdge's daily quota.

The random choices come from SOLAR_SOAK_SEED (printed; set it to replay a failure).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef

from solar_pipeline.assets import energy, fronius, solaredge
from solar_pipeline.assets.envoy.ingest import ingest
from solar_pipeline.constants import DUCKDB_POOL
from solar_pipeline.resources import DuckDBWarehouse, EnphaseCloudResource
from solar_pipeline.run_launcher import MIN_HEARTBEAT_TIMEOUT_S
from solar_pipeline.simulator import EnphaseCloudSimulator, solar_model
from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline.simulator.faults import KINDS
from solar_pipeline.simulator.fronius import FroniusSimulator
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.simulator.solaredge import PER_DAY, SolarEdgeSimulator
from solar_pipeline.sources.enphase.budget import plan_named
from solar_pipeline.sources.envoy.client import EnvoyClient
from solar_pipeline.sources.envoy.errors import EnvoyError
from solar_pipeline.sources.envoy.poll import poll_once
from solar_pipeline.sources.envoy.tokens import EnvoyTokenProvider
from solar_pipeline.warehouse.envoy_raw import EnvoyRawWriter
from solar_pipeline_tests.conftest import SYSTEM, make_enphase
from solar_pipeline_tests.energy.helpers import Clock
from solar_pipeline_tests.helpers import ROOT, TELEMETRY, failure_message, query, run_range
from solar_pipeline_tests.operations.conftest import cli_env, wait_for

pytestmark = pytest.mark.slow

DAYS = [date(2025, 6, 9) + timedelta(days=i) for i in range(7)]
PLAN = "kilowatt"
TZ = SYSTEM.timezone
SE = SystemSpec(system_id=5150001, timezone=TZ, operational_date=date(2025, 1, 1))
FR = SystemSpec(system_id=5150002, timezone=TZ, operational_date=date(2025, 1, 1))
# The fleet's vendors are asked after the week, as a catch-up the next morning would.
FLEET_NOW = datetime(2025, 6, 20, 9, tzinfo=UTC).timestamp()
FLEET_ASSETS = [*solaredge.assets, *fronius.assets]
CLOUD_ENDPOINTS = ["production_micro", "production_meter", "consumption_meter", "energy_lifetime"]
SITES_YAML = """
sites:
  - site_id: home
    vendor: enphase
    timezone: {tz}
  - site_id: home
    vendor: envoy
    timezone: {tz}
  - site_id: cottage
    vendor: solaredge
    timezone: {tz}
    ids: {{site_id: {se_id}, api_url: "{se_url}"}}
    credentials: {{api_key: SOLAREDGE_COTTAGE_KEY}}
  - site_id: workshop
    vendor: fronius
    timezone: {tz}
    ids: {{url: "{fr_url}"}}
"""
# The shipped instance file with its waits shortened; the bound scales to the shipped one.
WAITS = {"poll_interval_seconds": 2, "free_slots_after_run_end_seconds": 3}
SLOT_BOUND_S = MIN_HEARTBEAT_TIMEOUT_S + 90


@dataclass
class World:
    name: str
    home: Path
    cloud: EnphaseCloudSimulator
    enphase: EnphaseCloudResource
    refresh_token: str
    gateway: EnvoySimulator
    clock: Clock
    envoy_token: str
    solaredge: SolarEdgeSimulator
    fronius: FroniusSimulator
    warehouse: DuckDBWarehouse
    env: dict[str, str] = field(default_factory=dict)
    instance: dg.DagsterInstance | None = None

    @property
    def secrets(self) -> list[str]:
        return [
            self.cloud.api_key,
            self.cloud.client_secret,
            self.gateway.password,
            self.envoy_token,
            self.solaredge.api_key,
        ]


def _world(name: str, root: Path, stack: Any) -> World:
    home = root / name
    (home / "tokens").mkdir(parents=True)
    (home / "envoy").mkdir()
    # The gateway's clock starts the week, so the owner token minted now is valid in it.
    cloud, clock = (
        stack.enter_context(_cloud()),
        Clock(solar_model.local_day_bounds(SYSTEM, DAYS[0])[0]),
    )
    # Plain HTTP: the TLS path is tested elsewhere, and a handshake per request would triple the
    # run time of a week of polls.
    gateway = stack.enter_context(EnvoySimulator(SYSTEM, outage=None, clock=clock, tls=False))
    se = stack.enter_context(SolarEdgeSimulator([SE], clock=lambda: FLEET_NOW))
    fr = stack.enter_context(FroniusSimulator(FR, clock=lambda: FLEET_NOW))
    sites = home / "sites.yaml"
    sites.write_text(
        SITES_YAML.format(tz=TZ, se_id=SE.system_id, se_url=se.base_url, fr_url=fr.base_url)
    )
    resource = make_enphase(cloud, home / "tokens", read_timeout_s=2.0, plan=PLAN)
    world = World(
        name,
        home,
        cloud,
        resource,
        cloud.mint_refresh_token(),
        gateway,
        clock,
        gateway.mint_token(lifetime_s=10 * 365 * 86400),
        se,
        fr,
        DuckDBWarehouse(path=str(home / "solar.duckdb")),
    )
    world.env = {
        "SOLAR_SITES": str(sites),
        "SOLAR_DATA_DIR": str(home),
        "SOLAR_SITE_ID": "home",
        "SOLAREDGE_COTTAGE_KEY": se.api_key,
    }
    return world


def _cloud() -> EnphaseCloudSimulator:
    plan = plan_named(PLAN)
    return EnphaseCloudSimulator([SYSTEM], per_minute=plan.per_minute, per_month=50_000)


# ---- faults ------------------------------------------------------------------------------


def _arm_cloud(sim: EnphaseCloudSimulator, rng: random.Random) -> list[str]:
    armed = []
    for _ in range(rng.randint(1, 3)):
        where = rng.choice(CLOUD_ENDPOINTS)
        kind = rng.choice(["5xx", "html", "misbehave", "misbehave"])
        if kind == "5xx":
            count = rng.randint(1, 4)
            sim.fail_next(count=count, status=rng.choice([500, 502, 503]), path_contains=where)
            armed.append(f"cloud {count}x5xx@{where}")
        elif kind == "html":
            sim.fail_next(count=1, status=200, html=True, path_contains=where)
            armed.append(f"cloud html@{where}")
        else:
            what = rng.choice(KINDS)
            sim.misbehave_next(what, path_contains=where)
            armed.append(f"cloud {what}@{where}")
    return armed


def _arm_gateway(sim: EnvoySimulator, rng: random.Random) -> str:
    kind = rng.choice(["5xx", "hang", "html", "misbehave", "misbehave"])
    where = rng.choice(["production.json", "ivp/meters", "api/v1/production", None])
    if kind == "5xx":
        sim.fail_next(count=1, status=rng.choice([500, 503]), path_contains=where)
    elif kind == "hang":
        sim.fail_next(count=1, status=None, hang_s=2, path_contains=where)
    elif kind == "html":
        sim.fail_next(count=1, status=200, body="<html><h1>Busy</h1></html>", path_contains=where)
    else:
        kind = rng.choice(KINDS)
        sim.misbehave_next(kind, path_contains=where)
    return f"gateway {kind}@{where or 'any'}"


def _arm_fleet(world: World, rng: random.Random) -> list[str]:
    armed = []
    for name, sim in (("solaredge", world.solaredge), ("fronius", world.fronius)):
        kind = rng.choice(["none", "5xx", "html", "misbehave"])
        if kind == "5xx":
            sim.fail_next(count=rng.randint(1, 3), status=rng.choice([500, 503]))
        elif kind == "html":
            sim.fail_next(count=1, status=200, body="<html>maintenance</html>")
        elif kind == "misbehave":
            kind = rng.choice(KINDS)
            sim.misbehave_next(kind)
        if kind != "none":
            armed.append(f"{name} {kind}")
    return armed


def _clear_faults(world: World) -> None:
    for sim in (world.cloud, world.gateway, world.solaredge, world.fronius):
        sim.clear_faults()


def _immutable(path: Path, on: bool) -> bool:
    if shutil.which("chattr") is None:
        return False
    flag = "+i" if on else "-i"
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


# ---- the paths, as the schedules run them ------------------------------------------------


def _poll_gateway(world: World, times: range, rng: random.Random | None, log: list) -> None:
    """Poll the gateway at each of `times` (Unix seconds, on its clock), store the answers and
    parse them, as raw.envoy_responses and envoy_readings do; with `rng`, arm a random fault
    before a third of the polls, never the first (a local midnight: a gateway keeps no history,
    so a lost midnight reading could only be interpolated)."""
    writer = EnvoyRawWriter(world.warehouse.path)
    tokens = EnvoyTokenProvider(
        world.home / "envoy" / "envoy_token.json", configured=world.envoy_token
    )
    client = EnvoyClient(
        world.gateway.base_url,
        world.home / "envoy",
        tokens,
        writer.add,
        clock=world.clock,
        # A hung gateway costs a second, not 45; retries as shipped, without the waits.
        timeout=(2.0, 1.0),
        backoff=0.01,
    )
    for t in times:
        world.clock.now = t
        day = solar_model.local_date(SYSTEM, t).isoformat()
        if rng is not None and t != times[0] and rng.random() < 1 / 3:
            log.append((day, _arm_gateway(world.gateway, rng)))
        try:
            poll_once(client)
        except EnvoyError as exc:
            # What raw.envoy_responses does: this run fails, saying why; the next tick polls.
            log.append((day, f"gateway poll failed its run: {exc}"))
        finally:
            info = client.info
            writer.end_poll(info.serial if info else "unknown", info.firmware if info else None)
            writer.flush()
        world.gateway.clear_faults()  # what this poll did not meet is not the next one's
    with world.warehouse.connect() as conn:
        ingest(conn)


def _gateway_day(day: date) -> range:
    """Every hour of the local `day` from its midnight; the next midnight is the next day's."""
    start, end = solar_model.local_day_bounds(SYSTEM, day)
    return range(start, end, 3600)


def _week_end() -> range:
    """The midnight that closes the week."""
    end = solar_model.local_day_bounds(SYSTEM, DAYS[-1])[1]
    return range(end, end + 1)


def _partition_tags(first: date, last: date) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def _run_fleet(world: World, first: date, last: date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        FLEET_ASSETS,
        resources={"warehouse": world.warehouse},
        tags=_partition_tags(first, last),
        instance=world.instance,
        raise_on_error=False,
    )


def _run_energy(world: World, first: date, last: date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*energy.assets],
        resources={"warehouse": world.warehouse},
        tags=_partition_tags(first, last),
        instance=world.instance,
        raise_on_error=False,
    )


def _tables(warehouse: DuckDBWarehouse) -> dict[str, list[tuple]]:
    return {
        "daily": query(
            warehouse,
            "SELECT site_id, day, produced_wh, consumed_wh, imported_wh, exported_wh, status "
            "FROM energy.daily_energy ORDER BY site_id, day",
        ),
        # Which source gave a day may differ (a gateway hour lost to a fault is filled from the
        # cloud's meter, which agrees with it): the figures above may not.
        "sources": query(
            warehouse,
            "SELECT DISTINCT site_id, produced_source FROM energy.daily_energy ORDER BY ALL",
        ),
        "cloud daily": query(
            warehouse, "SELECT day, produced_wh FROM enphase.daily_energy ORDER BY day"
        ),
        "cloud intervals": query(
            warehouse,
            "SELECT source, epoch(end_at)::BIGINT, wh FROM enphase.production_intervals "
            "ORDER BY source, end_at",
        ),
    }


# ---- the killed run ----------------------------------------------------------------------


def _dagster_home(world: World) -> dict[str, str]:
    home = world.home / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    config["run_monitoring"].update(WAITS)
    config["run_launcher"]["config"]["heartbeat_timeout_seconds"] = MIN_HEARTBEAT_TIMEOUT_S
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    (home / "workspace.yaml").write_text((ROOT / "workspace.yaml").read_text())
    return {"DAGSTER_HOME": str(home)}


def _cli_settings(world: World) -> dict[str, str]:
    """What the user's .env would hold for this world (the code location reads it)."""
    return {
        **world.env,
        "SOLAR_TIMEZONE": TZ,
        "SOLAR_DUCKDB_PATH": world.warehouse.path,
        "ENPHASE_API_URL": world.cloud.base_url,
        "ENPHASE_API_KEY": world.cloud.api_key,
        "ENPHASE_CLIENT_ID": world.cloud.client_id,
        "ENPHASE_CLIENT_SECRET": world.cloud.client_secret,
        "ENPHASE_SYSTEM_ID": str(SYSTEM.system_id),
        "ENPHASE_PLAN": PLAN,
        "ENPHASE_TOKEN_STORE": world.enphase.token_store,
    }


def _holders(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
    return {slot.run_id for slot in info.claimed_slots}


def _kill_a_cloud_run_in_flight(world: World, day: date, env: dict[str, str]) -> str:
    """`dagster asset materialize` of the day's cloud answers, SIGKILLed while it holds the
    duckdb slot; returns what happened, for the log."""
    assert world.instance is not None
    before = {r.run_id for r in world.instance.get_runs()}
    asked = sum(world.cloud.stats.data_requests.values())
    world.cloud.slow_next(1.5, 1000)  # slow answers: the run is surely mid-fetch when killed
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "-m",
            "solar_pipeline.definitions",
            "--select",
            "raw/enphase_responses",
            "--partition",
            day.isoformat(),
        ],
        cwd=world.home,
        env=env,
        stdout=open(world.home / "killed_run.log", "ab"),  # noqa: SIM115 (closed with the process)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    instance = world.instance
    try:

        def holding() -> str | None:
            assert proc.poll() is None, (world.home / "killed_run.log").read_text()[-3000:]
            new = _holders(instance) - before
            return next(iter(new), None)

        run_id = wait_for(holding, 180, "the run to hold the duckdb slot", 0.2)
        wait_for(
            lambda: sum(world.cloud.stats.data_requests.values()) > asked,
            60,
            "a request in flight",
            0.2,
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        world.cloud.clear_slow()
    return run_id


# ---- the week ----------------------------------------------------------------------------


def test_a_week_of_random_faults_on_every_path_ends_as_the_clean_week(tmp_path, monkeypatch):
    seed = int(os.environ.get("SOLAR_SOAK_SEED") or random.randrange(2**32))
    print(f"SOLAR_SOAK_SEED={seed}")
    rng = random.Random(seed)
    with contextlib.ExitStack() as stack:
        clean = _world("clean", tmp_path, stack)
        faulty = _world("faulty", tmp_path, stack)
        home = _dagster_home(faulty)
        env = cli_env(**_cli_settings(faulty), **home)
        # The daemon of a deployment: run monitoring is what frees a killed run's slot.
        daemon = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-daemon"),
                "run",
                "-w",
                str(Path(home["DAGSTER_HOME"]) / "workspace.yaml"),
            ],
            cwd=faulty.home,
            env=env,
            stdout=open(faulty.home / "daemon.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stack.callback(_stop, daemon)
        faulty.instance = stack.enter_context(
            dg.DagsterInstance.from_ref(InstanceRef.from_dir(home["DAGSTER_HOME"]))
        )

        def use(world: World) -> None:
            for key, value in world.env.items():
                monkeypatch.setenv(key, value)
            # Read only while the store is empty (the first run), as a new user seeds it.
            monkeypatch.setenv("ENPHASE_REFRESH_TOKEN", world.refresh_token)

        frozen_day, killed_day = rng.sample(DAYS[1:], 2)
        log: list[tuple] = []
        for day in DAYS:
            use(clean)
            _poll_gateway(clean, _gateway_day(day), None, log)
            assert run_range(clean.enphase, clean.warehouse, str(day), str(day)).success
            assert _run_fleet(clean, day, day).success
            assert _run_energy(clean, day, day).success

            use(faulty)
            _poll_gateway(faulty, _gateway_day(day), rng, log)
            if day == killed_day:
                run_id = _kill_a_cloud_run_in_flight(faulty, day, env)
                log.append((str(day), f"SIGKILL of run {run_id[:8]} holding the duckdb slot"))
                # No stuck slot: run monitoring fails the run and frees its slot in bounded time.
                try:
                    wait_for(
                        lambda: not _holders(faulty.instance), SLOT_BOUND_S, "a free slot", 1.0
                    )
                except AssertionError as exc:
                    run = faulty.instance.get_run_by_id(run_id)
                    raise AssertionError(
                        f"{exc}: the killed run is {run.status.value if run else None}; "
                        f"daemon log: {(faulty.home / 'daemon.log').read_text()[-2000:]}"
                    ) from None
                assert faulty.instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
            armed = _arm_cloud(faulty.cloud, rng)
            token_dir = faulty.home / "tokens"
            froze = day == frozen_day and _immutable(token_dir, True)
            try:
                cloud = run_range(
                    faulty.enphase,
                    faulty.warehouse,
                    str(day),
                    str(day),
                    selection=TELEMETRY,
                    instance=faulty.instance,
                    raise_on_error=False,
                )
            finally:
                if froze:
                    _immutable(token_dir, False)
            armed += _arm_fleet(faulty, rng)
            fleet = _run_fleet(faulty, day, day)
            energy_run = _run_energy(faulty, day, day)
            log.append(
                (
                    str(day),
                    armed,
                    f"froze={froze}",
                    cloud.success,
                    fleet.success,
                    energy_run.success,
                )
            )
            _clear_faults(faulty)  # a run that stopped early leaves some armed

        for world in (clean, faulty):
            use(world)
            _poll_gateway(world, _week_end(), None, log)
        print("\n".join(map(str, log)))

        # What the nightly completion and the gap-fill sensor do for days a fault spoiled.
        use(faulty)
        first, last = DAYS[0], DAYS[-1]
        catch_up = run_range(
            faulty.enphase,
            faulty.warehouse,
            str(first),
            str(last),
            instance=faulty.instance,
            raise_on_error=False,
        )
        assert catch_up.success, (failure_message(catch_up), log)
        assert _run_fleet(faulty, first, last).success, log
        assert _run_energy(faulty, first, last).success, log
        use(clean)
        assert _run_energy(clean, first, last).success

        expected = _tables(clean.warehouse)
        assert {site for site, *_ in expected["daily"]} == {"home", "cottage", "workshop"}
        assert len(expected["daily"]) == 3 * len(DAYS)
        got = _tables(faulty.warehouse)
        assert set(got.pop("sources")) <= {
            *expected.pop("sources"),
            ("home", "enphase_meter"),
        }, log
        for name, rows in expected.items():
            assert got[name] == rows, (name, seed, log)

        # No lost refresh token: the store still refreshes (a spent one is refused).
        use(faulty)
        monkeypatch.delenv("ENPHASE_REFRESH_TOKEN")
        faulty.cloud.expire_access_tokens()
        assert run_range(faulty.enphase, faulty.warehouse, str(last), str(last)).success
        # No stuck pool slot.
        assert not _holders(faulty.instance)

        # No secret in any file the faulty world wrote: DuckDB, tokens aside, the Dagster
        # instance's runs and event logs, the killed run's and the daemon's output.
        token_files = {p.resolve() for p in (faulty.home / "tokens").rglob("*")}
        for path in faulty.home.rglob("*"):
            if path.is_file() and path.resolve() not in token_files:
                data = path.read_bytes()
                for secret in faulty.secrets:
                    assert secret.encode() not in data, f"a secret is in {path}"

        # Within the plans: the week's requests, faults, retries, the killed run and the
        # catch-up included, fit a week's share of the smallest Enphase plan's month (Watt,
        # 1,000) and of SolarEdge's daily quota.
        used = sum(faulty.cloud.stats.data_requests.values())
        week_of_watt = plan_named("watt").per_month * len(DAYS) / 30
        assert used <= week_of_watt, (used, week_of_watt, log)
        se_used = sum(faulty.solaredge.stats.requests.values())
        assert se_used <= PER_DAY * len(DAYS), (se_used, log)


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
