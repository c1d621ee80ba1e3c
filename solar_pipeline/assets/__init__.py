"""Dagster assets, one folder per source."""

import warnings

from dagster import BetaWarning

# `backfill_policy` is Dagster's documented way to get single-run backfills; its "beta" label
# would otherwise print a warning per asset on every load.
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")
