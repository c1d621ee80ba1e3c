"""`make bench` at a tiny size: every measurement's code path runs against the simulators and
reports what it did. No timings are asserted; only that each path did the work it claims."""

import json
import os
from datetime import date, timedelta

import pytest

from bench.__main__ import main
from bench.common import today


@pytest.mark.slow
def test_bench_runs_every_measurement_and_writes_its_results(tmp_path, monkeypatch, capsys):
    # The bench lets its children cache bytecode; keep that out of this process's environment.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path / "pycache"))
    out = tmp_path / "results.json"

    main(["--days", "3", "--runs", "2", "--raw", "600", "--reps", "1", "--out", str(out)])

    r = json.loads(out.read_text())
    assert r["machine"]["cpus"] == os.cpu_count()
    assert r["machine"]["memory_gb"] > 0

    single, split = r["backfill"]["single_run"], r["backfill"]["per_partition"]
    assert (single["days"], single["runs"], split["runs_measured"]) == (3, 1, 2)
    assert date.fromisoformat(single["last_day"]) == today() - timedelta(days=1)
    # One run fetches the weeks' meter data once; one run per day fetches it every day.
    assert single["requests_per_day"] < split["requests_per_day"]
    assert "env" not in single  # the run's settings (with a token) never reach the results

    for name in ("bare", "cloud", "envoy_empty", "envoy_year"):
        assert r["ticks"][name]["wall_s"] > 0 and r["ticks"][name]["peak_rss_mb"] > 0

    history = r["growth"]["history"]
    assert (history["raw_answers"], history["answers_per_poll"]) == (600, 6)
    parse = r["reparse"]
    assert (parse["raw_answers"], parse["polls"], parse["malformed"]) == (600, 100, 0)
    # Every copied poll carries its own timestamps, so each parses into new readings: 16
    # inverter reports per poll, and meter readings spread over the year of history.
    assert parse["rows_written"]["inverters"] == 16 * 100
    first, last = (date.fromisoformat(parse[k][:10]) for k in ("first_reading", "last_reading"))
    assert (last - first).days >= 360

    assert r["query"]["daily"]["rows"] == 3
    assert r["query"]["monthly"]["rows"] in (1, 2)

    printed = capsys.readouterr().out
    assert f"{os.cpu_count()} cores" in printed
    for n in range(1, 6):
        assert f"\n{n}. " in printed
    assert r["ratios"]["cloud_tick_vs_bare"] > 0
