"""One process at a time on a durable state folder: an OS file lock with the holder's pid.

Two runs appending to the same search history, meta-training folder, trial log or sub-dataset
build would interleave their records and each would resume from the other's half. ``owned``
takes an exclusive ``flock`` on ``<folder>/.lock`` for the duration of a block; a second process
fails at once with a :class:`StateLockedError` naming the folder and the holder's pid. The OS
drops the lock when its holder exits, ``kill -9`` included, so a stale lock cannot block a
resume. Within one process the lock is re-entrant (a stage and the search loop it calls may
both claim the same folder).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transfernas.errors import UserError

LOCK_FILE = ".lock"
_held: dict[Path, tuple[int, int]] = {}  # folder → (fd, depth) held by this process


class StateLockedError(UserError, RuntimeError):
    """Another process holds the state folder this run would write."""


@contextmanager
def owned(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for this process until the block ends."""
    folder = Path(folder).resolve()
    if folder in _held:
        fd, depth = _held[folder]
        _held[folder] = (fd, depth + 1)
        try:
            yield folder
        finally:
            _held[folder] = (fd, depth)
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StateLockedError(
            f"{folder} is in use by pid {holder} (another run on the same state); wait for it "
            "to finish or stop it, then run again: it resumes where the state ends"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[folder] = (fd, 1)
    try:
        yield folder
    finally:
        del _held[folder]
        os.close(fd)  # closing the only descriptor releases the flock
