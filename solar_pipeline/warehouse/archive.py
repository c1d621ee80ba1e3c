"""Raw-response compaction: old raw rows -> zstd Parquet files, and back on demand.

The raw tables keep every API answer verbatim, bodies included, so they are most of the
database. Rows fetched more than SOLAR_RAW_RETENTION_DAYS ago are moved to::

    SOLAR_DATA_DIR/archive/raw/<table>/year=YYYY/month=MM/part-<utc time>-<random>.parquet

(months of the site's time zone, like the daily partitions). A row leaves DuckDB only after
the file holding it has been written, synced, read back and compared row by row (id and a hash
of every column but the parser's verdict, parse_error), and the delete runs in the same
transaction as that check: whatever fails, no row exists nowhere. `raw-restore` puts a date
range back (skipping ids already present), so a re-parse can read it; the files are never
deleted.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from solar_pipeline.settings import days_setting
from solar_pipeline.sources.files import fsync_path
from solar_pipeline.warehouse.db import connect, one_row

RAW_TABLES = ("raw.enphase_responses", "raw.envoy_responses")
RETENTION_ENV = "SOLAR_RAW_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 90

# Rows a parser has not read yet are never archived, however old: the parser would never see
# them. These are the watermark consumers of solar_pipeline/assets (envoy/ingest.py for the
# gateway, enphase/snapshots.py for the cloud snapshots; the cloud telemetry is parsed by
# partition from raw and needs no guard). A consumer that never ran has watermark 0.
_UNPARSED_GUARD = {
    "raw.envoy_responses": (
        "id <= coalesce((SELECT max(last_raw_id) FROM ops.parse_watermarks "
        "WHERE consumer = 'envoy.readings'), 0)"
    ),
    "raw.enphase_responses": (
        "(endpoint NOT IN ('summary', 'events', 'alarms', 'open_events', 'open_alarms') "
        "OR id <= coalesce(("
        "SELECT max(w.last_raw_id) FROM ops.parse_watermarks w WHERE w.consumer = "
        "CASE endpoint WHEN 'summary' THEN 'enphase.system_summary' "
        "WHEN 'open_events' THEN 'enphase.events' WHEN 'open_alarms' THEN 'enphase.alarms' "
        "ELSE 'enphase.' || endpoint END), 0))"
    ),
}


_VERDICT = '"parse_error"'


class ArchiveVerificationError(RuntimeError):
    """The archive file does not hold exactly the rows about to be deleted."""


def retention_days_from_env() -> int:
    """SOLAR_RAW_RETENTION_DAYS (default 90): raw rows older than this many days are archived."""
    return days_setting(RETENTION_ENV, DEFAULT_RETENTION_DAYS)


def archive_root(data_dir: str | Path) -> Path:
    return Path(data_dir) / "archive" / "raw"


def _short(table: str) -> str:
    return table.split(".", 1)[1]


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _files_sql(files: list[Path]) -> str:
    # Hive detection off: the year/month folders must not add columns to the rows.
    listed = ", ".join(_sql_str(str(f)) for f in files)
    return f"read_parquet([{listed}], hive_partitioning = false, union_by_name = true)"


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".", 1)
    rows = conn.execute(
        """
        SELECT column_name FROM information_schema.columns
        WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?
        ORDER BY ordinal_position
        """,
        [schema, name],
    ).fetchall()
    return [f'"{r[0]}"' for r in rows]


@dataclass
class ArchiveSummary:
    root: Path
    cutoff: datetime
    rows: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        moved = ", ".join(f"{t}: {n} rows" for t, n in self.rows.items())
        return (
            f"Archived raw rows fetched before {self.cutoff.isoformat()} to {self.root} "
            f"({moved}; {len(self.files)} files written)."
        )


def archive_raw(
    db_path: str | Path,
    data_dir: str | Path,
    older_than_days: int,
    timezone: str,
    now: datetime | None = None,
) -> ArchiveSummary:
    """Move raw rows fetched more than `older_than_days` ago into Parquet files, month by month.

    One short read-write connection per (table, month), so the pipeline's writers get the
    database in between; a CHECKPOINT at the end lets DuckDB reuse the freed blocks.
    """
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    root = archive_root(data_dir)
    summary = ArchiveSummary(root, cutoff)
    local = f"timezone({_sql_str(timezone)}, fetched_at)"
    for table in RAW_TABLES:
        summary.rows[table] = 0
        with connect(db_path) as conn:
            months = conn.execute(
                f"""
                SELECT DISTINCT year({local}), month({local}) FROM {table}
                WHERE fetched_at < ? AND {_UNPARSED_GUARD[table]} ORDER BY ALL
                """,
                [cutoff],
            ).fetchall()
        for year, month in months:
            with connect(db_path) as conn:
                rows, written = _archive_month(conn, table, root, year, month, cutoff, local)
            summary.rows[table] += rows
            if written:
                summary.files.append(written)
    if any(summary.rows.values()):
        with connect(db_path) as conn:
            conn.execute("CHECKPOINT")
    return summary


def _archive_month(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    root: Path,
    year: int,
    month: int,
    cutoff: datetime,
    local: str,
) -> tuple[int, Path | None]:
    """Archive one month of one table; returns (rows removed from DuckDB, file written)."""
    month_dir = root / _short(table) / f"year={year:04d}" / f"month={month:02d}"
    earlier = sorted(month_dir.glob("part-*.parquet")) if month_dir.is_dir() else []
    columns = _columns(conn, table)
    cols = ", ".join(columns)
    # parse_error is the parser's verdict on the answer, not part of it: a re-parse may change
    # it, and files written before the column existed do not have it.
    row_hash = f"hash({', '.join(c for c in columns if c != _VERDICT)})"
    written: Path | None = None
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _archive AS
            SELECT *, {row_hash} AS _h FROM {table}
            WHERE fetched_at < ? AND {_UNPARSED_GUARD[table]}
              AND year({local}) = {int(year)} AND month({local}) = {int(month)}
            """,
            [cutoff],
        )
        # Rows restored earlier are already in a file, identical: they are not written twice.
        known = (
            f"SELECT id, {row_hash} AS _h FROM {_files_sql(earlier)}"
            if earlier
            else "SELECT NULL::BIGINT AS id, NULL::UBIGINT AS _h WHERE false"
        )
        conn.execute(f"CREATE OR REPLACE TEMP TABLE _known AS {known}")
        new = (
            "SELECT * FROM _archive a WHERE NOT EXISTS (SELECT 1 FROM _known k "
            "WHERE k.id = a.id AND k._h = a._h)"
        )
        n_new = one_row(conn, f"SELECT count(*) FROM ({new})")[0]
        if n_new:
            written = _write_part(conn, month_dir, f"SELECT {cols} FROM ({new}) ORDER BY id")
            _verify_file(conn, written, row_hash, new)
        _verify_all_archived(conn, month_dir, row_hash)
        n_rows = one_row(conn, "SELECT count(*) FROM _archive")[0]
        deleted = one_row(conn, f"DELETE FROM {table} WHERE id IN (SELECT id FROM _archive)")[0]
        if deleted != n_rows:
            raise ArchiveVerificationError(
                f"{table} {year}-{month:02d}: {deleted} rows matched the delete, "
                f"{n_rows} were archived"
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        if written is not None:
            # The rows stay in DuckDB; a file of them would only be a duplicate.
            with contextlib.suppress(FileNotFoundError):
                written.unlink()
        raise
    finally:
        with contextlib.suppress(duckdb.Error):
            conn.execute("DROP TABLE IF EXISTS _archive; DROP TABLE IF EXISTS _known")
    return n_rows, written


def _write_part(conn: duckdb.DuckDBPyConnection, month_dir: Path, select: str) -> Path:
    """COPY to a temporary name, fsync, rename: a part file is either whole or absent."""
    month_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    final = month_dir / f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = month_dir / f".{final.name}.tmp"
    try:
        conn.execute(f"COPY ({select}) TO {_sql_str(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
        fsync_path(tmp)
        os.replace(tmp, final)
        fsync_path(month_dir)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return final


def _verify_file(conn: duckdb.DuckDBPyConnection, path: Path, row_hash: str, new: str) -> None:
    """The file, read back from disk, holds exactly the rows meant for it: same count, same
    ids, same content (a hash of every column, compared per id)."""
    diff = conn.execute(
        f"""
        SELECT
          (SELECT count(*) FROM {_files_sql([path])}),
          (SELECT count(*) FROM ({new})),
          (SELECT count(*) FROM (
             (SELECT id, {row_hash} FROM {_files_sql([path])} EXCEPT ALL SELECT id, _h FROM ({new}))
             UNION ALL
             (SELECT id, _h FROM ({new}) EXCEPT ALL SELECT id, {row_hash} FROM {_files_sql([path])})
          ))
        """
    ).fetchone()
    assert diff is not None  # an aggregate: always one row
    if diff[0] != diff[1] or diff[2]:
        raise ArchiveVerificationError(
            f"{path} holds {diff[0]} rows, {diff[1]} were written, {diff[2]} differ: "
            "nothing was deleted"
        )


def _verify_all_archived(conn: duckdb.DuckDBPyConnection, month_dir: Path, row_hash: str) -> None:
    """Every row about to be deleted is, identical, in some file of the month on disk."""
    files = sorted(month_dir.glob("part-*.parquet")) if month_dir.is_dir() else []
    n = one_row(conn, "SELECT count(*) FROM _archive")[0]
    if not n:
        return
    if not files:
        raise ArchiveVerificationError(f"No archive file in {month_dir}: nothing was deleted")
    missing = one_row(
        conn,
        f"""
        SELECT count(*) FROM _archive a WHERE NOT EXISTS (
          SELECT 1 FROM (SELECT id, {row_hash} AS _h FROM {_files_sql(files)}) f
          WHERE f.id = a.id AND f._h = a._h)
        """,
    )[0]
    if missing:
        raise ArchiveVerificationError(
            f"{missing} rows are not in the files of {month_dir}: nothing was deleted"
        )


@dataclass
class RestoreSummary:
    first: date
    last: date
    found: dict[str, int] = field(default_factory=dict)
    inserted: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        parts = ", ".join(
            f"{t}: {self.inserted[t]} restored ({self.found[t] - self.inserted[t]} already present)"
            for t in self.found
        )
        return f"Raw rows of {self.first}..{self.last}: {parts}."


def restore_raw(
    db_path: str | Path, data_dir: str | Path, first: date, last: date, timezone: str
) -> RestoreSummary:
    """Insert the archived rows of the local days first..last back into the raw tables.

    Envoy rows are picked by fetch time. Cloud rows are picked by fetch time or by the period
    they cover (a backfill fetches old days later, and the cloud assets look answers up by the
    period covered). Ids already present are skipped, so restoring twice changes nothing.
    """
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    tz = ZoneInfo(timezone)
    start = datetime.combine(first, time(), tz)
    end = datetime.combine(last + timedelta(days=1), time(), tz)
    root = archive_root(data_dir)
    summary = RestoreSummary(first, last)
    for table in RAW_TABLES:
        folder = root / _short(table)
        files = sorted(folder.rglob("part-*.parquet")) if folder.is_dir() else []
        summary.found[table] = summary.inserted[table] = 0
        if not files:
            continue
        where = "fetched_at >= $start AND fetched_at < $end"
        if table == "raw.enphase_responses":
            where = f"({where}) OR (covers_start < $end AND covers_end > $start)"
        with connect(db_path) as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                conn.execute(
                    f"""
                    CREATE OR REPLACE TEMP TABLE _restore AS
                    SELECT * FROM {_files_sql(files)} WHERE {where}
                    -- A row archived, restored and archived again may be in two files.
                    QUALIFY row_number() OVER (PARTITION BY id ORDER BY fetched_at) = 1
                    """,
                    {"start": start, "end": end},
                )
                found = one_row(conn, "SELECT count(*) FROM _restore")[0]
                inserted = one_row(
                    conn,
                    f"""
                    INSERT INTO {table} BY NAME
                    SELECT * FROM _restore WHERE id NOT IN (SELECT id FROM {table})
                    """,
                )[0]
                conn.execute("DROP TABLE _restore")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        summary.found[table], summary.inserted[table] = int(found), int(inserted)
    return summary
