"""The token pair in a JSON file (mode 0600), written so that a rotated refresh token is never
lost.

Enphase spends the old refresh token the moment it answers a refresh, so the answer must land
somewhere. Before the refresh is sent, `reserve()` creates the temporary file the new pair will
be written to, in the store's own directory, and allocates room for it: a read-only or
immutable directory, a full disk or a directory where the file should be fail there, with
nothing sent. After the answer, the pair is written into that file and renamed over the store.
If that still fails (the directory became read-only meanwhile, an I/O error), the pair is kept
rather than dropped, in this order:

1. the temporary file itself, when the pair is in it and only the rename failed;
2. a new file beside it in the store's directory;
3. `$XDG_STATE_HOME/solar-pipeline/rescued-tokens/` (default `~/.local/state/...`).

`read()` returns the newest complete pair among the store and those places, so the next run
uses it, and the next successful write moves it into the store and removes the copies.

A symbolic link at the store's path is followed (see files.follow_link): the target is
replaced atomically in its own directory and the link stays.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from solar_pipeline.sources.enphase.errors import STORE_REMEDY
from solar_pipeline.sources.enphase.token_pair import TokenPair, TokenStoreError
from solar_pipeline.sources.files import (
    STALE_TEMP_S,
    PrivateFileError,
    damaged,
    follow_link,
    fsync_path,
    private_dir,
    read_private_text,
    warn_if_open,
    write_private_file,
)

log = logging.getLogger(__name__)

# Room allocated before a refresh is sent; a pair is a few kilobytes (two JWTs).
RESERVE_BYTES = 64 * 1024
WHAT = "token file"


def rescue_dir() -> Path:
    """Where a pair goes when the store's own directory cannot take it: outside the data
    directory on purpose (a full or read-only data volume is the usual cause)."""
    state = os.environ.get("XDG_STATE_HOME", "").strip()
    if not state:
        try:
            state = str(Path.home() / ".local" / "state")
        except (RuntimeError, KeyError):  # no HOME and no passwd entry (an arbitrary uid)
            state = str(Path(tempfile.gettempdir()) / f"solar-pipeline-{os.geteuid()}")
    return Path(state) / "solar-pipeline" / "rescued-tokens"


def rescue_file(name: str, key: str) -> Path:
    """The rescue file of one store (`key` tells stores with the same file name apart)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return rescue_dir() / f"{name}.{digest}.json"


def read_rescued(path: Path) -> TokenPair | None:
    """A complete pair in `path`, or None (missing, a reservation's placeholder, a torn
    write): rescue copies are read best-effort, never trusted to be whole."""
    try:
        with open(path, "rb") as f:
            return TokenPair.from_json(f.read(RESERVE_BYTES * 2).decode())
    except (OSError, ValueError):
        return None


def _preallocate(fd: int, size: int) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        os.pwrite(fd, b"\0" * size, 0)  # a filesystem without fallocate: write the room


def _pwrite_all(fd: int, data: bytes) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], done)


class Reservation:
    """The temporary file a new pair will be written to; made before the request is sent."""

    def __init__(self, store: FileTokenStore, target: Path) -> None:
        self.store, self.target = store, target
        self.kept = False
        try:
            private_dir(target.parent)
            self.fd, name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
        except OSError as exc:
            raise TokenStoreError(store.unwritable(target, exc)) from None
        self.tmp = Path(name)
        try:
            os.fchmod(self.fd, 0o600)
            _preallocate(self.fd, RESERVE_BYTES)
            os.fsync(self.fd)
        except OSError as exc:
            self.close()
            raise TokenStoreError(store.unwritable(target, exc)) from None

    def commit(self, pair: TokenPair) -> None:
        """Write `pair` into the reserved file and rename it over the store; on failure keep
        the pair (see the module docstring) and raise TokenStoreError saying where."""
        data = pair.to_json().encode()
        written = False
        try:
            _pwrite_all(self.fd, data)
            os.ftruncate(self.fd, len(data))
            os.fsync(self.fd)
            written = True
            os.replace(self.tmp, self.target)
        except OSError as exc:
            self.kept = written
            where = self.tmp if written else self.store.rescue(self.target, pair)
            raise TokenStoreError(self.store.not_stored(self.target, exc, where)) from None
        finally:
            os.close(self.fd)
            self.fd = -1
        self.kept = True  # renamed: nothing left to remove
        try:
            fsync_path(self.target.parent)
        except OSError as exc:  # the file is in place; only its durability is in doubt
            log.warning("fsync of %s failed (%s)", self.target.parent, exc.strerror)
        self.store.forget_rescued(self.target, pair)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if not self.kept:
            with contextlib.suppress(OSError):
                self.tmp.unlink()


class FileTokenStore:
    """A JSON file (mode 0600) replaced atomically; a sibling .lock file serialises refreshes.

    `remedy` finishes the message for a damaged store: what gets a pair back once the bad file
    is out of the way (re-authorizing for Enphase, nothing but a new run for SMA).
    """

    def __init__(
        self, path: str | Path, lock_timeout_s: float = 300, remedy: str | None = None
    ) -> None:
        self.path = Path(path)
        self.remedy = remedy or STORE_REMEDY
        # 0600 like everything else in the data directory (it holds no secret, but others
        # have no business taking it).
        self._lock = FileLock(str(self.path) + ".lock", timeout=lock_timeout_s, mode=0o600)

    def describe(self) -> str:
        return f"file:{self.path}"

    def target(self) -> Path:
        """The file actually written: the store's path, or the target of a link there."""
        try:
            return follow_link(self.path)
        except PrivateFileError as exc:
            raise TokenStoreError(str(exc)) from None

    # --- reading -----------------------------------------------------------------------------

    def read(self) -> TokenPair | None:
        target = self.target()
        try:
            stored = self._read_store(target)
            problem = None
        except TokenStoreError as exc:
            stored, problem = None, exc
        newest = stored
        for _, pair in self._rescued(target):
            if newest is None or pair.obtained_at >= newest.obtained_at:
                newest = pair
        if problem is not None:
            if newest is None:
                raise problem
            log.warning("%s; meanwhile the newer pair kept elsewhere is used", problem)
        return newest

    def _read_store(self, target: Path) -> TokenPair | None:
        try:
            text = read_private_text(target, WHAT)
        except PrivateFileError as exc:
            raise TokenStoreError(self._with_remedy(exc)) from None
        if text is None or not text.strip():
            return None
        try:
            return TokenPair.from_json(text)
        except ValueError as exc:
            raise TokenStoreError(self._with_remedy(damaged(target, WHAT, str(exc)))) from None

    def warnings(self) -> list[str]:
        """Problems worth telling the owner that do not stop the store working, for a caller
        that shows them (they are then not logged as well)."""
        found = [warn_if_open(self.target(), log_it=False)]
        return [w for w in found if w]

    def _with_remedy(self, exc: PrivateFileError) -> str:
        return f"{exc}, then {self.remedy}" if exc.replaceable else str(exc)

    def _rescued(self, target: Path) -> list[tuple[Path, TokenPair]]:
        """Complete pairs kept by a write that could not finish (see the module docstring)."""
        found = []
        candidates = [*target.parent.glob(f".{target.name}-*"), self._rescue_file(target)]
        for path in candidates:
            pair = read_rescued(path)
            if pair is not None:
                warn_if_open(path)
                found.append((path, pair))
        return found

    def _rescue_file(self, target: Path) -> Path:
        return rescue_file(target.name, str(target.absolute()))

    # --- writing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def reserve(self) -> Iterator[Reservation]:
        """Prove the store can take a new pair before one is requested; commit() writes it."""
        target = self.target()
        if target.is_dir():
            # Renaming a file over a directory fails: say so now, before anything is spent.
            try:
                read_private_text(target, WHAT)
            except PrivateFileError as exc:
                raise TokenStoreError(self._with_remedy(exc)) from None
        reservation = Reservation(self, target)
        try:
            yield reservation
        finally:
            reservation.close()

    def write(self, pair: TokenPair) -> None:
        with self.reserve() as reservation:
            reservation.commit(pair)

    def rescue(self, target: Path, pair: TokenPair) -> Path | None:
        """Keep `pair` somewhere outside the store; the path, or None if nowhere would take it."""
        text = pair.to_json()
        with contextlib.suppress(OSError):
            fd, name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
            try:
                os.fchmod(fd, 0o600)
                _pwrite_all(fd, text.encode())
                os.fsync(fd)
            except OSError:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(name)
            else:
                os.close(fd)
                return Path(name)
        path = self._rescue_file(target)
        try:
            write_private_file(path, text)
        except OSError as exc:
            log.error("could not keep the new token pair in %s either (%s)", path, exc.strerror)
            return None
        return path

    def forget_rescued(self, target: Path, stored: TokenPair) -> None:
        """After a successful write: remove the copies it supersedes, and reservations of
        writers that died before they were done (older than any live writer's)."""
        now = time.time()
        for path in [*target.parent.glob(f".{target.name}-*"), self._rescue_file(target)]:
            pair = read_rescued(path)
            with contextlib.suppress(OSError):
                if (pair is not None and pair.obtained_at <= stored.obtained_at) or (
                    pair is None and now - path.stat().st_mtime > STALE_TEMP_S
                ):
                    path.unlink()

    def discard_rescued(self) -> None:
        """Drop every kept copy (a restore that puts an older pair back on purpose)."""
        target = self.target()
        for path in [*target.parent.glob(f".{target.name}-*"), self._rescue_file(target)]:
            if read_rescued(path) is not None:
                with contextlib.suppress(OSError):
                    path.unlink()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        try:
            private_dir(self.path.parent)
        except OSError as exc:
            raise TokenStoreError(self.unwritable(self.path, exc)) from None
        try:
            self._lock.acquire()
        except Timeout:
            raise
        except OSError as exc:  # no lock file can be made: no refresh can be stored either
            raise TokenStoreError(self.unwritable(self.path, exc)) from None
        try:
            yield
        finally:
            self._lock.release()

    # --- messages ------------------------------------------------------------------------------

    def unwritable(self, target: Path, exc: OSError) -> str:
        return (
            f"The token store {target} cannot be written ({exc.strerror}), so no new token "
            "pair was requested: nothing was sent, and the stored refresh token is unused and "
            f"still valid. Make {target.parent} writable again (free disk space, remount it "
            "read-write, `chattr -i` it), then run again."
        )

    def not_stored(self, target: Path, exc: OSError, kept: Path | None) -> str:
        if kept is None:
            return (
                f"A new token pair was received but could not be written to {target} "
                f"({exc.strerror}) nor kept anywhere else, and the previous refresh token is "
                f"spent. Make {target.parent} writable again, then {self.remedy}"
            )
        return (
            f"A new token pair was received but could not be written to {target} "
            f"({exc.strerror}). It is kept in {kept} (mode 0600): the next run uses it from "
            f"there and moves it into {target} once {target.parent} is writable again. Do not "
            "delete it: the previous refresh token is spent."
        )
