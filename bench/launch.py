"""`python -m bench.launch <dagster CLI args>`: the `dagster` command, plus its peak RSS.

A run launched this way executes in this process (the project uses the in-process executor),
so VmHWM read here at exit is the run's own peak. ru_maxrss of a child would not do: it
survives exec, so it could report the launching process's high-water mark instead.
"""

from __future__ import annotations

import atexit
import json
import os
import sys

from bench.common import vmhwm_mb


def _report() -> None:
    target = os.environ.get("BENCH_RSS_FILE")
    if target:
        with open(target, "w") as out:
            json.dump({"peak_rss_mb": vmhwm_mb()}, out)


if __name__ == "__main__":
    atexit.register(_report)
    from dagster._cli import main

    sys.argv[0] = "dagster"
    sys.exit(main())
