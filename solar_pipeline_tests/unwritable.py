"""Paths that really refuse writes, also for root (the tests run as root, and root ignores a
directory's write bits): `chattr +i` (immutable: no new entries, no rename, no write to the
file even through a descriptor opened before) and a small tmpfs filled to the last block.
Tests that need one are skipped where the machine cannot provide it, never faked."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _chattr(flag: str, path: Path) -> bool:
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
    return done.returncode == 0


class Freezer:
    """Make paths unwritable (`freeze`) and writable again (`thaw`); everything still frozen is
    thawed at the end of the test, so pytest can delete its temporary directory."""

    def __init__(self) -> None:
        self.frozen: list[Path] = []

    def freeze(self, path: Path) -> None:
        if os.geteuid() == 0:
            assert _chattr("+i", path), f"chattr +i {path} failed"
        else:  # an ordinary user is stopped by the mode bits (of a directory)
            assert path.is_dir(), "without root only a directory can be frozen"
            path.chmod(0o500)
        self.frozen.append(path)

    def thaw(self, path: Path) -> None:
        if os.geteuid() == 0:
            _chattr("-i", path)
        else:
            path.chmod(0o700)
        with contextlib.suppress(ValueError):
            self.frozen.remove(path)

    def thaw_all(self) -> None:
        for path in reversed(list(self.frozen)):
            self.thaw(path)


@pytest.fixture
def freezer(tmp_path: Path) -> Iterator[Freezer]:
    probe = tmp_path / f"probe-{uuid.uuid4().hex[:6]}"
    probe.mkdir()
    if os.geteuid() == 0:
        if not _chattr("+i", probe):
            pytest.skip("chattr +i is not supported here (filesystem or capability)")
        frozen_out = not _try_create(probe / "x")
        _chattr("-i", probe)
        if not frozen_out:
            pytest.skip("chattr +i does not stop root here")
    probe.rmdir()
    freezer = Freezer()
    try:
        yield freezer
    finally:
        freezer.thaw_all()


def _try_create(path: Path) -> bool:
    try:
        path.touch()
    except OSError:
        return False
    path.unlink()
    return True


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted at a temporary directory (root only): fill it to make a real
    full disk."""
    mount = tmp_path / "small-fs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(directory: Path) -> Path:
    """Write into `directory` until its filesystem is full; returns the filler to delete."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 1):  # to the last byte
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler
