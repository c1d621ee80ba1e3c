"""SMA ennexOS / Sunny Portal Monitoring API: OAuth and owner consent, client, parsers (no Dagster,
no DuckDB)."""
