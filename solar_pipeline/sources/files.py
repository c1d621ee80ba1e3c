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
    never a torn one; then fsync the directory so the rename itself is durable. A symbolic
    link is written through (see follow_link), not replaced by a plain file."""
    path = follow_link(path)
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


class PrivateFileError(RuntimeError):
    """A private file that cannot be used as it is; the message names it and what to do, and
    never carries its contents. `replaceable`: the fix is to clear it away and make it anew."""

    def __init__(self, message: str, replaceable: bool = False) -> None:
        super().__init__(message)
        self.replaceable = replaceable


# Token files are a few kilobytes; anything much larger is not one, and is not read whole.
MAX_PRIVATE_FILE_BYTES = 1 << 20
_warned_open: set[Path] = set()


def follow_link(path: Path) -> Path:
    """The file to write when `path` may be a symbolic link: its target, written in place
    (atomically, in the target's own directory) so the link stays what its owner made it.

    Only a link we (or root) own is followed: in a directory others can write to, a link
    planted by another user would otherwise make us overwrite whatever it points at.
    """
    if not path.is_symlink():
        return path
    owner = path.lstat().st_uid
    if owner not in (os.geteuid(), 0):
        raise PrivateFileError(
            f"{path} is a symbolic link owned by another user (uid {owner}): refusing to write "
            f"through it. Replace it with a file of your own (`rm {path}`, then restore or "
            "re-create the file), or point the setting at the file itself."
        )
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise PrivateFileError(f"{path} is a symbolic link to the directory {target}, not a file")
    return target


def open_mode_warning(path: Path) -> str | None:
    """What to say when users other than the owner may read `path` (with the command that
    fixes it); None when it is private or gone."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return (
        f"{path} can be read by other users (mode {mode:04o}) and it holds secrets: "
        f"run `chmod 600 {path}`"
    )


def warn_if_open(path: Path, log_it: bool = True) -> str | None:
    """open_mode_warning, logged once per file and process (runs read their stores often);
    `log_it=False` for a caller that shows it itself (it is then not logged later either)."""
    warning = open_mode_warning(path)
    if warning and path not in _warned_open:
        _warned_open.add(path)
        if log_it:
            log.warning(warning)
    return warning


def read_private_text(path: Path, what: str) -> str | None:
    """The text of a private file (None when it does not exist), warning when others can read
    it. A directory in its place, an unreadable or an oversized file raise PrivateFileError
    naming `path`; `what` says what the file is for the message."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PRIVATE_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise PrivateFileError(
            f"{path} is a directory, not the {what} (a container bind mount of a file that did "
            f"not exist yet creates a directory): remove it (`rmdir {path}`; look inside first "
            "if it is not empty)",
            replaceable=True,
        ) from None
    except OSError as exc:
        raise PrivateFileError(f"the {what} {path} cannot be read ({exc.strerror})") from None
    warn_if_open(path)
    if len(data) > MAX_PRIVATE_FILE_BYTES:
        raise damaged(path, what, "far too large")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise damaged(path, what, "not text") from None


def damaged(path: Path, what: str, reason: str) -> PrivateFileError:
    """The error for a file whose contents are not what they should be. The contents are never
    quoted: they may be half a token."""
    return PrivateFileError(
        f"{path} is damaged: it is not the {what} ({reason}; its contents are not shown, they "
        f"may hold secrets). Move it aside (`mv {path} {path}.damaged`)",
        replaceable=True,
    )
