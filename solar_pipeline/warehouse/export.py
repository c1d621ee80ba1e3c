"""Typed and energy tables -> Hive-partitioned Parquet by month, rewriting only what changed.

Layout (one folder per table, named `<schema>.<table>` so a glob never mixes two tables)::

    DIR/manifest.json
    DIR/enphase.daily_energy/year=2025/month=06/data.parquet
    DIR/energy.monthly_energy/year=2025/data.parquet      (the table has a `month` column)
    DIR/envoy.inverter_tags/data.parquet                   (no time column: one file)

Read a table with ``read_parquet('DIR/enphase.daily_energy/**/*.parquet',
hive_partitioning=true)``. Partition columns are not stored in the files (the Hive convention);
reading with ``hive_partitioning=true`` adds `year` and `month` columns.

Why fingerprints: a notebook or a sync tool (rsync, a bucket upload) should see only the months
that really changed, and exports run often. DuckDB computes, per (table, month), the row count
and an order-independent sum of row hashes; a month is copied again only when that differs from
the manifest or its file is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
from filelock import FileLock

from solar_pipeline.sites import FLEET_VENDORS
from solar_pipeline.sources.files import write_private_file
from solar_pipeline.warehouse.db import connect

EXPORT_SCHEMAS = ("enphase", "envoy", "energy", *FLEET_VENDORS)
MANIFEST = "manifest.json"
DATA_FILE = "data.parquet"
MANIFEST_FORMAT = 1

# Which time column places a row in a month, in order of preference: the day a figure belongs
# to beats the moment it was fetched. Only NOT NULL columns qualify (a NULL has no month), so
# enphase.alarms, whose times are all optional, is exported as one file.
PREFERRED_TIME_COLUMNS = (
    "day",
    "month",
    "start_at",
    "end_at",
    "reading_at",
    "last_report_at",
    "started_at",
    "fetched_at",
)
_SQL_TYPE = {"DATE": "DATE", "TIMESTAMP": "TIMESTAMP", "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}
TIME_TYPES = tuple(_SQL_TYPE)

Granularity = Literal["month", "year", "none"]


@dataclass(frozen=True)
class TableLayout:
    """How one table is cut into files."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type), table order
    time_column: str | None
    granularity: Granularity
    timezone: str

    @property
    def column_list(self) -> str:
        return ", ".join(_quote(c) for c, _ in self.columns)

    @property
    def signature(self) -> str:
        """Changes whenever files written before would now come out differently: a new
        column, another time column or zone, another DuckDB (whose row hash may differ)."""
        text = json.dumps(
            [self.columns, self.time_column, self.granularity, self.timezone, duckdb.__version__]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _local(self) -> str:
        col = _quote(self.time_column or "")
        type_ = dict(self.columns)[self.time_column or ""]
        if type_ == "TIMESTAMP WITH TIME ZONE":
            # Months are the site's local months, like the daily partitions.
            return f"timezone('{self.timezone}', {col})"
        return col

    def partition_exprs(self) -> list[str]:
        if self.granularity == "month":
            return [f"year({self._local()})", f"month({self._local()})"]
        if self.granularity == "year":
            return [f"year({self._local()})"]
        return []

    def partition_key(self, values: tuple[int, ...]) -> str:
        names = ("year", "month")[: len(values)]
        fmt = {"year": "{:04d}", "month": "{:02d}"}
        return "/".join(f"{n}={fmt[n].format(v)}" for n, v in zip(names, values, strict=True))

    def partition_filter(self, values: tuple[int, ...]) -> str:
        """The exact predicate (the same expressions the fingerprint grouped by), plus a
        coarse range on the raw column that lets DuckDB skip row groups."""
        exact = [f"{e} = {int(v)}" for e, v in zip(self.partition_exprs(), values, strict=True)]
        if not values:
            return "true"
        first = date(values[0], values[1] if len(values) > 1 else 1, 1)
        after = _next_month(first) if len(values) > 1 else date(first.year + 1, 1, 1)
        col = _quote(self.time_column or "")
        cast = _SQL_TYPE[dict(self.columns)[self.time_column or ""]]
        # Two days of slack cover any UTC offset; the exact predicate does the real cut.
        lo, hi = first - timedelta(days=2), after + timedelta(days=2)
        coarse = f"{col} >= '{lo.isoformat()}'::{cast} AND {col} < '{hi.isoformat()}'::{cast}"
        return " AND ".join([coarse, *exact])


@dataclass
class ExportSummary:
    path: Path
    tables: int = 0
    written: list[str] = field(default_factory=list)  # "<table>/<partition>"
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"Exported {self.tables} tables to {self.path}: {len(self.written)} files written, "
            f"{self.unchanged} unchanged, {len(self.removed)} removed."
        )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def table_layouts(conn: duckdb.DuckDBPyConnection, timezone: str) -> list[TableLayout]:
    """Every base table of the exported schemas, with its time column picked from its
    columns, so a table added to the DDL is exported without touching this module."""
    rows = conn.execute(
        """
        SELECT c.table_schema || '.' || c.table_name, c.column_name, c.data_type,
               c.is_nullable = 'YES'
        FROM information_schema.columns c
        JOIN information_schema.tables t USING (table_catalog, table_schema, table_name)
        WHERE c.table_catalog = current_database() AND t.table_type = 'BASE TABLE'
          AND c.table_schema IN (SELECT unnest(?))
        ORDER BY 1, c.ordinal_position
        """,
        [list(EXPORT_SCHEMAS)],
    ).fetchall()
    tables: dict[str, list[tuple[str, str, bool]]] = {}
    for table, column, type_, nullable in rows:
        tables.setdefault(table, []).append((column, type_, nullable))
    layouts = []
    for table, cols in sorted(tables.items()):
        candidates = [c for c, t, nullable in cols if t in TIME_TYPES and not nullable]
        ranked = sorted(
            candidates,
            key=lambda c: (
                PREFERRED_TIME_COLUMNS.index(c) if c in PREFERRED_TIME_COLUMNS else 99,
                candidates.index(c),
            ),
        )
        time_column = ranked[0] if ranked else None
        names = {c for c, _, _ in cols}
        # A Hive partition named like a column would shadow it when read back (DuckDB replaces
        # the column with the path's value), so energy.monthly_energy is cut by year only.
        granularity: Granularity = "none"
        if time_column and "year" not in names:
            granularity = "year" if "month" in names else "month"
        layouts.append(
            TableLayout(
                name=table,
                columns=tuple((c, t) for c, t, _ in cols),
                time_column=time_column if granularity != "none" else None,
                granularity=granularity,
                timezone=timezone,
            )
        )
    return layouts


def fingerprints(
    conn: duckdb.DuckDBPyConnection, layout: TableLayout
) -> dict[str, tuple[tuple[int, ...], dict[str, Any]]]:
    """partition key -> (partition values, {rows, fingerprint}) for every non-empty partition.

    The fingerprint is the row count and the sum of the rows' hashes: independent of row order
    (DuckDB keeps none) and, unlike a XOR, not fooled by two identical rows cancelling out.
    """
    exprs = layout.partition_exprs()
    columns = [
        *(f"{e} AS p{i}" for i, e in enumerate(exprs)),
        "count(*) AS n",
        # HUGEINT: a sum of 64-bit hashes overflows BIGINT after a few rows.
        f"sum(hash({layout.column_list})::HUGEINT)::VARCHAR AS h",
    ]
    group = " GROUP BY ALL" if exprs else ""
    rows = conn.execute(f"SELECT {', '.join(columns)} FROM {layout.name}{group}").fetchall()
    out = {}
    for row in rows:
        values, n, h = tuple(int(v) for v in row[: len(exprs)]), int(row[-2]), row[-1]
        if n == 0:
            continue  # an empty unpartitioned table: no file
        out[layout.partition_key(values)] = (values, {"rows": n, "fingerprint": h})
    return out


def _read_manifest(out_dir: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (FileNotFoundError, ValueError):
        # No manifest (or a damaged one): every file is rewritten, which is always correct.
        return {"tables": {}}
    if manifest.get("format") != MANIFEST_FORMAT:
        return {"tables": {}}
    manifest.setdefault("tables", {})
    return manifest


def _write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    write_private_file(out_dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _file_for(out_dir: Path, table: str, key: str) -> Path:
    return out_dir / table / key / DATA_FILE if key else out_dir / table / DATA_FILE


def _copy_partition(
    conn: duckdb.DuckDBPyConnection, layout: TableLayout, values: tuple[int, ...], target: Path
) -> None:
    """COPY one partition to a temporary name beside the target, then rename it into place:
    a reader sees the old file or the new one, never half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not ending in .parquet, so a `**/*.parquet` glob never picks up a file being written.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    order = f" ORDER BY {_quote(layout.time_column)}" if layout.time_column else ""
    sql = (
        f"COPY (SELECT {layout.column_list} FROM {layout.name} "
        f"WHERE {layout.partition_filter(values)}{order}) "
        f"TO '{_sql_path(tmp)}' (FORMAT parquet, COMPRESSION zstd)"
    )
    try:
        conn.execute(sql)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _existing_files(out_dir: Path, table: str) -> Iterator[Path]:
    root = out_dir / table
    if root.is_dir():
        yield from root.rglob(DATA_FILE)


def _remove(path: Path, stop_at: Path) -> None:
    """Delete a file and the partition folders it leaves empty."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    parent = path.parent
    while parent != stop_at and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _clear_temp_files(out_dir: Path) -> None:
    # Left by a run that died mid-COPY; safe to delete because exports hold the lock below.
    for tmp in out_dir.rglob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def export_parquet(db_path: str | Path, out_dir: str | Path, timezone: str) -> ExportSummary:
    """Export every table of the enphase, envoy, energy and fleet vendor schemas under `out_dir`.

    DuckDB is opened read-only, one short connection per table, each in one transaction: a
    table's files are a consistent snapshot, and writers (which wait up to a minute for the
    file lock) get the database back between tables.
    """
    db_path, out_dir = Path(db_path), Path(out_dir)
    if not db_path.exists():
        raise FileNotFoundError(f"No DuckDB database at {db_path} (SOLAR_DUCKDB_PATH)")
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary(out_dir)
    # Two exports at once (the asset and the CLI) would rename over each other's files.
    with FileLock(str(out_dir / ".export.lock"), timeout=600):
        _clear_temp_files(out_dir)
        manifest = _read_manifest(out_dir)
        with connect(db_path, read_only=True) as conn:
            layouts = table_layouts(conn, timezone)
        for layout in layouts:
            manifest["tables"][layout.name] = _export_table(
                db_path, out_dir, layout, manifest, summary
            )
            manifest.update(format=MANIFEST_FORMAT, exported_at=datetime.now(UTC).isoformat())
            # After every table, so a crash keeps the work already done.
            _write_manifest(out_dir, manifest)
        summary.tables = len(layouts)
        current = {layout.name for layout in layouts}
        for gone in sorted(set(manifest["tables"]) - current):
            # A table dropped from the warehouse: its export goes too.
            shutil.rmtree(out_dir / gone, ignore_errors=True)
            summary.removed.append(gone)
            del manifest["tables"][gone]
        _write_manifest(out_dir, manifest)
    return summary


def _export_table(
    db_path: Path,
    out_dir: Path,
    layout: TableLayout,
    manifest: dict[str, Any],
    summary: ExportSummary,
) -> dict[str, Any]:
    before = manifest["tables"].get(layout.name, {})
    known = before.get("partitions", {}) if before.get("layout") == layout.signature else {}
    with connect(db_path, read_only=True) as conn:
        # One snapshot for the fingerprints and the copies: what the manifest says is in a
        # file is what was copied into it.
        conn.execute("BEGIN TRANSACTION")
        try:
            parts = fingerprints(conn, layout)
            for key, (values, fp) in sorted(parts.items()):
                target = _file_for(out_dir, layout.name, key)
                if known.get(key) == fp and target.exists():
                    summary.unchanged += 1
                    continue
                _copy_partition(conn, layout, values, target)
                summary.written.append(f"{layout.name}/{key}" if key else layout.name)
        finally:
            conn.execute("ROLLBACK")  # read-only: nothing to commit
    wanted = {_file_for(out_dir, layout.name, key) for key in parts}
    for path in sorted(_existing_files(out_dir, layout.name)):
        if path not in wanted:
            _remove(path, out_dir / layout.name)
            summary.removed.append(str(path.parent.relative_to(out_dir)))
    return {
        "layout": layout.signature,
        "time_column": layout.time_column,
        "granularity": layout.granularity,
        "partitions": {key: fp for key, (_, fp) in sorted(parts.items())},
    }
