"""SolarEdge monitoring API: client, daily request budget and parsers (no Dagster, no DuckDB)."""
