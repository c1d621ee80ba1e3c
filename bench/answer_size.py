"""Peak memory against an oversized answer (`python -m bench.answer_size [--run]`).

A SolarEdge simulator in this process serves, to a fresh child process each, an ordinary
answer, a 50 MB JSON body and a gzip bomb (1 MB on the wire, 1 GiB inflated). The child makes
one `overview` request with the real client, or with `--run` materializes the SolarEdge
assets (`raw/solaredge_responses`, `solaredge/intervals`) for one day as a scheduled run
does, and reports its own peak RSS (`ru_maxrss`). `--code DIR` runs the children on another
checkout's `solar_pipeline` (e.g. an older commit, for a before/after comparison);
`--limit-mb` caps each child's address space so an unbounded read fails instead of taking
the machine's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime

from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.simulator.solaredge import SolarEdgeSimulator

SITE = SystemSpec(system_id=3179485, timezone="Europe/Amsterdam", operational_date=date(2026, 1, 1))
NOW = datetime(2026, 11, 25, 11, 0, 30, tzinfo=UTC).timestamp()
CASES = ("plain", "huge_body", "gzip_bomb")

# Runs in the child: only the client API that every version of the code has.
CHILD = """
import json, os, resource
from solar_pipeline.sources.http import build_session
from solar_pipeline.sources.solaredge.client import SolarEdgeClient
seen = []
client = SolarEdgeClient(
    int(os.environ["BENCH_SITE"]), os.environ["BENCH_KEY"], seen.append,
    base_url=os.environ["BENCH_URL"], session=build_session(0.01, 0),
)
try:
    client.overview()
    outcome = "ok"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {str(exc)[:160]}"
last = seen[-1] if seen else None
print(json.dumps({
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "status": last.status if last else None,
    "stored_body_bytes": len(last.body) if last and last.body else 0,
    "error": getattr(last, "error", None),
    "outcome": outcome,
}))
"""


# The same in a Dagster run of the SolarEdge assets (the first request gets the answer).
RUN_CHILD = """
import json, os, resource
import dagster as dg
from solar_pipeline.assets import solaredge
from solar_pipeline.resources import DuckDBWarehouse
result = dg.materialize(
    solaredge.assets,
    partition_key=os.environ["BENCH_DAY"],
    resources={"warehouse": DuckDBWarehouse(path=os.environ["BENCH_DB"])},
    raise_on_error=False,
)
failed = [e.message for e in result.all_events if e.is_failure]
checks = [
    (e.event_specific_data.check_name, e.event_specific_data.passed)
    for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
]
print(json.dumps({
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "run_success": result.success,
    "checks": checks,
    "failures": [m[:160] for m in failed],
}))
"""


def _sites_file(sim: SolarEdgeSimulator, work: str) -> str:
    path = os.path.join(work, "sites.yaml")
    with open(path, "w") as f:
        f.write(
            "sites:\n"
            "  - site_id: cottage\n"
            "    vendor: solaredge\n"
            f"    timezone: {SITE.timezone}\n"
            f'    ids: {{site_id: {SITE.system_id}, api_url: "{sim.base_url}"}}\n'
            "    credentials: {api_key: BENCH_SOLAREDGE_KEY}\n"
        )
    return path


def measure(
    sim: SolarEdgeSimulator, case: str, code: str | None, limit_mb: int, run: bool = False
) -> dict:
    if case != "plain":
        sim.misbehave_next(case)
    env = {
        **os.environ,
        "BENCH_SITE": str(SITE.system_id),
        "BENCH_KEY": sim.api_key,
        "BENCH_URL": sim.base_url,
    }
    if code:
        env["PYTHONPATH"] = code
    work = tempfile.mkdtemp(prefix="bench-answer-size-")
    if run:
        env.update(
            SOLAR_SITES=_sites_file(sim, work),
            SOLAR_DATA_DIR=work,
            SOLAR_TIMEZONE=SITE.timezone,
            BENCH_SOLAREDGE_KEY=sim.api_key,
            BENCH_DAY="2026-11-20",
            BENCH_DB=os.path.join(work, "solar.duckdb"),
            DAGSTER_HOME=work,
        )

    def limit() -> None:
        cap = limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    proc = subprocess.run(
        [sys.executable, "-c", RUN_CHILD if run else CHILD],
        env=env,
        cwd=code or None,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limit,
    )
    shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"case": case, "failed": f"exit {proc.returncode}: {last[:200]}"}
    return {"case": case, **json.loads(proc.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", help="run the children on this checkout's solar_pipeline")
    parser.add_argument("--limit-mb", type=int, default=4096, help="address space per child")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--run", action="store_true", help="a Dagster run, not one request")
    args = parser.parse_args(argv)
    with SolarEdgeSimulator([SITE], clock=lambda: NOW) as sim:
        results = [measure(sim, case, args.code, args.limit_mb, args.run) for case in args.cases]
    for r in results:
        print(json.dumps(r))
    return results


if __name__ == "__main__":
    main()
