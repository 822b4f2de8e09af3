"""Running jobs' processes: one I/O thread starts every child and watches its output and
its exit, instead of a thread per child. Spawning there keeps the scheduler going while
a new child waits for a CPU to exec on (a vfork parent is stalled until then:
milliseconds on a busy 2-core machine).

A command is `bash -c` started here; a `python:` job is a child the fork server makes
(`forkserver.py`). Either way the child's stdout and stderr share one pipe, so its log
reads in the order it was written, and the log is written here (`logsink.py`): a log
that cannot be written is cut short with a note, never the end of the job.

A job is finished when its process exits, not when its output ends: a background
process it started (`sleep 30 &`, a tensorboard) may hold the pipe for long after.
Once the process is gone, the pipe is read for `EXIT_GRACE_S` more, or until it ends,
then closed; a process still writing to it then gets SIGPIPE (EPIPE). Such processes
are the user's: they are not killed when the job ends (while it runs, an interrupt stops
them with it: they share its process group).

Any unexpected error here, or a fork server that dies, is reported through `failed`:
the executor raises it from `wait_next`, so the run stops with an error, never a hang.
"""
from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable

from ..procinfo import alive
from .children import Child, PySpawn, Spawn, describe, outcome_of, signal_group
from .children import pidfd as open_pidfd
from .forkserver import EXITED, FORK_FAILED, FORKED, RECORD, Server
from .jobs import JobKey, Outcome
from .logsink import LogSink

__all__ = ["CommandRunner", "PySpawn", "Spawn", "signal_group"]  # signal_group: the Dask worker's too

CHUNK = 65536
# How long the output pipe of a job whose process exited is still read, when a process
# it started in the background holds the pipe open.
EXIT_GRACE_S = 0.5
SERVER_CLOSE_S = 5.0


class CommandRunner:
    """Starts children, collects their output and exit status; reports through `done`,
    and through `failed` (once) when it cannot go on."""

    def __init__(self, done: Callable[[Outcome], None], failed: Callable[[str], None]):
        self._done = done
        self._failed = failed
        self._to_spawn: list[Spawn | PySpawn] = []
        self._exited: list[Child] = []  # reaped by a fallback waiter thread
        self._children: dict[JobKey, Child] = {}  # running, by job
        self._tokens: dict[int, Child] = {}  # Python jobs asked of the server, not yet forked
        self._pids: dict[int, Child] = {}  # Python jobs forked, not yet reaped
        self._server: Server | None = None
        self._server_buf = bytearray()
        self._server_err = bytearray()
        self._next_token = 0
        self._stopping = False
        self._closed = False
        self.error: str | None = None  # why the runner gave up
        self._cond = threading.Condition()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._thread = threading.Thread(target=self._main, name="pipetool-commands", daemon=True)
        self._thread.start()

    # -- called from the scheduler's thread -----------------------------------------
    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, spawn: Spawn | PySpawn) -> None:
        with self._cond:
            self._to_spawn.append(spawn)
        self._poke()

    def terminate(self, sig: int) -> list[Child]:
        """Stop spawning; signal every running child's process group; return them."""
        with self._cond:
            self._stopping = True
            self._to_spawn.clear()
            children = list(self._children.values())
        for c in children:
            if c.pid is not None and c.rc is None:
                signal_group(c.pid, sig)
        return children

    def wait_exited(self, children: list[Child], timeout: float) -> bool:
        """Whether all `children` exited within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(self._gone(c) for c in children):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))  # polled too: the I/O thread may be gone
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
        self._poke()
        self._thread.join(timeout=5)

    def _poke(self) -> None:
        with self._cond, contextlib.suppress(BlockingIOError):
            if self._wake_w >= 0:
                os.write(self._wake_w, b"x")

    def _gone(self, c: Child) -> bool:
        if c.rc is not None:
            return True
        if c.proc is not None:
            return c.proc.poll() is not None
        if self.alive and self._server is not None:
            return False  # the server reports its exit
        return c.pid is None or not alive(c.pid)

    # -- the I/O thread -------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a dead I/O thread would hang the run: report it
            self._give_up(f"internal error in pipetool's I/O thread ({type(exc).__name__}: {exc})")
        finally:
            try:
                self._shutdown()
            except BaseException as exc:  # (after a normal close, nobody is waiting for it)
                self._give_up(f"internal error closing pipetool's I/O thread ({type(exc).__name__}: {exc})")

    def _loop(self) -> None:
        while not self._closed:
            now = time.monotonic()
            ends = [c.grace_end for c in self._children.values() if c.grace_end is not None]
            timeout = max(0.0, min(ends) - now) if ends else None
            for key, _ in self._sel.select(timeout):
                if self._sel.get_map().get(key.fd) is not key:
                    continue  # closed by an earlier event of this batch
                kind, child = key.data
                if kind == "wake":
                    self._wake()
                elif kind == "out":
                    self._read_out(child)
                elif kind == "res":
                    self._read_result(child)
                elif kind == "exit":  # a command's pidfd: it exited
                    self._unwatch(child)
                    self._exited_now(child, child.proc.wait())
                elif kind == "server":
                    self._read_server()
                else:  # the server's stderr: kept for its last words
                    self._read_server_err()
            now = time.monotonic()
            for c in [c for c in self._children.values() if c.grace_end is not None and c.grace_end <= now]:
                self._report(c)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass
        with self._cond:
            spawns, self._to_spawn = self._to_spawn, []
            exited, self._exited = self._exited, []
        for sp in spawns:
            if self.error is not None:  # the run is being stopped
                self._done(Outcome(sp.key, False, f"not started: {self.error}", 0.0))
            elif isinstance(sp, Spawn):
                self._spawn(sp)
            else:
                self._spawn_python(sp)
        for child in exited:
            assert child.proc is not None
            self._exited_now(child, child.proc.wait())

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
        assert proc.stdout is not None
        child = Child(sp.key, started, LogSink(sp.log_path), out=os.dup(proc.stdout.fileno()),
                       proc=proc, pid=proc.pid)
        proc.stdout.close()  # the dup is ours to close, whenever the child is done
        self._add(child)
        pidfd = open_pidfd(proc.pid)
        if pidfd is not None:
            child.watchers.append(pidfd)
            self._sel.register(pidfd, selectors.EVENT_READ, ("exit", child))
        else:  # no pidfd here: a thread waits, then wakes us
            threading.Thread(target=self._wait_blocking, args=(child,), daemon=True).start()

    def _spawn_python(self, sp: PySpawn) -> None:
        started = time.perf_counter()
        if self._server is None:
            try:
                self._server = Server.start(sp.root)
            except OSError as exc:
                self._done(Outcome(sp.key, False, f"could not start: {exc.strerror or exc}", 0.0))
                return
            self._sel.register(self._server.sock, selectors.EVENT_READ, ("server", None))
            os.set_blocking(self._server.stderr, False)
            self._sel.register(self._server.stderr, selectors.EVENT_READ, ("server-err", None))
        out_r, out_w = os.pipe()
        res_r, res_w = os.pipe()
        token = self._next_token = self._next_token + 1
        try:
            self._server.request(token, sp.preload, sp.job_bytes, out_w, res_w)
        except OSError:
            for fd in (out_r, out_w, res_r, res_w):
                os.close(fd)
            self._server_gone()
            return
        os.close(out_w)
        os.close(res_w)
        child = Child(sp.key, started, LogSink(sp.log_path), out=out_r, result=bytearray(), res=res_r)
        self._tokens[token] = child
        self._add(child)
        os.set_blocking(res_r, False)
        self._sel.register(res_r, selectors.EVENT_READ, ("res", child))

    def _add(self, child: Child) -> None:
        assert child.out is not None
        os.set_blocking(child.out, False)
        self._sel.register(child.out, selectors.EVENT_READ, ("out", child))
        with self._cond:
            self._children[child.key] = child
            if self._stopping and child.pid is not None:  # an interrupt came meanwhile
                signal_group(child.pid, 15)

    def _read_out(self, child: Child) -> None:
        assert child.out is not None
        try:
            chunk = os.read(child.out, CHUNK)
        except BlockingIOError:
            return
        if chunk:
            child.sink.write(chunk)  # a failing log is cut short there, the pipe still drained
            return
        self._close_out(child)
        if child.rc is not None:
            self._report(child)

    def _read_result(self, child: Child) -> None:
        assert child.res is not None and child.result is not None
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(child.res, CHUNK):
                child.result += chunk
            self._sel.unregister(child.res)  # the end of it
            os.close(child.res)
            child.res = None

    def _read_server(self) -> None:
        assert self._server is not None
        try:
            data = self._server.sock.recv(CHUNK)
        except OSError:
            data = b""
        if not data:
            self._server_gone()
            return
        buf = self._server_buf
        buf += data
        n = len(buf) - len(buf) % RECORD.size
        for off in range(0, n, RECORD.size):
            kind, a, b = RECORD.unpack_from(buf, off)
            if kind == FORKED:
                child = self._tokens.pop(a, None)
                if child is None:
                    continue
                child.pid = b
                self._pids[b] = child
                with self._cond:
                    if self._stopping:
                        signal_group(b, 15)
            elif kind == FORK_FAILED:
                child = self._tokens.pop(a, None)
                if child is None:
                    continue
                child.rc = 0
                child.result = None
                self._report(child, f"could not start: {os.strerror(b)}")
            elif kind == EXITED and a in self._pids:  # (anything else the server reaps is not ours)
                self._exited_now(self._pids.pop(a), b)
        del buf[:n]

    def _read_server_err(self) -> None:
        assert self._server is not None
        with contextlib.suppress(BlockingIOError):
            data = os.read(self._server.stderr, CHUNK)
            if not data:
                self._sel.unregister(self._server.stderr)
                return
            self._server_err = (self._server_err + data)[-4096:]

    def _server_gone(self) -> None:
        assert self._server is not None
        proc = self._server.proc
        try:
            rc = proc.wait(timeout=SERVER_CLOSE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        self._read_server_err()
        last = self._server_err.decode("utf-8", "replace").strip().splitlines()[-1:]
        self._give_up(f"the process that starts Python targets (pid {proc.pid}) exited unexpectedly "
                      f"({describe(rc)}{': ' + last[0] if last else ''})")
        self._sel.unregister(self._server.sock)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(self._server.stderr)
        self._server.close(0)
        self._server = None

    def _give_up(self, message: str) -> None:
        with self._cond:
            first = self.error is None
            if first:
                self.error = message
            self._cond.notify_all()
        if first:
            self._failed(message)

    def _wait_blocking(self, child: Child) -> None:
        assert child.proc is not None
        child.proc.wait()
        with self._cond:
            self._exited.append(child)
        self._poke()

    def _exited_now(self, child: Child, rc: int) -> None:
        """The child's process is gone: report it now, or once its pipe is drained."""
        with self._cond:
            child.rc = rc
            self._cond.notify_all()
        if child.out is None:
            self._report(child)
        else:
            child.grace_end = time.monotonic() + EXIT_GRACE_S

    def _report(self, child: Child, failure: str | None = None) -> None:
        self._close_out(child)
        self._unwatch(child)
        if child.res is not None:
            self._read_result(child)
            if child.res is not None:
                self._sel.unregister(child.res)
                os.close(child.res)
                child.res = None
        child.sink.close()
        with self._cond:
            self._children.pop(child.key, None)
            self._cond.notify_all()
        duration = time.perf_counter() - child.started
        self._done(Outcome(child.key, False, failure, duration) if failure is not None
                   else outcome_of(child, duration))

    def _close_out(self, child: Child) -> None:
        if child.out is not None:
            self._sel.unregister(child.out)
            os.close(child.out)
            child.out = None
        child.grace_end = None

    def _unwatch(self, child: Child) -> None:
        for fd in child.watchers:
            self._sel.unregister(fd)
            os.close(fd)
        child.watchers.clear()

    def _shutdown(self) -> None:
        """Close what is left: the children's pipes and logs, the server, the wake pipe."""
        for c in list(self._children.values()):
            self._close_out(c)
            self._unwatch(c)
            if c.res is not None:
                os.close(c.res)
            c.sink.close()
        self._sel.close()
        with self._cond:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
        if self._server is not None:
            self._server.close(SERVER_CLOSE_S)
            self._server = None
