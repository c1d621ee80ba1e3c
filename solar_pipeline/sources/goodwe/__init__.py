"""GoodWe SEMS portal (unofficial app API): client and parsers (no Dagster, no DuckDB)."""
