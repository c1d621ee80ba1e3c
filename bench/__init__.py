"""Benchmarks (`make bench`): measured in one run on the built-in simulators, not asserted."""
