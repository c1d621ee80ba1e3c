"""Benchmarks (`make bench`): measured in one run on the built-in simulators, not asserted."""

import os

# Before anything imports solar_pipeline, whose partitions are built from the environment at
# import: a site with DST, so the year holds a 23- and a 25-hour day.
os.environ.setdefault("SOLAR_TIMEZONE", "Europe/Amsterdam")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
