"""Running shell commands: one I/O thread starts every child and watches its output,
instead of a thread per child. Spawning there keeps the scheduler going while a new
child waits for a CPU to exec on (a vfork parent is stalled until then: milliseconds
on a busy 2-core machine).

A child's stdout and stderr share one pipe, so its log reads in the order it was
written; the log file is created on the first byte (most targets print nothing, and
creating a file is not free). The end of the output usually means the child exited;
only when it has not (it closed its output early) is its exit watched with a pidfd.
"""
from __future__ import annotations

import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from .jobs import JobKey, Outcome

CHUNK = 65536


@dataclass(frozen=True)
class Spawn:
    key: JobKey
    argv: list[str]
    cwd: str
    env: dict[bytes, bytes]
    stdin: int
    log_path: str


@dataclass
class _Child:
    key: JobKey
    proc: subprocess.Popen
    started: float
    log_path: str
    log: IO[bytes] | None = None


class CommandRunner:
    """Starts children, collects their output and exit status; reports through `done`."""

    def __init__(self, done: Callable[[Outcome], None]):
        self._done = done
        self._to_spawn: list[Spawn] = []
        self._exited: list[_Child] = []  # reaped by a fallback waiter thread
        self.procs: dict[JobKey, subprocess.Popen] = {}  # running children by job
        self._stopping = False
        self._closed = False
        self._lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._loop, name="pipetool-commands", daemon=True)
        self._thread.start()

    # -- called from the scheduler's thread -----------------------------------------
    def submit(self, spawn: Spawn) -> None:
        with self._lock:
            self._to_spawn.append(spawn)
        os.write(self._wake_w, b"x")

    def terminate(self, sig: int) -> list[subprocess.Popen]:
        """Stop spawning; signal every running child's process group; return them."""
        with self._lock:
            self._stopping = True
            self._to_spawn.clear()
            procs = list(self.procs.values())
        for p in procs:
            signal_group(p.pid, sig)
        return procs

    def close(self) -> None:
        self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)

    # -- the I/O thread -------------------------------------------------------------
    def _loop(self) -> None:
        sel = self._sel
        while not (self._closed and len(sel.get_map()) <= 1):
            for key, _ in sel.select():
                if key.data is None:
                    self._wake()
                elif key.data[0] == "out":
                    self._read(key.fileobj, key.data[1])
                else:  # "exit": the pidfd of a child that closed its output early
                    sel.unregister(key.fileobj)
                    os.close(key.fd)
                    self._report(key.data[1])
        sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            spawns, self._to_spawn = self._to_spawn, []
            exited, self._exited = self._exited, []
        for sp in spawns:
            self._spawn(sp)
        for child in exited:
            self._report(child)

    def _spawn(self, sp: Spawn) -> None:
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(
                sp.argv, cwd=sp.cwd, env=sp.env, stdin=sp.stdin,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True,  # our own process group: we stop it on interrupt
            )
        except OSError as exc:
            self._done(Outcome(sp.key, False, f"could not start: {exc.strerror or exc}", 0.0))
            return
        with self._lock:
            self.procs[sp.key] = proc
            if self._stopping:  # an interrupt came while this one was being started
                signal_group(proc.pid, 15)
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        self._sel.register(proc.stdout, selectors.EVENT_READ, ("out", _Child(sp.key, proc, started, sp.log_path)))

    def _read(self, pipe, child: _Child) -> None:
        try:
            chunk = os.read(pipe.fileno(), CHUNK)
        except BlockingIOError:
            return
        if chunk:
            if child.log is None:
                child.log = open(child.log_path, "wb")  # noqa: SIM115 - closed when the child's output ends
            child.log.write(chunk)
            return
        self._sel.unregister(pipe)
        pipe.close()
        if child.proc.poll() is not None:
            self._report(child)
            return
        pidfd = _pidfd(child.proc.pid)
        if pidfd is not None:
            self._sel.register(pidfd, selectors.EVENT_READ, ("exit", child))
        else:  # no pidfd here: a thread waits, then wakes us
            threading.Thread(target=self._wait_blocking, args=(child,), daemon=True).start()

    def _wait_blocking(self, child: _Child) -> None:
        child.proc.wait()
        with self._lock:
            self._exited.append(child)
        os.write(self._wake_w, b"x")

    def _report(self, child: _Child) -> None:
        rc = child.proc.wait()
        if child.log is not None:
            child.log.close()
        with self._lock:
            self.procs.pop(child.key, None)
        msg = "" if rc == 0 else (f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}")
        self._done(Outcome(child.key, rc == 0, msg, time.perf_counter() - child.started))


def signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:
        return None
