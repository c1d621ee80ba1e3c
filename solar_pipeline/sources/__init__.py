"""HTTP clients and parsers, one folder per vendor. No Dagster and no SQL in here."""
