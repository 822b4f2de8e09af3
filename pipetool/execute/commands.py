"""Running shell commands: one I/O thread starts every child and watches it (its output
pipes and a pidfd for its exit), instead of a thread per child. Spawning there also
keeps the scheduler going while a new child waits for a CPU to exec on (the parent of
a vfork is stalled until then: milliseconds on a busy 2-core machine).

Output goes to the per-target logs, created on the first byte: most targets print
nothing, and creating a file is not free.
"""
from __future__ import annotations

import os
import selectors
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .jobs import Outcome


@dataclass
class _Child:
    target: str
    proc: subprocess.Popen
    started: float
    paths: dict[int, str]  # pipe fd -> log path
    files: dict[int, object] = field(default_factory=dict)
    open_pipes: int = 2
    exited: bool = False


@dataclass(frozen=True)
class Spawn:
    target: str
    argv: list[str]
    cwd: str
    env: dict[bytes, bytes]
    stdin: int
    out_path: str
    err_path: str


class CommandRunner:
    """Starts children, collects their output and exit status; reports through `done`."""

    def __init__(self, done: Callable[[Outcome], None]):
        self._done = done
        self._to_spawn: list[Spawn] = []
        self.procs: dict[str, subprocess.Popen] = {}  # running children by target
        self._stopping = False
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending: list[_Child] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="pipetool-commands", daemon=True)
        self._thread.start()

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
            try:
                os.killpg(p.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        return procs

    def close(self) -> None:
        self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)

    # -- the I/O thread ----------------------------------------------------------
    def _loop(self) -> None:
        sel = self._sel
        while True:
            for key, _ in sel.select():
                if key.data is None:
                    self._take_new()
                    continue
                kind, child = key.data
                if kind == "exit":
                    sel.unregister(key.fileobj)
                    os.close(key.fileobj)
                    child.exited = True
                    self._finish_if_done(child, drain=True)
                else:
                    self._read(key.fileobj, child)
            if self._closed and len(sel.get_map()) <= 1:
                break
        sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _take_new(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            new, self._pending = self._pending, []
            spawns, self._to_spawn = self._to_spawn, []
        for sp in spawns:
            child = self._spawn(sp)
            if child is not None:
                new.append(child)
        for child in new:
            for fd in child.paths:
                os.set_blocking(fd, False)
                self._sel.register(fd, selectors.EVENT_READ, ("out", child))
            pidfd = _pidfd(child.proc.pid)
            if pidfd is None:  # no pidfd (old kernel): a thread waits for this one
                threading.Thread(target=self._wait_blocking, args=(child,), daemon=True).start()
            else:
                self._sel.register(pidfd, selectors.EVENT_READ, ("exit", child))

    def _spawn(self, sp: Spawn) -> _Child | None:
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(
                sp.argv, cwd=sp.cwd, env=sp.env, stdin=sp.stdin,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True,  # our own process group: we stop it on interrupt
            )
        except OSError as exc:
            self._done(Outcome(sp.target, False, f"could not start: {exc.strerror or exc}", 0.0))
            return None
        with self._lock:
            if self._stopping:  # an interrupt came while this one was being started
                try:
                    os.killpg(proc.pid, 15)
                except ProcessLookupError:
                    pass
            self.procs[sp.target] = proc
        assert proc.stdout is not None and proc.stderr is not None
        return _Child(sp.target, proc, started, {proc.stdout.fileno(): sp.out_path, proc.stderr.fileno(): sp.err_path})

    def _wait_blocking(self, child: _Child) -> None:
        child.proc.wait()
        child.exited = True
        os.write(self._wake_w, b"x")

    def _read(self, fd: int, child: _Child) -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        if chunk:
            self._write(child, fd, chunk)
            return
        self._sel.unregister(fd)
        self._close_pipe(child, fd)
        self._finish_if_done(child, drain=False)

    def _write(self, child: _Child, fd: int, chunk: bytes) -> None:
        f = child.files.get(fd)
        if f is None:
            f = child.files[fd] = open(child.paths[fd], "wb")
        f.write(chunk)

    def _close_pipe(self, child: _Child, fd: int) -> None:
        for pipe in (child.proc.stdout, child.proc.stderr):
            if pipe is not None and not pipe.closed and pipe.fileno() == fd:
                pipe.close()
        child.open_pipes -= 1

    def _finish_if_done(self, child: _Child, drain: bool) -> None:
        if drain:
            # The process is gone; what is left in the pipes is its last output (a
            # background grandchild holding a pipe open must not keep the target running).
            for pipe in (child.proc.stdout, child.proc.stderr):
                if pipe is None or pipe.closed:
                    continue
                fd = pipe.fileno()
                while True:
                    try:
                        chunk = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    if not chunk:
                        break
                    self._write(child, fd, chunk)
                self._sel.unregister(fd)
                self._close_pipe(child, fd)
        if not child.exited or child.open_pipes > 0:
            return
        rc = child.proc.wait()
        for f in child.files.values():
            f.close()
        with self._lock:
            self.procs.pop(child.target, None)
        msg = "" if rc == 0 else (f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}")
        self._done(Outcome(child.target, rc == 0, msg, time.perf_counter() - child.started))


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:
        return None
