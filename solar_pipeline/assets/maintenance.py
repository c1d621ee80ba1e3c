"""Housekeeping assets: the Parquet export for notebooks, and compaction of old raw answers."""

from pathlib import Path

import dagster as dg

from solar_pipeline.constants import (
    DUCKDB_POOL,
    ENERGY_DAILY,
    ENERGY_DAILY_INVERTER,
    ENERGY_INTERVALS,
    ENERGY_MONTHLY,
    ENPHASE_ALARMS,
    ENPHASE_CONSUMPTION_INTERVALS,
    ENPHASE_DAILY_ENERGY,
    ENPHASE_EVENTS,
    ENPHASE_PRODUCTION_INTERVALS,
    ENPHASE_SYSTEM_SUMMARY,
    ENVOY_INVERTER_READINGS,
    ENVOY_METER_READINGS,
    ENVOY_PRODUCTION_READINGS,
    EXPORTS_PARQUET,
    MAINTENANCE_GROUP,
    RAW_ARCHIVE,
    RAW_ENPHASE_RESPONSES,
    RAW_ENVOY_RESPONSES,
)
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.settings import Settings
from solar_pipeline.warehouse.archive import archive_raw, retention_days_from_env
from solar_pipeline.warehouse.export import export_parquet

_EXPORTED = [
    ENPHASE_SYSTEM_SUMMARY,
    ENPHASE_EVENTS,
    ENPHASE_ALARMS,
    ENPHASE_PRODUCTION_INTERVALS,
    ENPHASE_CONSUMPTION_INTERVALS,
    ENPHASE_DAILY_ENERGY,
    ENVOY_PRODUCTION_READINGS,
    ENVOY_INVERTER_READINGS,
    ENVOY_METER_READINGS,
    ENERGY_INTERVALS,
    ENERGY_DAILY,
    ENERGY_DAILY_INVERTER,
    ENERGY_MONTHLY,
]


class ExportConfig(dg.Config):
    path: str | None = None
    """Folder of the export (default: $SOLAR_DATA_DIR/export)."""


class ArchiveConfig(dg.Config):
    older_than_days: int | None = None
    """Archive raw rows fetched more than this many days ago (default:
    SOLAR_RAW_RETENTION_DAYS, else 90)."""


@dg.asset(
    key=EXPORTS_PARQUET,
    deps=_EXPORTED,
    # Read-only, but a reader still keeps DuckDB's writers out: queue with them.
    pool=DUCKDB_POOL,
    group_name=MAINTENANCE_GROUP,
    kinds={"duckdb", "parquet"},
)
def parquet_export(config: ExportConfig, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """The enphase, envoy and energy tables as Hive-partitioned Parquet, one file per table and
    local month (`<schema>.<table>/year=YYYY/month=MM/data.parquet`), for notebooks and other
    tools that must not hold the DuckDB file. Only months whose rows changed are rewritten
    (fingerprints in `manifest.json`), and each file is replaced atomically."""
    settings = Settings.from_env()
    target = Path(config.path) if config.path else settings.data_dir / "export"
    summary = export_parquet(warehouse.path, target, settings.timezone)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "tables": summary.tables,
            "months_written": len(summary.written),
            "months_unchanged": summary.unchanged,
            "files_removed": len(summary.removed),
            "written": dg.MetadataValue.json(summary.written),
        }
    )


@dg.asset(
    key=RAW_ARCHIVE,
    deps=[RAW_ENPHASE_RESPONSES, RAW_ENVOY_RESPONSES],
    pool=DUCKDB_POOL,
    group_name=MAINTENANCE_GROUP,
    kinds={"duckdb", "parquet"},
)
def raw_archive(config: ArchiveConfig, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """Raw API answers fetched more than SOLAR_RAW_RETENTION_DAYS (default 90) days ago, moved
    from DuckDB to zstd Parquet under `$SOLAR_DATA_DIR/archive/raw/<table>/year=/month=`.
    A row is deleted only after its file was read back and compared; answers a parser has not
    read yet stay. `solar-pipeline raw-restore --from --to` puts a range back for a re-parse."""
    settings = Settings.from_env()
    days = config.older_than_days
    if days is None:
        days = retention_days_from_env()
    summary = archive_raw(warehouse.path, settings.data_dir, days, settings.timezone)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(summary.root)),
            "cutoff": summary.cutoff.isoformat(),
            "rows_archived": sum(summary.rows.values()),
            "rows_by_table": dg.MetadataValue.json(summary.rows),
            "files_written": len(summary.files),
        }
    )


assets = [parquet_export, raw_archive]
