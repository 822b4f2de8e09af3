"""A job's process as the I/O thread (`commands.py`) sees it: what to start, what it is
doing, what its outcome is, and how to signal it."""
from __future__ import annotations

import os
import pickle
import subprocess
from dataclasses import dataclass, field

from .jobs import JobKey, Outcome
from .logsink import LogSink


@dataclass(frozen=True)
class Spawn:
    """A command to start: `argv` with fds 1 and 2 on a pipe into the log."""

    key: JobKey
    argv: list[str]
    cwd: str
    env: dict[bytes, bytes]
    stdin: int
    log_path: str


@dataclass(frozen=True)
class PySpawn:
    """A `python:` job for the fork server: the pickled `Job`, and the installed modules
    its callable's module imports (the server imports them once, for every child)."""

    key: JobKey
    root: str
    job_bytes: bytes
    preload: tuple[str, ...]
    log_path: str


@dataclass(eq=False)
class Child:
    """One running job: its process, its output and log, and what is known of its end."""

    key: JobKey
    started: float
    sink: LogSink
    out: int | None = None  # the read end of its output, until closed
    proc: subprocess.Popen | None = None  # a command's process
    pid: int | None = None  # its pid (and process group), once known
    result: bytearray | None = None  # a Python job's pickled Outcome, as it arrives
    res: int | None = None  # ...and the pipe it comes through, until closed
    rc: int | None = None  # its exit status, once it exited
    grace_end: float | None = None  # exited, its pipe still open: read until then
    watchers: list[int] = field(default_factory=list)  # a pidfd waiting for its exit


def outcome_of(child: Child, duration: float) -> Outcome:
    """A command's outcome from its exit status; a Python job's from the Outcome its
    process sent (or, when it died without sending one, from its exit status)."""
    rc = child.rc if child.rc is not None else -1
    if child.result is None:
        return Outcome(child.key, rc == 0, "" if rc == 0 else describe(rc), duration)
    try:
        sent = pickle.loads(bytes(child.result))
        return Outcome(child.key, bool(sent.ok), str(sent.message), duration)
    except Exception:  # nothing (or half of it) came: it died first
        return Outcome(child.key, False, f"ended without a result ({describe(rc)})", duration)


def describe(rc: int) -> str:
    return f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"


def signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:
        return None
