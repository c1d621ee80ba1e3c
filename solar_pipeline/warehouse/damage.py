"""A DuckDB file that cannot be read (cut short by a full disk or a copy that did not finish,
overwritten, a block that no longer matches its checksum, a corrupt write-ahead log): an
error that names the file and says how to restore the newest backup, instead of DuckDB's
bare message deep in a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

# DuckDB's words for each kind of damage (lower case).
_DAMAGE = (
    "could not read enough bytes from file",  # the file ends before a block it needs
    "not a valid duckdb database file",  # overwritten, or not a DuckDB file at all
    "corrupt database file",  # a block's checksum does not match
)
_WAL = "failure while replaying wal file"
_QUOTED_PATH = re.compile(r'file "([^"]+)"')


class DamagedDatabaseError(RuntimeError):
    """The DuckDB file (or its write-ahead log) is damaged; the message says what to do."""


def _same_file(named: str, path: Path) -> bool:
    try:
        return Path(named).resolve() == path.resolve()
    except OSError:
        return False


def damage_error(path: Path, exc: duckdb.Error) -> DamagedDatabaseError | None:
    """The error to raise instead of `exc` when `exc` says the database at `path` is damaged;
    None when it is about something else (a lock, a query, a damaged Parquet archive file)."""
    path = path.absolute()  # the commands below work from any directory
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    named = _QUOTED_PATH.search(text)
    wal = Path(f"{path}.wal")
    restore = (
        "restore the newest backup (a folder that `solar-pipeline backup --to DIR` made):\n"
        f"  mv {path} {path}.damaged\n"
        "  solar-pipeline restore --from DIR/solar-backup-<time> --force\n"
    )
    if _WAL in low and (named is None or _same_file(named[1], wal)):
        return DamagedDatabaseError(
            f"The write-ahead log {wal} of the DuckDB database {path} is damaged ({text}).\n"
            "Stop the pipeline, then either move the log aside, which opens the database as "
            "of its last checkpoint (the writes since are lost: run the last days again):\n"
            f"  mv {wal} {wal}.damaged\n"
            f"or {restore}"
        )
    if not any(words in low for words in _DAMAGE):
        return None
    if named is not None and not _same_file(named[1], path):
        return None
    log = f" and its log ({wal})" if wal.exists() else ""
    return DamagedDatabaseError(
        f"The DuckDB database {path} is damaged ({text}): cut short (a full disk, a crash, a "
        "copy that did not finish) or corrupted on disk.\n"
        f"Stop the pipeline, keep the damaged file aside and {restore}"
        f"Without a backup, move it{log} aside all the same: the next run starts a new, empty "
        "database (backfill the cloud days again; the gateway's past readings are lost)."
    )
