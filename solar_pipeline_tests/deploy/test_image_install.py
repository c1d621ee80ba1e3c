"""The image's install, run without Docker: the Dockerfile's build steps in a fresh directory,
then its commands from a directory holding only what the final stage copies.

The build stage's COPY and `uv sync` instructions are read from the Dockerfile and replayed with
this project's uv (the version the Dockerfile pins) and `--offline`, so the packages come from
uv's local cache (filled by `make install`). Then the code server (the image's CMD), its
HEALTHCHECK, the webserver and the daemon start from that virtualenv, and the code location must
load without errors. uv.lock is also checked for wheels on both architectures the image targets.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from solar_pipeline_tests.deploy.dockerfile import (
    ROOT,
    Stage,
    parse,
    stage_args,
    uv_sync_commands,
)
from solar_pipeline_tests.helpers import free_port

pytestmark = pytest.mark.slow

PROJECT_UV = ROOT / ".venv" / "bin" / "uv"
START_TIMEOUT_S = 90.0


def uv_version() -> str:
    out = subprocess.run([str(PROJECT_UV), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


def replay_build_stage(stage: Stage, app: Path) -> None:
    """COPY from the context and `uv sync` as the build stage does, with WORKDIR /app -> app."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    env.update({k: v for k, v in stage.env().items() if k.startswith("UV_")})
    env["UV_PROJECT_ENVIRONMENT"] = str(app / ".venv")
    python = getattr(sys, "_base_executable", sys.executable)
    for instruction in stage.instructions:
        if instruction.keyword == "COPY":
            *sources, dest = instruction.value.split()
            assert not any(s.startswith("--") for s in sources), instruction.value
            target = app / dest.removeprefix("./")
            for source in sources:
                path = ROOT / source
                if path.is_dir():
                    shutil.copytree(
                        path,
                        target if len(sources) == 1 else target / path.name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                        dirs_exist_ok=True,
                    )
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target / path.name)
        elif instruction.keyword == "RUN":
            for command in uv_sync_commands(Stage(stage.base, None, [instruction])):
                argv = [str(PROJECT_UV), *command[1:], "--offline", "--python", python]
                result = subprocess.run(
                    argv, cwd=app, env=env, capture_output=True, text=True, check=False
                )
                if result.returncode != 0:
                    pytest.fail(
                        f"`{' '.join(command)} --offline` failed (exit {result.returncode}). "
                        "If uv reports a package missing from the cache, warm it with "
                        f"`make install` (uv sync) and run again.\n{result.stderr[-3000:]}"
                    )


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dockerfile = parse()
    build = dockerfile.stage("build")
    pinned = stage_args(build)["UV_VERSION"]
    assert uv_version() == pinned, f"project uv {uv_version()} != Dockerfile's {pinned}"
    app = tmp_path_factory.mktemp("image") / "app"
    app.mkdir()
    replay_build_stage(build, app)
    venv = app / ".venv"
    # The final stage copies only the virtualenv: drop the sources so nothing can import them.
    for entry in app.iterdir():
        if entry != venv:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return venv


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A working directory and DAGSTER_HOME like the image's, with the local SQLite instance
    (the image's Postgres instance needs a server) and a data directory."""
    base = tmp_path_factory.mktemp("runtime")
    home = base / "dagster_home"
    (home / "storage").mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    workdir = base / "workdir"
    workdir.mkdir()
    data = base / "data"
    data.mkdir()
    return {"home": home, "workdir": workdir, "data": data}


def run_env(venv: Path, runtime: dict[str, Path]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENPHASE_", "ENVOY_", "ENLIGHTEN_", "SOLAR_", "DAGSTER_", "PYTHON"))
        and k not in {"VIRTUAL_ENV", "PYTEST_CURRENT_TEST"}
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        DAGSTER_HOME=str(runtime["home"]),
        SOLAR_DATA_DIR=str(runtime["data"]),
        SOLAR_TIMEZONE="Europe/Amsterdam",
        DAGSTER_DISABLE_TELEMETRY="1",
        PYTHONUNBUFFERED="1",
    )
    return env


class Processes:
    """Started in their own process groups; all of them are killed at the end."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
        self.started.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self.logdir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop_all(self) -> None:
        for _, proc in reversed(self.started):
            if proc.poll() is None:
                with _suppress():
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, proc in reversed(self.started):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with _suppress():
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        # Children the group leaders left behind (gRPC servers spawned by the code server).
        for _, proc in self.started:
            with _suppress():
                os.killpg(proc.pid, signal.SIGKILL)


def _suppress() -> contextlib.suppress:
    return contextlib.suppress(ProcessLookupError, PermissionError)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


def wait_until(check, what: str, procs: Processes, names: list[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        for name, proc in procs.started:
            if name in names and proc.poll() is not None:
                pytest.fail(f"{name} exited ({proc.returncode}) before {what}:\n{procs.log(name)}")
        time.sleep(0.5)
    logs = "\n".join(f"--- {n}\n{procs.log(n)}" for n in names)
    pytest.fail(f"timed out waiting for {what}\n{logs}")


def replace_option(argv: list[str], option: str, value: str) -> list[str]:
    argv = list(argv)
    argv[argv.index(option) + 1] = value
    return argv


def healthcheck_argv() -> list[str]:
    value = parse().final.all("HEALTHCHECK")[-1].value
    return yaml.safe_load(value.partition("CMD")[2].strip())


# --- tests ------------------------------------------------------------------------------------


def test_image_venv_has_no_dev_tools_and_a_non_editable_package(image_venv: Path) -> None:
    python = image_venv / "bin" / "python"
    for tool in ("pytest", "ruff", "uv"):
        assert not (image_venv / "bin" / tool).exists(), f"{tool} is installed in the image"
    probe = (
        "import importlib.util, json, solar_pipeline, kubernetes, dagster_postgres;"
        "print(json.dumps({m: importlib.util.find_spec(m) is not None"
        " for m in ('pytest', 'ruff', '_pytest')} | {'file': solar_pipeline.__file__}))"
    )
    workdir = image_venv.parent.parent
    out = subprocess.run(
        [str(python), "-c", probe], cwd=workdir, capture_output=True, text=True, check=True
    )
    found = json.loads(out.stdout)
    assert found.pop("file").startswith(str(image_venv / "lib")), "not installed in site-packages"
    assert found == {"pytest": False, "ruff": False, "_pytest": False}
    # Non-editable: no .pth file pointing back at a source tree.
    site = next((image_venv / "lib").glob("python3*/site-packages"))
    for pth in site.glob("*.pth"):
        assert "solar_pipeline" not in pth.read_text(), pth
    # The console script the README's `docker compose exec code solar-pipeline ...` uses.
    assert (image_venv / "bin" / "solar-pipeline").exists()


def test_code_server_webserver_and_daemon_start_from_the_image_venv(
    image_venv: Path, runtime: dict[str, Path], processes: Processes
) -> None:
    env = run_env(image_venv, runtime)
    bin_dir = image_venv / "bin"
    workdir = runtime["workdir"]

    # The image's default command, on loopback and a free port.
    cmd = parse().final.all("CMD")[-1].exec_form()
    assert cmd is not None
    grpc_port = free_port()
    cmd = replace_option(replace_option(cmd, "-h", "127.0.0.1"), "-p", str(grpc_port))
    assert shutil.which(cmd[0], path=str(bin_dir)) == str(bin_dir / cmd[0])
    processes.start("code", [str(bin_dir / cmd[0]), *cmd[1:]], cwd=workdir, env=env)

    health = replace_option(healthcheck_argv(), "-p", str(grpc_port))

    def healthy() -> bool:
        result = subprocess.run(
            [str(bin_dir / health[0]), *health[1:]],
            cwd=workdir,
            env=env,
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    wait_until(healthy, "the code server's HEALTHCHECK", processes, ["code"])

    # The webserver with a workspace like deploy/workspace.yaml, pointed at 127.0.0.1.
    workspace = yaml.safe_load((ROOT / "deploy" / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=grpc_port)
    workspace_file = workdir / "workspace.yaml"
    workspace_file.write_text(yaml.safe_dump(workspace))
    web_port = free_port()
    processes.start(
        "webserver",
        [
            str(bin_dir / "dagster-webserver"),
            *("-h", "127.0.0.1", "-p", str(web_port), "-w", str(workspace_file)),
        ],
        cwd=workdir,
        env=env,
    )
    base = f"http://127.0.0.1:{web_port}"

    def server_info() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/server_info", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_until(server_info, "the webserver's /server_info", processes, ["webserver", "code"])
    with urllib.request.urlopen(f"{base}/server_info", timeout=5) as response:
        info = json.loads(response.read())
    assert info["dagster_version"] == "1.13.27"

    query = """
    { workspaceOrError { __typename ... on Workspace { locationEntries {
        name loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
    } } } }"""
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    workspace_result = body["data"]["workspaceOrError"]
    assert workspace_result["__typename"] == "Workspace", body
    [entry] = workspace_result["locationEntries"]
    assert entry["name"] == "solar_pipeline"
    assert entry["loadStatus"] == "LOADED", entry
    location = entry["locationOrLoadError"]
    assert location["__typename"] != "PythonError", location.get("message")
    assert location["__typename"] == "RepositoryLocation", location

    # The daemon, same instance and workspace, until its liveness check passes.
    processes.start(
        "daemon",
        [str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace_file)],
        cwd=workdir,
        env=env,
    )

    def live() -> bool:
        result = subprocess.run(
            [str(bin_dir / "dagster-daemon"), "liveness-check"],
            cwd=workdir,
            env=env,
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    wait_until(live, "`dagster-daemon liveness-check`", processes, ["daemon"])
    for name, proc in processes.started:
        assert proc.poll() is None, f"{name} stopped:\n{processes.log(name)}"


# --- multi-arch wheels in uv.lock -------------------------------------------------------------


def linux_env(machine: str) -> dict[str, str]:
    """PEP 508 marker environment of python:3.11-slim on the architecture."""
    return {
        "implementation_name": "cpython",
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": "3.11.14",
        "python_version": "3.11",
        "sys_platform": "linux",
        "extra": "",
    }


def image_packages(lock: dict[str, Any], machine: str) -> dict[str, dict[str, Any]]:
    """The packages `uv sync --no-dev --extra k8s` installs for CPython 3.11 on Linux/machine:
    the project's dependencies and its k8s extra, transitively, markers evaluated."""
    from packaging.markers import Marker

    env = linux_env(machine)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in lock["package"]:
        by_name.setdefault(package["name"], []).append(package)

    def resolve(dependency: dict[str, Any]) -> dict[str, Any] | None:
        marker = dependency.get("marker")
        if marker and not Marker(marker).evaluate(env):
            return None
        candidates = by_name[dependency["name"]]
        if "version" in dependency:
            candidates = [p for p in candidates if p["version"] == dependency["version"]]
        assert len(candidates) == 1, dependency
        return candidates[0]

    [root] = by_name["solar-pipeline"]
    todo = list(root.get("dependencies", []))
    todo += root.get("optional-dependencies", {}).get("k8s", [])
    seen: dict[str, dict[str, Any]] = {}
    while todo:
        package = resolve(todo.pop())
        if package is None:
            continue
        key = f"{package['name']}=={package['version']}"
        if key in seen:
            continue
        seen[key] = package
        todo += package.get("dependencies", [])
        for dependency in package.get("dependencies", []):
            for extra in dependency.get("extra", []):
                target = resolve(dependency)
                if target is not None:
                    todo += target.get("optional-dependencies", {}).get(extra, [])
    return seen


def wheel_tags(package: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(python, abi, platform) tags of the package's wheels."""
    tags = []
    for wheel in package["wheels"]:
        filename = wheel["url"].rsplit("/", 1)[-1].removesuffix(".whl")
        python, abi, platform = filename.split("-")[-3:]
        tags.append((python, abi, platform))
    return tags


def installs_on(tags: list[tuple[str, str, str]], arch: str) -> bool:
    """A wheel for CPython 3.11 on glibc Linux (python:3.11-slim) for the architecture."""
    for python, abi, platform in tags:
        fits_python = "cp311" in python or abi == "abi3" or python.startswith("py3")
        if fits_python and "manylinux" in platform and arch in platform:
            return True
    return False


# Packages without a wheel for one of the architectures, reviewed: (name, why it is fine).
ARCH_EXCEPTIONS: dict[str, str] = {}


def test_every_image_package_installs_on_amd64_and_arm64() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    problems = []
    for machine in ("x86_64", "aarch64"):
        packages = image_packages(lock, machine)
        names = {p["name"] for p in packages.values()}
        assert {"dagster", "duckdb", "kubernetes", "psycopg2-binary", "numpy"} <= names
        assert "pywin32" not in names
        for key, package in sorted(packages.items()):
            if package["name"] in ARCH_EXCEPTIONS:
                continue
            tags = wheel_tags(package) if "wheels" in package else []
            if not tags:
                problems.append(f"{key}: sdist only")
            elif any(platform == "any" for _, _, platform in tags):
                continue  # pure Python
            elif not installs_on(tags, machine):
                problems.append(f"{key}: no CPython 3.11 manylinux wheel for {machine}")
    assert not problems, "\n".join(problems)
