"""Private state: the data directory (created 0700) and the token and certificate-pin files in it
(mode 0600, replaced atomically)."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)


def private_dir(path: Path) -> Path:
    """Create `path` if needed, mode 0700 (missing parents get the ordinary mode, as
    `mkdir -p` gives them).

    The data directory holds the DuckDB file with every raw response and the token stores; on a
    shared host (a Pi with other users, a node with other pods) nobody else should read it.
    A directory that already exists keeps its mode: it may be a home directory, a web root or
    a volume someone else set up, and tightening it would lock its other readers out. The
    secrets written into it protect themselves (token and pin files are 0600, the DuckDB file
    the project creates too).
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def open_to_others(path: Path) -> bool:
    """Whether users other than the owner (and its group) can enter `path`."""
    return bool(stat.S_IMODE(path.stat().st_mode) & 0o001)


# A temp file this old belongs to a writer that died (kill -9, power cut) before its rename;
# a live writer renames within milliseconds.
STALE_TEMP_S = 3600.0


def _remove_stale_temp_files(path: Path) -> None:
    """Leftovers of writers that died mid-write: they may hold a token that was never used, and
    nothing else would ever remove them."""
    now = time.time()
    for tmp in path.parent.glob(f".{path.name}-*"):
        with contextlib.suppress(FileNotFoundError):
            if now - tmp.stat().st_mtime > STALE_TEMP_S:
                tmp.unlink()


def write_private_file(path: Path, text: str) -> None:
    """Write via a temp file + fsync + rename, so a crash leaves the old or the new file,
    never a torn one; then fsync the directory so the rename itself is durable."""
    private_dir(path.parent)
    _remove_stale_temp_files(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_path(path.parent)


def fsync_path(path: Path) -> None:
    """fsync a file or a directory by path (a directory's fsync makes renames in it durable)."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
