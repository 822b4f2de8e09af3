"""How the store's own failures reach the user: a full disk, a read-only project, a damaged
SQLite file, each one clear paragraph with the right exit status, never a traceback and
never advice to delete state.

Every SQLite call of the store runs inside `guarded`, and every file the store writes
goes through `os_write_error` when the write fails, so the classification lives here once.
"""
from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import EXIT_FAILED, PipetoolError, StateError

READ_COMMANDS = "status, runs, show, diff, dag, check"

# SQLite's primary result codes (sqlite3.SQLITE_* exist from Python 3.11 only).
_READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 8, 10, 11, 13, 14, 26
_IOERR_READ, _IOERR_SHORT_READ = 266, 522
# Python 3.10 has no `sqlite_errorcode`: the message SQLite gives for each code.
_BY_MESSAGE = {
    "attempt to write a readonly database": _READONLY, "disk I/O error": _IOERR,
    "database disk image is malformed": _CORRUPT, "database or disk is full": _FULL,
    "unable to open database file": _CANTOPEN, "file is not a database": _NOTADB,
}
_FULL_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                errno.EFBIG: "a file reached the file-size limit"}
_REMEDIES = {errno.EDQUOT: "free some space (or raise the quota)",
             errno.EFBIG: "raise the file-size limit (ulimit -f) or free some space"}
_READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


class StoreWriteError(PipetoolError):
    """pipetool could not write its own state (a full disk, a file-size limit, an I/O
    error): the command stops, what was recorded before stays (exit 1)."""

    exit_code = EXIT_FAILED

    def __init__(self, problem: str, file: str, what: str, remedy: str = "free some space"):
        self.problem, self.file, self.what, self.remedy = problem, file, what, remedy
        super().__init__(problem)

    def render(self) -> str:
        # A run that fails to record a target then fails to record its own end: the
        # earlier failures are in the exception's context, and each lost what it names.
        lost: list[str] = []
        exc: BaseException | None = self
        while exc is not None:
            if isinstance(exc, StoreWriteError) and exc.what not in lost:
                lost.insert(0, exc.what)
            exc = exc.__context__
        return (f"{self.problem}: pipetool could not write {self.file}; not recorded: {'; '.join(lost)}. "
                f"Everything recorded before is kept and nothing needs deleting: {self.remedy} "
                "and run the command again (what was not recorded is then rebuilt or restored).")


class ReadOnlyError(StateError):
    """A command that records what it does, in a project pipetool cannot write (exit 2)."""

    def __init__(self, folder: str, reason: str):
        self.folder = folder
        super().__init__(
            f"cannot write to {folder} ({reason}): this command records what it does there, so it needs "
            f"a writable project; the read-only commands ({READ_COMMANDS}) still answer here")


class DamagedStoreError(StateError):
    """The SQLite file is damaged (a bad page, not a database): say what is lost, what is
    kept, and how to recover (exit 2)."""

    def __init__(self, path: str, error: str, check: str):
        super().__init__(
            f"{path} is damaged ({error}; PRAGMA quick_check: {check}). Until it is recovered pipetool cannot read "
            "its run history, the per-target journal, the build records, the stat cache or the run cache "
            "kept there; the cache objects under .pipetool/cache/, the run manifests under .pipetool/runs/ "
            "and pipetool.lock are separate files and are not affected. Run `pipetool recover`: it sets the "
            "damaged file aside (kept, not deleted) and rebuilds the store from those files")


class StoreFailure(PipetoolError):
    """Any other failure of the SQLite store (exit 1)."""

    exit_code = EXIT_FAILED


def sqlite_code(exc: sqlite3.Error) -> int | None:
    """SQLite's extended result code of an error (from its message on Python 3.10)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code if code is not None else _BY_MESSAGE.get(str(exc))


def quick_check(conn: sqlite3.Connection, error: str) -> str:
    """What `PRAGMA quick_check` finds (its first problems), or how it failed."""
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(3)").fetchall()]
    except sqlite3.Error as exc:
        return "stops at the same error" if str(exc) == error else f"stops at '{exc}'"
    return "; ".join(rows) or "no answer"


def cannot_open_here(exc: sqlite3.Error) -> bool:
    """The file or its folder cannot be written, or WAL's `-shm` cannot be made (a
    read-only folder; a full disk: an I/O error): the store may still be read read-only."""
    code = sqlite_code(exc)
    return code is not None and code & 0xFF in (_READONLY, _CANTOPEN, _IOERR) \
        and code not in (_IOERR_READ, _IOERR_SHORT_READ)


def sqlite_error(conn: sqlite3.Connection | None, exc: sqlite3.Error, what: str, writing: bool,
                 path: str | None = None) -> PipetoolError:
    """The user's error for a failed SQLite call while reading or writing `what`."""
    import os

    path = path or getattr(conn, "path", None) or "the store (.pipetool/state.db)"
    code = sqlite_code(exc)
    primary = code & 0xFF if code is not None else None
    if primary in (_CORRUPT, _NOTADB) or code in (_IOERR_SHORT_READ, _IOERR_READ):
        return DamagedStoreError(path, str(exc), quick_check(conn, str(exc)) if conn is not None else "not run")
    if primary == _FULL:
        return StoreWriteError("the disk is full", path, what)
    if primary == _IOERR and writing:
        return StoreWriteError("the disk is full, past a file-size limit, or failing (SQLite: disk I/O error)",
                               path, what)
    if primary in (_READONLY, _CANTOPEN) and writing:
        cause = getattr(conn, "read_only_cause", None)  # why it was opened read-only
        if cause is not None and cause & 0xFF == _IOERR:  # a full disk: its -shm could not be made
            return StoreWriteError("the disk is full or failing (SQLite: disk I/O error)", path, what)
        return ReadOnlyError(os.path.dirname(path) or ".", str(exc))
    return StoreFailure(f"pipetool's store {path} failed while {'writing' if writing else 'reading'} {what}: {exc}")


@contextmanager
def guarded(conn: sqlite3.Connection | None, what: str, writing: bool = False) -> Iterator[None]:
    """Turn a failing SQLite call into the user's error (see `sqlite_error`)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise sqlite_error(conn, exc, what, writing) from None


def os_write_error(exc: OSError, path: str, what: str, read_only_too: bool = True) -> PipetoolError | None:
    """The user's error for a failed write of pipetool's own file `path` (None: not a
    full disk nor a read-only place; the caller re-raises)."""
    import os

    if exc.errno in _FULL_ERRNOS:
        return StoreWriteError(_FULL_ERRNOS[exc.errno], path, what, _REMEDIES.get(exc.errno, "free some space"))
    if exc.errno == errno.EIO:
        return StoreWriteError("the disk is failing (an I/O error)", path, what)
    if exc.errno in _READ_ONLY_ERRNOS and read_only_too:
        folder = path if os.path.isdir(path) else os.path.dirname(path)
        return ReadOnlyError(folder, exc.strerror or str(exc))
    return None


def remove_quietly(path: str) -> None:
    """Remove a temporary file of ours after a failed write (a second failure would hide the first)."""
    import os

    try:
        os.unlink(path)
    except OSError:
        pass


def raise_write_error(exc: OSError, path: str, what: str, read_only_too: bool = True) -> None:
    """Re-raise a failed write of pipetool's file `path` as the user's error when it is one
    (a full disk; a read-only place unless `read_only_too` is False); else as it was."""
    failure = os_write_error(exc, path, what, read_only_too)
    if failure is None:
        raise exc
    raise failure from None
