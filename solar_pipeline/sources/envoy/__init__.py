"""Local Envoy / IQ Gateway API: probe, auth, client, parsers; no Dagster, no SQL."""
