"""The gateway path: the poll run's cost with an empty database and with a year of history,
and the full re-parse's throughput.

The history is one real poll of the Envoy simulator (firmware 8, metered, 16 inverters with
device_data: 6 answers) copied backwards in time by DuckDB SQL, every epoch timestamp in the
bodies shifted with its poll, so every copy parses into new readings. `python -m bench.envoy
reparse <db>` is the re-parse child (its VmHWM is the parse's own peak).
"""

from __future__ import annotations

import re
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb

from bench.common import Launch, dagster_home, emit, launch
from solar_pipeline.assets.envoy.ingest import ingest
from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline.warehouse import connect

# The gateway's epoch fields (readingTime, lastReportDate, endDate, timestamp ...): 9+ digits.
EPOCH = re.compile(r'("(?:readingTime|timestamp|lastReportDate|endDate)":\s*)(\d{9,})')
# Wraps each epoch in the template so SQL can find it: text and epochs alternate after a split.
MARK = "\x01"
POLL_CONFIG = """
ops:
  raw__envoy_responses:
    config: {polls: 1, interval_s: 0}
"""


def envoy_env(sim: EnvoySimulator, data_dir: Path) -> dict[str, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "envoy_poll.yaml"
    config.write_text(POLL_CONFIG)
    return {
        "SOLAR_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(dagster_home(data_dir)),
        "ENVOY_URL": sim.base_url,
        "ENVOY_TOKEN": sim.mint_token(),
        "ENVOY_CERT_FINGERPRINT": sim.cert_fingerprint or "",
        "BENCH_ENVOY_CONFIG": str(config),
    }


def tick(env: dict[str, str]) -> Launch:
    """envoy_job with one poll, launched like the envoy_poll schedule's runs."""
    return launch(
        [
            "job",
            "execute",
            "-m",
            "solar_pipeline.definitions",
            "-j",
            "envoy_job",
            "-c",
            env["BENCH_ENVOY_CONFIG"],
        ],
        env,
    )


def write_history(template_db: Path, db: Path, responses: int) -> dict:
    """`responses` raw answers (whole polls of the template's answers) spread evenly over the
    year before the template poll, oldest first so ids grow with time as in life."""
    with duckdb.connect(str(template_db), read_only=True) as src:
        template = src.execute(
            "SELECT endpoint, http_status, elapsed_ms, content_type, body, firmware, "
            "envoy_serial, fetched_at FROM raw.envoy_responses "
            "WHERE poll_id = (SELECT poll_id FROM raw.envoy_responses ORDER BY id LIMIT 1) "
            "ORDER BY id"
        ).fetchall()
    per_poll = len(template)
    polls = max(responses // per_poll, 1)
    step_s = 365 * 86400 // polls
    newest = template[0][7] - timedelta(seconds=step_s)
    rows = [
        (n, *row[:4], EPOCH.sub(lambda m: f"{m[1]}{MARK}{m[2]}{MARK}", row[4] or ""), *row[5:7])
        for n, row in enumerate(template)
    ]
    started = time.perf_counter()
    with connect(db) as conn:
        conn.execute(
            "CREATE TEMP TABLE tmpl (ord INT, endpoint VARCHAR, http_status INT, elapsed_ms DOUBLE,"
            " content_type VARCHAR, body VARCHAR, firmware VARCHAR, envoy_serial VARCHAR)"
        )
        conn.executemany("INSERT INTO tmpl VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        # Poll p (0 = oldest) is `back` seconds older than the newest; odd split parts are epochs.
        conn.execute(
            f"""
            INSERT INTO raw.envoy_responses (fetched_at, envoy_serial, endpoint, http_status,
                elapsed_ms, error, content_type, body, firmware, poll_id, run_id)
            SELECT ?::TIMESTAMPTZ - to_seconds(back) + to_milliseconds(t.ord * 100),
                t.envoy_serial, t.endpoint, t.http_status, t.elapsed_ms, NULL, t.content_type,
                array_to_string(list_transform(string_split(t.body, '{MARK}'),
                    lambda part, i: CASE WHEN i % 2 = 0 THEN (part::BIGINT - back)::VARCHAR
                                         ELSE part END), ''),
                t.firmware, md5('bench-poll-' || p::VARCHAR), NULL
            FROM (SELECT p, (? - 1 - p) * ? AS back FROM range(?) r(p)) polls, tmpl t
            ORDER BY p, t.ord
            """,
            [newest, polls, step_s, polls],
        )
        [(count, first, last)] = conn.execute(
            "SELECT count(*), min(fetched_at), max(fetched_at) FROM raw.envoy_responses"
        ).fetchall()
    return {
        "raw_answers": count,
        "polls": polls,
        "answers_per_poll": per_poll,
        "poll_every_s": step_s,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "insert_s": round(time.perf_counter() - started, 2),
    }


def reparse(db: Path) -> dict:
    """The full re-parse (`ingest(full=True)`, what `solar-pipeline envoy-reparse` runs)."""
    with connect(db) as conn:
        started = time.perf_counter()
        stats = ingest(conn, full=True)
        elapsed = time.perf_counter() - started
        [(first, last)] = conn.execute(
            "SELECT min(reading_at), max(reading_at) FROM envoy.meter_readings"
        ).fetchall()
    return {
        "parse_s": round(elapsed, 2),
        "polls": stats.polls,
        "raw_answers": stats.raw_rows,
        "answers_per_s": round(stats.raw_rows / elapsed),
        "rows_written": dict(stats.written),
        "malformed": sum(stats.malformed.values()),
        "first_reading": first.isoformat() if first else None,
        "last_reading": last.isoformat() if last else None,
    }


if __name__ == "__main__":
    if sys.argv[1:2] != ["reparse"] or len(sys.argv) != 3:
        sys.exit("usage: python -m bench.envoy reparse <duckdb file>")
    emit(reparse(Path(sys.argv[2])))
