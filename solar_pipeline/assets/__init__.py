"""Dagster assets, one folder per source; each folder exposes a `defs` Definitions object."""
