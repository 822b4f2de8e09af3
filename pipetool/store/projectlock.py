"""The project-wide lock: an OS lock (flock) that dies with its process, never a stale file.

The lock file's content names the run holding it, so a second invocation can say what it
waits for; the file itself may stay behind harmlessly, since only the flock counts.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import BusyError
from .db import state_dir
from .failures import ReadOnlyError, raise_write_error

LOCK_FILE = "lock"


@dataclass
class ProjectLock:
    """Held until `release()`, or the end of a `with` block."""

    fd: int

    def __enter__(self) -> ProjectLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self.fd >= 0:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = -1


def acquire(root: str, holder: str, wait: bool, on_wait: Callable[[str], None]) -> ProjectLock:
    """Take the project lock; `holder` names us for whoever waits next. Every command
    that writes the project's state takes it first, so a project pipetool cannot write
    (read-only media) is refused here, before anything runs, naming the folder."""
    sdir = state_dir(root)
    path = os.path.join(sdir, LOCK_FILE)
    try:
        os.makedirs(sdir, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise_write_error(exc, sdir if not os.path.isdir(sdir) else path, f"{holder.split(' (')[0]} (it did not start)")
    if not os.access(sdir, os.W_OK):  # the lock file may be open for writing where nothing else can be made
        os.close(fd)
        raise ReadOnlyError(sdir, "not writable")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = _read_holder(fd)
        if not wait:
            os.close(fd)
            raise BusyError(
                f"the project is busy: {other} holds it (retry later, or drop --no-wait to wait)") from None
        on_wait(f"waiting for {other} to finish…")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
    except OSError as exc:
        lock = ProjectLock(fd)
        lock.release()
        raise_write_error(exc, path, f"{holder.split(' (')[0]} (it did not start)")
    return ProjectLock(fd)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another pipetool process"
