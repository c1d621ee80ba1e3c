"""`make bench`: every figure measured side by side in one run on the built-in simulators.

Each measurement runs in its own process (a Dagster run launched as Dagster launches it, or a
child of this one) and reports its own peak RSS; this process only starts the simulators,
launches, and prints one table. Results go to bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from bench import backfill, envoy
from bench.common import ROOT, TIMEZONE, child, dagster_home, launch, median, memory_gb, today
from solar_pipeline.simulator import EnphaseCloudSimulator, SystemSpec
from solar_pipeline.simulator.envoy import EnvoySimulator


def bytecode_cache(work: Path) -> None:
    """Let every child write and reuse bytecode, as a normal install does: with
    PYTHONDONTWRITEBYTECODE set (some CI images set it) each launch would recompile ~2,700
    modules and the start-up figures would measure the compiler."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    subprocess.run(
        [sys.executable, "-c", "import solar_pipeline.definitions, dagster._cli, bench.noop"],
        cwd=ROOT,
        check=True,
    )


def ticks(
    cloud_env: dict[str, str],
    empty_env: dict[str, str],
    year_env: dict[str, str],
    bare_home: Path,
    reps: int,
) -> dict:
    """The scheduled runs and a bare run, interleaved so drift hits them all alike."""
    partition = today().isoformat()
    runs = {
        "bare": lambda: launch(
            ["job", "execute", "-m", "bench.noop", "-j", "noop_job"],
            {"DAGSTER_HOME": str(bare_home)},
        ),
        "cloud": lambda: launch(
            [
                "job",
                "execute",
                "-m",
                "solar_pipeline.definitions",
                "-j",
                "enphase_cloud_job",
                "--tags",
                json.dumps({"dagster/partition": partition}),
            ],
            cloud_env,
        ),
        "envoy_empty": lambda: envoy.tick(empty_env),
        "envoy_year": lambda: envoy.tick(year_env),
    }
    for run in runs.values():  # first runs open fresh instances and caches: not counted
        run()
    samples: dict[str, list] = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            samples[name].append(run())
    return {
        name: {
            "wall_s": round(median([x.wall_s for x in got]), 3),
            "walls_s": [round(x.wall_s, 3) for x in got],
            "peak_rss_mb": max(x.peak_rss_mb for x in got),
        }
        for name, got in samples.items()
    }


def query_speed(db: Path, first: str, last: str, reps: int = 5) -> dict:
    """A year of daily and monthly energy, read-only as a dashboard would, median of `reps`."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for name, sql, params in [
            (
                "daily",
                "SELECT * FROM energy.daily_energy WHERE day BETWEEN ? AND ? ORDER BY day",
                [first, last],
            ),
            (
                "monthly",
                "SELECT * FROM energy.monthly_energy WHERE month BETWEEN "
                "date_trunc('month', ?::DATE) AND ? ORDER BY month",
                [first, last],
            ),
        ]:
            times, rows = [], 0
            for _ in range(reps):
                started = time.perf_counter()
                rows = len(con.execute(sql, params).fetchall())
                times.append((time.perf_counter() - started) * 1000)
            out[name] = {"rows": rows, "ms": round(median(times), 2)}
        return out
    finally:
        con.close()


def measure(args: argparse.Namespace, work: Path) -> dict:
    bytecode_cache(work)
    spec = SystemSpec(timezone=TIMEZONE)
    with (
        # Quotas lifted: only our own budget (ENPHASE_PLAN) paces the cloud runs.
        EnphaseCloudSimulator([spec], per_minute=10**6, per_month=10**8) as cloud,
        EnvoySimulator(spec, outage=None) as gateway,
    ):
        single = backfill.single_run(cloud, work, args.days)
        cloud_env = single.pop("env")
        split = backfill.per_partition(cloud, work, args.runs, args.days)

        empty_env = envoy.envoy_env(gateway, work / "envoy_empty")
        year_env = envoy.envoy_env(gateway, work / "envoy_year")
        envoy.tick(empty_env)  # one real poll: the template of the history
        history = envoy.write_history(
            work / "envoy_empty" / "solar.duckdb", work / "envoy_year" / "solar.duckdb", args.raw
        )
        parse = child("bench.envoy", "reparse", str(work / "envoy_year" / "solar.duckdb"))
        tick = ticks(cloud_env, empty_env, year_env, dagster_home(work / "bare"), args.reps)
    query = query_speed(work / "single" / "solar.duckdb", single["first_day"], single["last_day"])
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": memory_gb(),
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "dagster": _dagster_version(),
        },
        "backfill": {"single_run": single, "per_partition": split},
        "ticks": tick,
        "growth": {"history": history},
        "reparse": parse,
        "query": query,
    }


def _dagster_version() -> str:
    from importlib.metadata import version

    return version("dagster")


def _status(ok: bool) -> str:
    return "met" if ok else "MISSED"


HEAD = ("measurement", "wall", "peak RSS", "detail", "ratio", "target")


def table(r: dict) -> list[tuple[str, ...]]:
    """One row per figure, in HEAD's columns; sets r["ratios"]."""
    s, p = r["backfill"]["single_run"], r["backfill"]["per_partition"]
    t, h, q, rp = r["ticks"], r["growth"]["history"], r["query"], r["reparse"]
    bare = t["bare"]["wall_s"]
    cloud_ratio = t["cloud"]["wall_s"] / bare
    envoy_ratio = t["envoy_empty"]["wall_s"] / bare
    growth = t["envoy_year"]["wall_s"] / t["envoy_empty"]["wall_s"]
    r["ratios"] = {
        "backfill_per_partition_vs_single_wall": round(p["wall_s"] / s["wall_s"], 2),
        "backfill_per_partition_vs_single_requests": round(p["requests"] / s["requests"], 2),
        "cloud_tick_vs_bare": round(cloud_ratio, 2),
        "envoy_tick_vs_bare": round(envoy_ratio, 2),
        "envoy_tick_year_vs_empty": round(growth, 2),
    }
    own = s["wall_without_budget_wait_s"]
    ratios = r["ratios"]

    def wall(x: dict) -> str:
        return f"{x['wall_s']:.2f} s"

    def rss(x: dict) -> str:
        return f"{x['peak_rss_mb']:.0f} MB"

    def split(x: dict) -> str:
        return (
            f"   = {x['wall_s'] - x['in_run_s']:.1f} s start + {x['in_run_s']:.1f} s run "
            f"({x['budget_wait_s']:.1f} s plan wait)"
        )

    return [
        (
            f"1. backfill {s['days']} days, one run",
            f"{s['wall_s']:.1f} s",
            rss(s),
            f"{s['requests']} requests, {s['requests_per_day']:.2f}/day",
            f"{ratios['backfill_per_partition_vs_single_wall']:.1f}x faster, "
            f"{ratios['backfill_per_partition_vs_single_requests']:.1f}x fewer req",
            f"<=2 req/day: {_status(s['requests_per_day'] <= 2)}",
        ),
        (
            split(s),
            "",
            "",
            "",
            "",
            f"<30 s w/o plan wait ({own:.1f} s): {_status(own < 30)}",
        ),
        (
            f"   a run per partition ({p['runs_measured']} runs x {p['days']}/"
            f"{p['runs_measured']})",
            f"{p['wall_s']:.1f} s",
            rss(p),
            f"{p['requests']} requests, {p['requests_per_day']:.2f}/day",
            "",
            "",
        ),
        (split(p), "", "", "", "", ""),
        ("2. bare no-op Dagster run", wall(t["bare"]), rss(t["bare"]), "", "1.00x", ""),
        (
            "   cloud tick (enphase_cloud_job, today)",
            wall(t["cloud"]),
            rss(t["cloud"]),
            "",
            f"{cloud_ratio:.2f}x bare",
            f"<1.3x: {_status(cloud_ratio < 1.3)}",
        ),
        (
            "   Envoy tick (envoy_job, 1 poll)",
            wall(t["envoy_empty"]),
            rss(t["envoy_empty"]),
            "empty database",
            f"{envoy_ratio:.2f}x bare",
            f"<1.3x: {_status(envoy_ratio < 1.3)}",
        ),
        (
            "3. Envoy tick, a year of history",
            wall(t["envoy_year"]),
            rss(t["envoy_year"]),
            f"{h['raw_answers']:,} raw answers",
            f"{growth:.2f}x empty",
            f"<1.2x: {_status(growth < 1.2)}",
        ),
        (
            "4. re-parse a year of raw answers",
            f"{rp['parse_s']:.1f} s",
            rss(rp),
            f"{rp['raw_answers']:,} answers, {rp['answers_per_s']:,}/s",
            "",
            f">5,000/s: {_status(rp['answers_per_s'] > 5000)}; "
            f"<500 MB: {_status(rp['peak_rss_mb'] < 500)}",
        ),
        (
            "5. query a year of energy.daily_energy",
            f"{q['daily']['ms']:.1f} ms",
            "",
            f"{q['daily']['rows']} rows",
            "",
            "",
        ),
        (
            "   query a year of energy.monthly_energy",
            f"{q['monthly']['ms']:.1f} ms",
            "",
            f"{q['monthly']['rows']} rows",
            "",
            "",
        ),
    ]


def render(r: dict, rows: list[tuple[str, ...]]) -> str:
    m = r["machine"]
    widths = [max(len(x[i]) for x in [HEAD, *rows]) for i in range(len(HEAD))]
    line = "  ".join("-" * w for w in widths)

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join(
        [
            f"machine: {m['cpus']} cores, {m['memory_gb']} GB RAM; Python {m['python']}, "
            f"Dagster {m['dagster']}, DuckDB {m['duckdb']}",
            line,
            fmt(HEAD),
            line,
            *(fmt(row) for row in rows),
            line,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--days", type=int, default=365, help="days of cloud backfill")
    parser.add_argument("--runs", type=int, default=20, help="per-partition runs measured")
    parser.add_argument(
        "--raw", type=int, default=525_600, help="raw Envoy answers of history (re-parsed)"
    )
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each tick")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="solar-bench-") as tmp:
        results = measure(args, Path(tmp))
    rows = table(results)
    results["bench_wall_s"] = round(time.perf_counter() - started, 1)
    results["args"] = {k: str(v) for k, v in vars(args).items()}
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(render(results, rows))
    print(f"whole bench: {results['bench_wall_s']:.0f} s; details in {args.out}")


if __name__ == "__main__":
    main()
