"""What every measurement shares: child processes, their peak RSS, the Dagster launch path."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEZONE = os.environ["SOLAR_TIMEZONE"]  # set by bench/__init__.py


def vmhwm_mb() -> float:
    """This process's peak resident set (VmHWM), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory_gb() -> float:
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    raise RuntimeError("no MemTotal in /proc/meminfo")


def today() -> date:
    """Today in the site's time zone: the partition a scheduled tick works on."""
    from solar_pipeline.partitions import DAILY

    return date.fromisoformat(DAILY.get_partition_key_for_timestamp(time.time()))


def past_days(days: int) -> tuple[date, date]:
    """The `days` complete local days before today."""
    last = today() - timedelta(days=1)
    return last - timedelta(days=days - 1), last


def dagster_home(parent: Path) -> Path:
    """A Dagster instance as `make demo` makes it: the project's dagster.yaml, SQLite storage."""
    home = parent / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


@dataclass(frozen=True)
class Launch:
    wall_s: float
    peak_rss_mb: float


def launch(args: list[str], env: dict[str, str], timeout: float = 600) -> Launch:
    """One Dagster run in its own process, started the way a user or the run launcher does,
    timed from process start to exit."""
    with tempfile.NamedTemporaryFile(suffix=".json") as rss:
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bench.launch", *args],
            cwd=ROOT,
            env={**os.environ, **env, "BENCH_RSS_FILE": rss.name},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"dagster {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
        return Launch(wall, json.loads(Path(rss.name).read_text())["peak_rss_mb"])


RESULT_MARK = "BENCH_RESULT "


def emit(result: dict) -> None:
    """A child's answer to `child`: one marked JSON line, with the child's own peak RSS."""
    print(RESULT_MARK + json.dumps({**result, "peak_rss_mb": vmhwm_mb()}), flush=True)


def child(module: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run `python -m module args` and return what it emitted."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith(RESULT_MARK))
    return json.loads(line[len(RESULT_MARK) :])


def median(values: list[float]) -> float:
    return statistics.median(values)
