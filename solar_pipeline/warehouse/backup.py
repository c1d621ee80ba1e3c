"""Consistent backups of the data directory, and restoring one into an empty data directory.

A backup is a new folder ``DIR/solar-backup-<UTC time>/`` (mode 0700) holding:

- ``solar.duckdb``: a copy made while the pipeline may be running. The source is opened
  read-only (through ``connect``, which waits for a writer to finish), a new database file is
  ATTACHed and ``COPY FROM DATABASE`` copies schemas, tables, sequences (their current values,
  so new raw ids continue where they were) and constraints, in one snapshot;
- the Enphase token file (when ENPHASE_TOKEN_STORE is ``file:``), the Envoy state files
  (``envoy_token.json``, ``envoy_cert_pin.json``) and the SMA token file (``sma_tokens.json``)
  when present;
- ``manifest.json``: file names, sizes, SHA-256, the time, and each table's row count.

Files are 0600: the token files are secrets. The folder is built under a ``.partial`` name and
renamed at the end, so a folder without that suffix is a complete backup.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from solar_pipeline.settings import Settings
from solar_pipeline.sources.enphase.token_pair import TokenStoreError
from solar_pipeline.sources.enphase.tokens import FileTokenStore
from solar_pipeline.sources.files import (
    PrivateFileError,
    fsync_path,
    private_dir,
    read_private_text,
    write_private_file,
)
from solar_pipeline.warehouse.db import connect, one_row

MANIFEST = "manifest.json"
DB_FILE = "solar.duckdb"
ENPHASE_TOKENS_FILE = "enphase_tokens.json"
# Other state under SOLAR_DATA_DIR, as its owners name it: the gateway's token and certificate
# pin (resources/envoy.py, sources/envoy/client.py) and the SMA app's default token store
# (sources/sma/oauth.py; a store set elsewhere with SMA_TOKEN_STORE is not included).
STATE_FILES = ("envoy_token.json", "envoy_cert_pin.json", "sma_tokens.json")
# The token files, what they hold (for messages), and whether they hold a rotating pair in the
# token store's format (kept copies of a pair that could not be written belong to them).
TOKEN_FILES = {
    ENPHASE_TOKENS_FILE: ("Enphase token pair", True),
    "sma_tokens.json": ("SMA token pair", True),
    "envoy_token.json": ("gateway owner token", False),
}
REAUTHORIZE = (
    "if the pipeline refreshed the Enphase tokens after this backup was made, its refresh "
    "token is spent: re-authorize with `solar-pipeline enphase-auth`"
)
BACKUP_PREFIX = "solar-backup-"
CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup cannot be made or restored; the message says why and what to do."""


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _table_counts(conn: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, int]:
    tables = conn.execute(
        """
        SELECT schema_name, table_name FROM duckdb_tables()
        WHERE database_name = ? AND NOT temporary ORDER BY ALL
        """,
        [catalog],
    ).fetchall()
    return {
        f"{s}.{t}": one_row(conn, f'SELECT count(*) FROM "{catalog}"."{s}"."{t}"')[0]
        for s, t in tables
    }


def _copy_database(source: Path, target: Path) -> dict[str, int]:
    """Copy the database into `target` and return the row count of every table, counted in
    the source and checked in the copy."""
    with connect(source, read_only=True) as conn:
        src = one_row(conn, "SELECT current_database()")[0]
        conn.execute(f"ATTACH {_sql_str(str(target))} AS solar_backup (READ_WRITE)")
        try:
            # Nothing can write the source meanwhile: our read-only open keeps writers out.
            counts = _table_counts(conn, src)
            conn.execute(f'COPY FROM DATABASE "{src}" TO solar_backup')
            copied = _table_counts(conn, "solar_backup")
            conn.execute("CHECKPOINT solar_backup")
        finally:
            conn.execute("DETACH solar_backup")
    if copied != counts:
        raise BackupError(f"The copy of {source} does not have the source's rows")
    return counts


def _state_files(settings: Settings) -> tuple[list[tuple[str, Path]], list[str]]:
    """(name in the backup, source path) of the state files present, and notes for the user."""
    files: list[tuple[str, Path]] = []
    notes: list[str] = []
    kind, _, rest = settings.enphase_token_store.partition(":")
    if kind == "file" and rest:
        files.append((ENPHASE_TOKENS_FILE, Path(rest)))
    elif kind == "k8s":
        namespace, _, name = rest.partition("/")
        notes.append(
            f"The Enphase tokens are in the Kubernetes Secret {namespace}/{name}, not in this "
            "backup. Back it up with kubectl (the file holds the tokens: keep it private):\n"
            f"  kubectl -n {namespace} get secret {name} -o yaml > enphase-token-secret.yaml"
        )
    for name in STATE_FILES:
        files.append((name, settings.data_dir / name))
    return [(n, p) for n, p in files if p.is_file()], notes


def _state_text(name: str, source: Path) -> str:
    """What to back up of one state file. Each is replaced atomically by its writer, so one
    read is a whole version; a token pair is taken as its store reads it, so a newer pair kept
    beside the file (it could not be written there) is the one backed up; a damaged one
    raises TokenStoreError."""
    if name in TOKEN_FILES and TOKEN_FILES[name][1]:
        pair = FileTokenStore(source).read()
        if pair is not None:
            return pair.to_json()
    return source.read_text()


def backup(settings: Settings, to_dir: str | Path) -> BackupResult:
    """Make a new backup folder under `to_dir` and return its path and manifest."""
    if not settings.duckdb_path.is_file():
        raise BackupError(f"No DuckDB database at {settings.duckdb_path} to back up")
    to_dir = Path(to_dir)
    to_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    final = to_dir / f"{BACKUP_PREFIX}{created.strftime('%Y%m%dT%H%M%SZ')}"
    if final.exists():
        final = final.with_name(f"{final.name}-{uuid.uuid4().hex[:6]}")
    partial = final.with_name(final.name + ".partial")
    # 0700 from the start (not chmod afterwards): the token copies are never readable by others.
    partial.mkdir(mode=0o700)
    try:
        try:
            counts = _copy_database(settings.duckdb_path, partial / DB_FILE)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            raise BackupError(
                f"{settings.duckdb_path} stayed locked by a writer for a minute ({exc}); try again"
            ) from None
        for leftover in partial.glob(f"{DB_FILE}.wal"):
            leftover.unlink()  # checkpointed above: an empty WAL
        os.chmod(partial / DB_FILE, 0o600)
        state, notes = _state_files(settings)
        for name, source in state:
            try:
                text = _state_text(name, source)
            except TokenStoreError as exc:  # the database is worth backing up all the same
                notes.append(f"{name} was not backed up: {exc}")
                continue
            write_private_file(partial / name, text)
        files = []
        for path in sorted(p for p in partial.iterdir() if p.is_file()):
            fsync_path(path)
            files.append(
                {"name": path.name, "size": path.stat().st_size, "sha256": sha256_of(path)}
            )
        manifest = {
            "format": 1,
            "created_at": created.isoformat(),
            "host": socket.gethostname(),
            "duckdb_version": duckdb.__version__,
            "source": {
                "data_dir": str(settings.data_dir),
                "duckdb_path": str(settings.duckdb_path),
                "enphase_token_store": settings.enphase_token_store,
            },
            "files": files,
            "tables": counts,
        }
        write_private_file(partial / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        os.replace(partial, final)
        fsync_path(to_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return BackupResult(final, manifest, notes)


def find_backup(path: str | Path) -> Path:
    """The backup folder itself (holding manifest.json); a folder of backups is refused with
    the newest one named, rather than guessing which one the user meant."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    candidates = sorted(
        p for p in path.glob(f"{BACKUP_PREFIX}*") if p.is_dir() and (p / MANIFEST).is_file()
    )
    if candidates:
        raise BackupError(
            f"{path} holds {len(candidates)} backups; pass one of them, e.g. the newest: "
            f"--from {candidates[-1]}"
        )
    raise BackupError(f"{path} is not a backup folder (no {MANIFEST})")


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        names = [f["name"] for f in files]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{folder / MANIFEST} is damaged ({exc})") from None
    if DB_FILE not in names:
        raise BackupError(f"{folder} has no {DB_FILE}")
    for name in names:
        # Names go straight into target paths: nothing may point outside the data dir.
        if Path(name).name != name or name.startswith("."):
            raise BackupError(f"{folder / MANIFEST} names an unexpected file {name!r}")
    return manifest


def _targets(settings: Settings, manifest: dict[str, Any]) -> tuple[dict[str, Path], list[str]]:
    """Where each backed-up file goes under the current settings, and notes for the user."""
    targets: dict[str, Path] = {}
    notes: list[str] = []
    for entry in manifest["files"]:
        name = entry["name"]
        if name == DB_FILE:
            targets[name] = settings.duckdb_path
        elif name == ENPHASE_TOKENS_FILE:
            kind, _, rest = settings.enphase_token_store.partition(":")
            if kind == "file" and rest:
                targets[name] = Path(rest)
            else:
                notes.append(
                    f"ENPHASE_TOKEN_STORE is {settings.enphase_token_store}: the backed-up "
                    "token file was not restored (put its pair into that store, or run "
                    "`solar-pipeline enphase-auth`)."
                )
        else:
            targets[name] = settings.data_dir / name
    source_store = manifest.get("source", {}).get("enphase_token_store", "")
    if source_store.startswith("k8s:"):
        notes.append(
            f"The backup's Enphase tokens were in the Kubernetes Secret {source_store[4:]}: "
            "restore it with `kubectl apply -f enphase-token-secret.yaml` if it is gone."
        )
    return targets, notes


def _verify(folder: Path, manifest: dict[str, Any]) -> None:
    for entry in manifest["files"]:
        path = folder / entry["name"]
        if not path.is_file():
            raise BackupError(f"{path} is missing from the backup")
        if path.stat().st_size != entry["size"] or sha256_of(path) != entry["sha256"]:
            raise BackupError(
                f"{path} does not match its SHA-256 in {MANIFEST}: the backup is damaged; "
                "nothing was restored"
            )


def _copy_private(source: Path, target: Path, expected_sha256: str) -> None:
    """Copy to a temporary 0600 file beside the target, check the copy's hash, rename."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected_sha256:
            raise BackupError(f"{source} changed while it was being restored")
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _occupied(settings: Settings) -> list[Path]:
    found = sorted(settings.data_dir.iterdir()) if settings.data_dir.is_dir() else []
    if settings.duckdb_path.exists() and settings.duckdb_path not in found:
        found.append(settings.duckdb_path)
    return found


def _when(epoch: int) -> str:
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):  # a damaged file's number, not a date
        return f"{epoch} (Unix seconds)"


def _obtained_at(text: str) -> int | None:
    with contextlib.suppress(ValueError, TypeError, AttributeError, RecursionError):
        value = json.loads(text).get("obtained_at")
        if type(value) is int:
            return value
    return None


def _current_age(name: str, target: Path) -> int | str | None:
    """When the current token file's token was obtained; None when there is none, "damaged"
    when it cannot be read as one (a restore then puts the backup's in its place)."""
    if TOKEN_FILES[name][1]:
        try:
            pair = FileTokenStore(target).read()  # with a newer copy kept elsewhere, if any
        except TokenStoreError:
            return "damaged"
        return None if pair is None else pair.obtained_at
    try:
        text = read_private_text(target, "token file")
    except PrivateFileError:
        return "damaged"
    if text is None:
        return None
    return _obtained_at(text) or "damaged"


def _restore_token(
    name: str, source: Path, target: Path, sha256: str, overwrite: bool
) -> tuple[bool, str]:
    """Restore one token file unless the current one is newer (or as new): a rotated refresh
    token in a backup is spent once the pipeline has refreshed after it. Returns whether the
    backup's was restored and what to tell the user."""
    what, is_pair = TOKEN_FILES[name]
    store = FileTokenStore(target)
    advice = f"; {REAUTHORIZE}" if name == ENPHASE_TOKENS_FILE else ""
    backup_age = _obtained_at(source.read_text())
    # Under the store's lock: a run refreshing meanwhile must not be overwritten half-way.
    with store.lock():
        current = _current_age(name, target)
        if current is None:
            note = f"Restored the {what} from the backup{advice}."
        elif isinstance(current, str):  # "damaged"
            note = f"Replaced the damaged {what} {target} with the backup's{advice}."
        elif backup_age is not None and backup_age > current:
            note = (
                f"Restored the {what} of {_when(backup_age)} from the backup: it is newer than "
                f"the current one ({_when(current)})."
            )
        elif overwrite:
            note = (
                f"Replaced the newer {what} (obtained {_when(current)}) with the backup's, as "
                f"--overwrite-tokens asked{advice}."
            )
        else:
            backed = f" ({_when(backup_age)})" if backup_age is not None else ""
            return False, (
                f"Kept the current {what} in {target} (obtained {_when(current)}): it is at "
                f"least as new as the backup's{backed}. Pass --overwrite-tokens to restore the "
                "backup's instead."
            )
        try:
            _copy_private(source, store.target(), sha256)
        except (OSError, TokenStoreError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise BackupError(
                f"The {what} could not be restored to {target} ({reason}); a directory there "
                f"must be removed first (`rmdir {target}`). Nothing else was changed."
                if target.is_dir()
                else f"The {what} could not be restored to {target} ({reason})"
            ) from None
        if is_pair:
            store.discard_rescued()  # a kept copy of the replaced pair would win on read
    return True, note


def restore(
    settings: Settings,
    from_dir: str | Path,
    force: bool = False,
    *,
    tokens_only: bool = False,
    overwrite_tokens: bool = False,
) -> BackupResult:
    """Restore a backup into settings.data_dir (and settings.duckdb_path).

    The data directory must be empty or missing unless `force`; every file is checked against
    its SHA-256 before anything is written. A token file is restored only when the backup's is
    newer than the current one (or the current one is missing or damaged), unless
    `overwrite_tokens`. `tokens_only` restores just the token files, into a data directory in
    use.
    """
    folder = find_backup(from_dir)
    manifest = _read_manifest(folder)
    occupied = _occupied(settings)
    if occupied and not force and not tokens_only:
        raise BackupError(
            f"{settings.data_dir} is not empty ({', '.join(p.name for p in occupied[:5])}"
            f"{', ...' if len(occupied) > 5 else ''}): restore into an empty or new "
            "SOLAR_DATA_DIR, or pass --force to overwrite the files the backup holds "
            "(stop the pipeline first), or --tokens-only to restore only the token files"
        )
    _verify(folder, manifest)
    targets, notes = _targets(settings, manifest)
    if tokens_only:
        targets = {name: t for name, t in targets.items() if name in TOKEN_FILES}
        if not targets:
            raise BackupError(f"{folder} holds no token file to restore here")
    if force and not tokens_only and settings.duckdb_path.exists():
        # Replacing the file under a process that has it open would lose that process's
        # writes; a read-write open succeeds only when nobody else holds the database.
        try:
            with connect(settings.duckdb_path, read_only=False):
                pass
        except duckdb.IOException as exc:
            raise BackupError(
                f"{settings.duckdb_path} is in use by another process ({exc}); stop the "
                "pipeline and close other connections, then restore again"
            ) from None
    # Created 0700; an existing (empty) directory the owner prepared keeps its mode: the
    # restored files are 0600 themselves.
    private_dir(settings.data_dir)
    by_name = {e["name"]: e for e in manifest["files"]}
    for name, target in targets.items():
        sha256 = by_name[name]["sha256"]
        if name in TOKEN_FILES:
            _, note = _restore_token(name, folder / name, target, sha256, overwrite_tokens)
            notes.append(note)
            continue
        _copy_private(folder / name, target, sha256)
        if name == DB_FILE:
            # A WAL left by the replaced database would be replayed onto the restored one.
            with contextlib.suppress(FileNotFoundError):
                target.with_name(target.name + ".wal").unlink()
    for parent in {t.parent for t in targets.values()}:
        fsync_path(parent)
    return BackupResult(folder, manifest, notes)
