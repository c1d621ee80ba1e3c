"""Peak memory of one client request against an oversized answer (`python -m bench.answer_size`).

A SolarEdge simulator in this process serves, to a fresh child process each, an ordinary
`overview` answer, a 50 MB JSON body and a gzip bomb (1 MB on the wire, 1 GiB inflated); the
child makes the one request with the real client and reports its own peak RSS
(`ru_maxrss`). `--code DIR` runs the children on another checkout's `solar_pipeline` (e.g.
an older commit, for a before/after comparison); `--limit-mb` caps each child's address
space so an unbounded read fails instead of taking the machine's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
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


def measure(sim: SolarEdgeSimulator, case: str, code: str | None, limit_mb: int) -> dict:
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

    def limit() -> None:
        cap = limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env,
        cwd=code or None,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limit,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"case": case, "failed": f"exit {proc.returncode}: {last[:200]}"}
    return {"case": case, **json.loads(proc.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", help="run the children on this checkout's solar_pipeline")
    parser.add_argument("--limit-mb", type=int, default=4096, help="address space per child")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    args = parser.parse_args(argv)
    with SolarEdgeSimulator([SITE], clock=lambda: NOW) as sim:
        results = [measure(sim, case, args.code, args.limit_mb) for case in args.cases]
    for r in results:
        print(json.dumps(r))
    return results


if __name__ == "__main__":
    main()
