"""Parse throughput of the gateway path: raw Envoy answers parsed per second, with peak RSS.

Polls the live Envoy simulator once for realistic bodies (firmware 8, metered, 16 inverters,
with device_data), turns them into N polls of one-minute history in raw.envoy_responses
(timestamps shifted per poll: CT readings new every poll, inverter reports new every fifth, as
a real gateway repeats them), then times a full re-parse (`ingest(full=True)`, the code the
Dagster asset and `solar-pipeline envoy-reparse` run) in a fresh process, so its peak RSS is
the parse's own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("SOLAR_TIMEZONE", "Europe/Amsterdam")

import pandas as pd

from solar_pipeline.simulator import SystemSpec
from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline.sources.envoy.client import EnvoyClient
from solar_pipeline.sources.envoy.poll import poll_once
from solar_pipeline.sources.envoy.tokens import EnvoyTokenProvider
from solar_pipeline.warehouse import connect
from solar_pipeline.warehouse.envoy_raw import EnvoyRawWriter

# Epoch fields the gateway stamps: CT readings move every poll, inverter reports every 5 min.
EVERY_POLL = re.compile(r'("(?:readingTime|timestamp)":\s*)(\d{9,})')
EVERY_5_POLLS = re.compile(r'("(?:lastReportDate|endDate)":\s*)(\d{9,})')

# ru_maxrss survives exec (the child would inherit this process's high-water mark), so the
# child reports VmHWM, which belongs to its own address space.
CHILD = """
import json, sys, time
from solar_pipeline.assets.envoy.ingest import ingest
from solar_pipeline.warehouse import connect
with connect(sys.argv[1]) as conn:
    started = time.perf_counter()
    stats = ingest(conn, full=True)
    elapsed = time.perf_counter() - started
print(json.dumps({"parse_s": elapsed, "polls": stats.polls, "raw_answers": stats.raw_rows,
                  "rows_written": dict(stats.written), "malformed": dict(stats.malformed),
                  "peak_rss_mb": next(int(line.split()[1]) for line in open("/proc/self/status")
                                      if line.startswith("VmHWM")) / 1024}))
"""


def _history(db: Path, polls: int) -> int:
    with connect(db) as conn:
        template = conn.execute(
            "SELECT fetched_at, envoy_serial, endpoint, http_status, elapsed_ms, content_type, "
            "body, firmware FROM raw.envoy_responses ORDER BY id"
        ).fetchall()
        rows = []
        for n in range(polls - 1, 0, -1):  # oldest first: ids grow with time, as in life
            poll_id = uuid.uuid4().hex
            for at, serial, endpoint, status, ms, ctype, body, firmware in template:
                body = EVERY_POLL.sub(lambda m, n=n: f"{m[1]}{int(m[2]) - 60 * n}", body)
                body = EVERY_5_POLLS.sub(lambda m, n=n: f"{m[1]}{int(m[2]) - 300 * (n // 5)}", body)
                rows.append(
                    (
                        at - timedelta(minutes=n),
                        serial,
                        endpoint,
                        status,
                        ms,
                        None,
                        ctype,
                        body,
                        firmware,
                        poll_id,
                        None,
                    )
                )
        frame = pd.DataFrame(
            rows,
            columns=[
                "fetched_at",
                "envoy_serial",
                "endpoint",
                "http_status",
                "elapsed_ms",
                "error",
                "content_type",
                "body",
                "firmware",
                "poll_id",
                "run_id",
            ],
        )
        conn.register("_history", frame)
        conn.execute("INSERT INTO raw.envoy_responses BY NAME SELECT * FROM _history")
        return conn.execute("SELECT count(*) FROM raw.envoy_responses").fetchone()[0]


def envoy_parse(polls: int = 20_000) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "solar.duckdb"
        with EnvoySimulator(SystemSpec(), outage=None) as sim:
            writer = EnvoyRawWriter(db)
            tokens = EnvoyTokenProvider(Path(tmp) / "t.json", configured=sim.mint_token())
            client = EnvoyClient(
                sim.base_url, Path(tmp), tokens, writer.add, cert_fingerprint=sim.cert_fingerprint
            )
            poll_once(client)
            writer.end_poll(client.info.serial, client.info.firmware)
            writer.flush()
        answers = _history(db, polls)
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(db)], capture_output=True, text=True, check=True
        )
        result = json.loads(out.stdout)
    result.update(
        raw_answers_in_table=answers,
        answers_per_s=round(result["raw_answers"] / result["parse_s"]),
        parse_s=round(result["parse_s"], 2),
        peak_rss_mb=round(result["peak_rss_mb"], 1),
        cpus=os.cpu_count(),
    )
    return result


if __name__ == "__main__":
    result = envoy_parse(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
    for key, value in result.items():
        print(f"{key:<22} {value}")
