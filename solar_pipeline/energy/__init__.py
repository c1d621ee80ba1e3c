"""Vendor-neutral energy model: counters -> intervals -> local-day figures.

Pure functions only (no Dagster, no SQL, no I/O), so every daily figure can be recomputed for
any past day and tested without a pipeline. Source parsers turn vendor payloads into
`Interval`s; assets decide where the results are stored.
"""
