"""The deployment files agree with each other, with the code and with Dagster's instance schema.

Docker Compose, the Helm values, the Kubernetes manifests, the Dockerfile and .dockerignore are
read as data (PyYAML and a small Dockerfile reader); nothing is built or started here.
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from solar_pipeline_tests.deploy.dockerfile import parse, stage_args, uv_sync_commands
from solar_pipeline_tests.helpers import ROOT

DEPLOY = ROOT / "deploy"
PG_VARS = {"DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD"} | {
    "DAGSTER_PG_DB"
}
SECRET_PREFIXES = ("ENPHASE_", "ENVOY_", "ENLIGHTEN_")
NAMESPACE = "solar"
TOKEN_SECRET = "enphase-tokens"

# Variables the code reads that deploy/.env.example deliberately leaves out:
# DAGSTER_HOME is fixed by the image (it holds the instance file), not a user setting.
NOT_IN_ENV_EXAMPLE = {"DAGSTER_HOME"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(DEPLOY / "docker-compose.yml")


@pytest.fixture(scope="module")
def helm() -> dict[str, Any]:
    return load(DEPLOY / "helm-values.yaml")


@pytest.fixture(scope="module")
def user_deployment(helm: dict[str, Any]) -> dict[str, Any]:
    deployments = helm["dagster-user-deployments"]["deployments"]
    assert len(deployments) == 1
    return deployments[0]


@pytest.fixture(scope="module")
def rbac() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in load_all(DEPLOY / "k8s" / "rbac.yaml")}


def env_example_names() -> set[str]:
    """Names in deploy/.env.example, set (NAME=) or documented as commented out (# NAME=)."""
    names = set()
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def env_example_values() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def variables_read_by_code() -> set[str]:
    """Every environment variable name solar_pipeline/ reads, found in the source."""
    pattern = re.compile(
        r"""(?:\benv|\brequire|\bEnvVar|os\.environ\.get|os\.getenv|os\.environ\[)\(?\s*"""
        r"""["']([A-Z][A-Z0-9_]+)["']"""
    )
    constant = re.compile(r"""^\w*_VARIABLE\s*=\s*["']([A-Z][A-Z0-9_]+)["']""", re.MULTILINE)
    names: set[str] = set()
    for path in (ROOT / "solar_pipeline").rglob("*.py"):
        text = path.read_text()
        names.update(pattern.findall(text))
        names.update(constant.findall(text))
    return names


def postgres_instance_env_names() -> set[str]:
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if set(node) == {"env"}:
                names.add(node["env"])
            for value in node.values():
                walk(value)

    walk(load(DEPLOY / "dagster.postgres.yaml"))
    return names


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, mode) of the service's short-syntax volumes."""
    mounts = []
    for entry in service.get("volumes", []):
        parts = entry.split(":")
        mounts.append((parts[0], parts[1], parts[2] if len(parts) > 2 else "rw"))
    return mounts


# --- Docker Compose ---------------------------------------------------------------------------


def test_compose_services_and_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "code", "webserver", "daemon"}
    dockerfile = parse()
    image_workspace = "/app/workspace.yaml"
    assert any(
        c.value.split() == ["deploy/workspace.yaml", image_workspace]
        for c in dockerfile.final.all("COPY")
    )
    # The code server runs the image's default command (CMD); the others override it.
    assert "command" not in services["code"]
    assert "entrypoint" not in services["code"]
    assert services["webserver"]["command"] == [
        "dagster-webserver",
        *("-h", "0.0.0.0", "-p", "3000", "-w", image_workspace),
    ]
    assert services["daemon"]["command"] == ["dagster-daemon", "run", "-w", image_workspace]
    # One image for the three Dagster services, built from the repository's Dockerfile.
    images = {services[name]["image"] for name in ("code", "webserver", "daemon")}
    assert len(images) == 1
    assert services["code"]["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    assert re.fullmatch(r"postgres:\d+", services["postgres"]["image"]), "pin the major version"
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name


def test_compose_workspace_points_at_the_code_service(compose: dict[str, Any]) -> None:
    workspace = load(DEPLOY / "workspace.yaml")
    [entry] = workspace["load_from"]
    grpc = entry["grpc_server"]
    assert grpc == {"host": "code", "port": 4000, "location_name": "solar_pipeline"}
    assert grpc["host"] in compose["services"]
    cmd = parse().final.all("CMD")[-1].exec_form()
    assert cmd is not None
    assert cmd[cmd.index("-p") + 1] == str(grpc["port"])
    assert cmd[cmd.index("--location-name") + 1] == grpc["location_name"]


def test_compose_webserver_is_bound_to_loopback_only(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["webserver"]["ports"] == ["127.0.0.1:3000:3000"]
    for name in ("postgres", "code", "daemon"):
        assert "ports" not in services[name], f"{name} must not publish a port"


def test_compose_healthchecks_and_startup_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    # The code service's check is the image's HEALTHCHECK command.
    healthcheck = parse().final.all("HEALTHCHECK")[-1].value
    image_check = healthcheck_command(healthcheck)
    assert services["code"]["healthcheck"]["test"] == ["CMD", *image_check]
    assert services["daemon"]["healthcheck"]["test"] == ["CMD", "dagster-daemon", "liveness-check"]
    assert "/server_info" in " ".join(services["webserver"]["healthcheck"]["test"])
    expected = {
        "code": {"postgres"},
        "webserver": {"postgres", "code"},
        "daemon": {"postgres", "code"},
    }
    for name, needs in expected.items():
        depends_on = services[name]["depends_on"]
        assert set(depends_on) == needs, name
        for dependency in depends_on.values():
            assert dependency == {"condition": "service_healthy"}


def healthcheck_command(healthcheck: str) -> list[str]:
    """The exec-form command of a HEALTHCHECK instruction's CMD part."""
    _, _, command = healthcheck.partition("CMD")
    return yaml.safe_load(command.strip())


def test_compose_secrets_only_reach_the_code_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["code"]["env_file"] == [".env"]
    assert set(services["code"]["environment"]) == PG_VARS
    for name in ("postgres", "webserver", "daemon"):
        assert "env_file" not in services[name], f"{name} must not read the whole .env"
    for name in ("webserver", "daemon"):
        environment = services[name]["environment"]
        assert set(environment) == PG_VARS, name
        assert not [k for k in environment if k.startswith(SECRET_PREFIXES)]
    # Postgres is initialised from the same variables.
    postgres_env = services["postgres"]["environment"]
    assert set(postgres_env) == {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
    assert "DAGSTER_PG_PASSWORD" in postgres_env["POSTGRES_PASSWORD"]
    # Nothing secret written into the compose file itself.
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${"), f"{name}: {key} must come from deploy/.env"


def test_deploy_env_file_is_git_ignored() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/.env"], cwd=ROOT, check=False
    ).returncode
    assert ignored == 0, "deploy/.env must be git-ignored"
    example = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/.env.example"], cwd=ROOT, check=False
    ).returncode
    assert example == 1, "deploy/.env.example must not be ignored"


def test_env_example_lists_every_variable_the_code_reads() -> None:
    read = variables_read_by_code()
    # The scan must see the variables we know are there.
    assert {"ENPHASE_API_KEY", "ENVOY_TOKEN", "ENPHASE_REFRESH_TOKEN", "SOLAR_TIMEZONE"} <= read
    missing = read - NOT_IN_ENV_EXAMPLE - env_example_names()
    assert not missing, f"add to deploy/.env.example: {sorted(missing)}"
    values = env_example_values()
    assert set(values) >= PG_VARS
    assert values["SOLAR_SCHEDULES"] == "running"
    # The image sets these to the volume: an (empty) assignment would override that.
    assert "SOLAR_DATA_DIR" not in values
    assert "SOLAR_DUCKDB_PATH" not in values


def test_postgres_variable_names_match_the_instance_file(compose: dict[str, Any]) -> None:
    instance_names = postgres_instance_env_names()
    assert instance_names == PG_VARS
    assert set(compose["x-dagster-pg-env"]) == instance_names
    assert instance_names <= set(env_example_values())


def test_data_volume_is_mounted_only_in_the_code_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    data_dir = parse().final.env()["SOLAR_DATA_DIR"]
    mounts = {name: volume_mounts(service) for name, service in services.items()}
    assert ("solar-data", data_dir, "rw") in mounts["code"]
    for name, service_mounts in mounts.items():
        if name != "code":
            assert all(source != "solar-data" for source, _, _ in service_mounts), name
            assert all(target != data_dir for _, target, _ in service_mounts), name
    assert set(compose["volumes"]) >= {"solar-data", "postgres-data"}


def test_compute_logs_are_shared_read_only_with_the_webserver(compose: dict[str, Any]) -> None:
    services = compose["services"]
    storage = str(PurePosixPath(parse().final.env()["DAGSTER_HOME"]) / "storage")
    [code_logs] = [m for m in volume_mounts(services["code"]) if m[1] == storage]
    [web_logs] = [m for m in volume_mounts(services["webserver"]) if m[1] == storage]
    assert code_logs[2] == "rw"
    assert web_logs == (code_logs[0], storage, "ro")
    assert code_logs[0] in compose["volumes"]


# --- Dagster instance -------------------------------------------------------------------------


def _validate_instance(tmp_path: Path, config: dict[str, Any]) -> dict[str, Any]:
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef

    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    validated, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    # Builds the reference runs receive (no connection is made).
    InstanceRef.from_dir(str(tmp_path))
    return dict(validated)


def test_postgres_instance_file_is_valid(tmp_path: Path) -> None:
    config = load(DEPLOY / "dagster.postgres.yaml")
    validated = _validate_instance(tmp_path, config)
    postgres_db = validated["storage"]["postgres"]["postgres_db"]
    assert postgres_db["scheme"] == "postgresql+psycopg2"
    assert validated["concurrency"]["pools"]["default_limit"] == 1
    # Runs stay in the code server's container, and run monitoring can see them die.
    assert validated["run_launcher"]["class"] == "SupervisedRunLauncher"
    # Same policy as the local instance, apart from storage and retries.
    local = load(ROOT / "dagster.yaml")
    for key in ("concurrency", "run_launcher", "run_monitoring", "retention", "telemetry"):
        assert config[key] == local[key], key


def test_image_ships_the_postgres_instance_file() -> None:
    final = parse().final
    dagster_home = final.env()["DAGSTER_HOME"]
    copies = [c.value.split() for c in final.all("COPY")]
    assert ["deploy/dagster.postgres.yaml", f"{dagster_home}/dagster.yaml"] in copies


# --- Dockerfile and .dockerignore -------------------------------------------------------------


def test_dockerfile_facts() -> None:
    dockerfile = parse()
    assert len(dockerfile.stages) >= 2, "multi-stage build"
    build, final = dockerfile.stage("build"), dockerfile.final
    # Same base in both stages: the virtualenv's interpreter path must exist in the final one.
    assert build.base == final.base
    assert re.search(r"-slim", final.base)
    # Non-root, numeric (Kubernetes' runAsNonRoot can only verify a numeric uid).
    user = final.all("USER")[-1].value
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, user
    assert final.all("HEALTHCHECK"), "HEALTHCHECK in the final stage"
    # Pinned dependencies, no dev group, the k8s extra for the token store.
    syncs = uv_sync_commands(build)
    assert len(syncs) == 2
    for command in syncs:
        assert "--frozen" in command and "--no-dev" in command
        assert command[command.index("--extra") + 1] == "k8s"
    assert "--no-editable" in syncs[-1]
    # No build tools in the final stage: it only copies the virtualenv.
    for run in final.all("RUN"):
        assert not re.search(r"\b(pip|uv|apt-get|gcc)\b", run.value), run.value
    assert any(c.value.startswith("--from=build /app/.venv") for c in final.all("COPY"))
    # Default command: the code server of solar_pipeline.definitions.
    cmd = final.all("CMD")[-1].exec_form()
    assert cmd is not None
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert cmd[cmd.index("-m") + 1] == "solar_pipeline.definitions"
    assert cmd[cmd.index("-h") + 1] == "0.0.0.0"
    assert final.env()["SOLAR_DATA_DIR"] == "/data"


def test_dockerfile_copies_no_secrets() -> None:
    for stage in parse().stages:
        for copy in stage.all("COPY") + stage.all("ADD"):
            sources = [w for w in shlex.split(copy.value) if not w.startswith("--")][:-1]
            for source in sources:
                assert ".env" not in source, copy.value
                assert source not in {".", "./", "*"}, f"copies the whole context: {copy.value}"


def test_uv_pin_matches_the_makefile_and_the_lock() -> None:
    pinned = stage_args(parse().stage("build"))["UV_VERSION"]
    makefile = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert makefile and makefile.group(1) == pinned
    assert f'"uv=={pinned}"' in (ROOT / "pyproject.toml").read_text()


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"**/.env", "**/.env.*", ".venv", ".git", "solar_pipeline_tests"} <= patterns
    assert "data" in patterns or "/data" in patterns
    assert {"**/__pycache__", ".pytest_cache", ".ruff_cache"} <= patterns
    assert not [p for p in patterns if p.startswith("!") and ".env" in p]
    # Everything the Dockerfile copies is still in the context.
    for stage in parse().stages:
        for copy in stage.all("COPY"):
            words = [w for w in shlex.split(copy.value) if not w.startswith("--")]
            if copy.value.startswith("--from="):
                continue
            for source in words[:-1]:
                assert source not in patterns, f"{source} is docker-ignored but copied"
                assert (ROOT / source).exists(), source


# --- Kubernetes -------------------------------------------------------------------------------


def test_rbac_grants_get_and_patch_on_the_token_secret_only(
    rbac: dict[str, dict[str, Any]],
) -> None:
    assert set(rbac) == {"ServiceAccount", "Role", "RoleBinding"}
    for doc in rbac.values():
        assert doc["metadata"]["namespace"] == NAMESPACE
    [rule] = rbac["Role"]["rules"]
    assert rule["apiGroups"] == [""]
    assert rule["resources"] == ["secrets"]
    assert rule["resourceNames"] == [TOKEN_SECRET]
    assert sorted(rule["verbs"]) == ["get", "patch"]
    binding = rbac["RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": rbac["Role"]["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": rbac["ServiceAccount"]["metadata"]["name"],
            "namespace": NAMESPACE,
        }
    ]


def test_token_store_uses_only_the_calls_the_role_allows() -> None:
    source = (ROOT / "solar_pipeline/sources/enphase/tokens_k8s.py").read_text()
    calls = set(re.findall(r"self\.api\.(\w+)\(", source))
    # read -> get, patch -> patch: nothing else is granted.
    assert calls == {"read_namespaced_secret", "patch_namespaced_secret"}


def test_pvc_is_read_write_once() -> None:
    [pvc] = load_all(DEPLOY / "k8s" / "pvc.yaml")
    assert pvc["kind"] == "PersistentVolumeClaim"
    assert pvc["metadata"]["namespace"] == NAMESPACE
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"]


# --- Helm values ------------------------------------------------------------------------------


def test_helm_user_deployment_runs_our_code_server(
    helm: dict[str, Any], user_deployment: dict[str, Any]
) -> None:
    subchart = helm["dagster-user-deployments"]
    assert subchart["enabled"] is True and subchart["enableSubchart"] is True
    assert user_deployment["image"]["repository"].endswith("/solar-pipeline")
    assert user_deployment["image"]["tag"] not in (None, "", "latest")
    args = user_deployment["codeServerArgs"]
    assert args[args.index("-m") + 1] == "solar_pipeline.definitions"
    assert "dagsterApiGrpcArgs" not in user_deployment
    assert user_deployment["port"] == 4000


def test_helm_user_deployment_wiring(
    helm: dict[str, Any], user_deployment: dict[str, Any], rbac: dict[str, dict[str, Any]]
) -> None:
    env = {item["name"]: item["value"] for item in user_deployment["env"]}
    assert env["ENPHASE_TOKEN_STORE"] == f"k8s:{NAMESPACE}/{TOKEN_SECRET}"
    assert env["SOLAR_DATA_DIR"] == "/data"
    source_settings = {k for k in env if k.startswith(SECRET_PREFIXES)}
    assert source_settings <= {"ENPHASE_TOKEN_STORE", "ENPHASE_PLAN"}
    # Secrets come from a Kubernetes Secret, never from the values file.
    assert user_deployment["envSecrets"] and all("name" in s for s in user_deployment["envSecrets"])
    for name in env:
        assert not re.search(r"KEY|SECRET$|PASSWORD|TOKEN$", name), name
    # The PVC from deploy/k8s/pvc.yaml, mounted at /data.
    [pvc] = load_all(DEPLOY / "k8s" / "pvc.yaml")
    [volume] = user_deployment["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    [mount] = user_deployment["volumeMounts"]
    assert mount == {"name": volume["name"], "mountPath": "/data"}
    # The ServiceAccount from deploy/k8s/rbac.yaml, and no Job-creating Role from the chart.
    subchart = helm["dagster-user-deployments"]
    assert subchart["serviceAccount"] == {
        "create": False,
        "name": rbac["ServiceAccount"]["metadata"]["name"],
    }
    assert subchart["rbacEnabled"] is False
    # The pod runs as the image's user; fsGroup makes the volume writable for it.
    uid = parse().final.all("USER")[-1].value.split(":")[0]
    security = user_deployment["podSecurityContext"]
    assert security["runAsUser"] == int(uid) and security["fsGroup"] == int(uid)
    assert security["runAsNonRoot"] is True


def test_helm_runs_execute_in_the_user_code_pod(
    helm: dict[str, Any], user_deployment: dict[str, Any]
) -> None:
    from dagster._core.launcher import DefaultRunLauncher
    from dagster._serdes.config_class import ConfigurableClassData

    from solar_pipeline.run_launcher import SupervisedRunLauncher

    launcher = helm["runLauncher"]
    assert launcher["type"] == "CustomRunLauncher"
    custom = launcher["config"]["customRunLauncher"]
    data = ConfigurableClassData(
        custom["module"], custom["class"], yaml.safe_dump(custom["config"])
    )
    rehydrated = data.rehydrate()
    # Runs stay subprocesses of the user-code pod, and run monitoring can see them die.
    assert isinstance(rehydrated, DefaultRunLauncher)
    assert isinstance(rehydrated, SupervisedRunLauncher)
    assert rehydrated.supports_check_run_worker_health
    daemon = helm["dagsterDaemon"]
    # DefaultRunLauncher cannot resume runs; a positive value fails at startup.
    assert daemon["runMonitoring"]["maxResumeRunAttempts"] == 0
    # The daemon and the webserver import the launcher: they run our image, not the chart's.
    for service in (daemon, helm["dagsterWebserver"]):
        assert service["image"]["repository"] == user_deployment["image"]["repository"]
        assert service["image"]["tag"] == user_deployment["image"]["tag"]


def chart_instance(helm: dict[str, Any]) -> dict[str, Any]:
    """The dagster.yaml the chart's configmap-instance.yaml template renders from these values
    (storage, launcher, monitoring, retries, retention, telemetry, additionalInstanceConfig)."""
    pg = helm["postgresql"]
    postgres_db = {
        "username": pg["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": "dagster-postgresql",
        "db_name": pg["postgresqlDatabase"],
        "port": pg["service"]["port"],
        "params": {},
        "scheme": pg["postgresqlScheme"],
    }
    storage = {"postgres_db": postgres_db}
    custom = helm["runLauncher"]["config"]["customRunLauncher"]
    monitoring = helm["dagsterDaemon"]["runMonitoring"]
    retries = helm["dagsterDaemon"]["runRetries"]
    retention = helm["retention"]
    config: dict[str, Any] = {
        "scheduler": {"module": "dagster.core.scheduler", "class": "DagsterDaemonScheduler"},
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": storage,
        },
        "run_launcher": {
            "module": custom["module"],
            "class": custom["class"],
            "config": custom["config"],
        },
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": storage,
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": storage,
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
        },
        "run_retries": {
            "enabled": retries["enabled"],
            "max_retries": retries["maxRetries"],
            "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"],
        },
        "telemetry": {"enabled": helm["telemetry"]["enabled"]},
        "retention": {
            "sensor": {"purge_after_days": retention["sensor"]["purgeAfterDays"]},
            "schedule": {"purge_after_days": retention["schedule"]["purgeAfterDays"]},
        },
    }
    assert not helm["dagsterDaemon"]["runCoordinator"]["enabled"]  # no run_coordinator block
    extra = helm["additionalInstanceConfig"]
    assert not set(extra) & set(config), "additionalInstanceConfig would duplicate a key"
    return {**config, **extra}


def test_helm_rendered_instance_is_valid(helm: dict[str, Any], tmp_path: Path) -> None:
    validated = _validate_instance(tmp_path, chart_instance(helm))
    local = load(ROOT / "dagster.yaml")
    # The pool and run limits of the local and Compose instances.
    assert validated["concurrency"] == local["concurrency"]
    for key in ("free_slots_after_run_end_seconds", "poll_interval_seconds"):
        assert validated["run_monitoring"][key] == local["run_monitoring"][key], key
    assert validated["run_launcher"] == local["run_launcher"]
    assert validated["telemetry"] == {"enabled": False}


def test_helm_postgres_password_is_not_in_the_file(helm: dict[str, Any]) -> None:
    assert helm["postgresql"]["postgresqlPassword"] == ""
    assert helm["generatePostgresqlPasswordSecret"] is True


def test_systemd_units_run_the_venv_binaries_on_loopback() -> None:
    units = {}
    for path in sorted((ROOT / "deploy" / "systemd").glob("*.service")):
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # case-sensitive keys
        parser.read(path)
        units[path.stem] = parser["Service"]
    assert set(units) == {"solar-pipeline-webserver", "solar-pipeline-daemon"}
    venv_bin = Path(sys.executable).parent
    for name, service in units.items():
        command = shlex.split(service["ExecStart"])
        # The unit's binaries are the ones `make install` puts in the checkout's .venv.
        assert command[0].startswith("/opt/solar_pipeline/.venv/bin/"), name
        assert (venv_bin / Path(command[0]).name).exists(), name
        assert command[-2:] == ["-w", "workspace.yaml"], name
        assert service["UMask"] == "0077", name  # new state files private, like the data dir
    webserver = shlex.split(units["solar-pipeline-webserver"]["ExecStart"])
    assert webserver[webserver.index("-h") + 1] == "127.0.0.1"
