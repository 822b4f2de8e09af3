"""A warm parent for `python:` targets: each job runs in a fresh process forked from it.

A reused worker would carry one callable's process state (a monkeypatched module, a
changed umask, a stray thread) into the next target, whose outputs (and cached result)
would then depend on what ran before. A fork per job costs about a millisecond, where
starting an interpreter and importing pipetool's worker code costs tens: so one server
process is started per run (an interpreter that has imported the worker code and, once
each, the installed packages a callable's module imports at its top level), and it
forks a child per job. The server never imports project modules, whose edits every job
must see, and never runs user code itself.

The parent talks to the server over a Unix socket: a request carries the job (pickled)
and two pipe ends, the job's output (fds 1 and 2 of the child) and the pipe its
`Outcome` comes back through. The server answers with fixed-size records: the child's
pid once forked (it leads its own session, so its whole process group can be stopped),
an errno when the fork failed, and the child's exit status once it has reaped it.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import json
import os
import pickle
import selectors
import signal
import socket
import struct
import subprocess
import sys
from dataclasses import dataclass

_HEADER = struct.Struct("!I")  # the request's length; its two fds ride on these bytes
RECORD = struct.Struct("!cqq")  # kind, then (token, pid) | (token, errno) | (pid, exit code)
FORKED, FORK_FAILED, EXITED = b"F", b"E", b"X"

_BOOT = ("import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
         "from pipetool.execute.forkserver import serve; serve(int(sys.argv[2]), sys.argv[3])")


@dataclass
class Server:
    """The parent's handle on a running server."""

    proc: subprocess.Popen
    sock: socket.socket  # the parent's end (blocking)
    stderr: int  # the read end of the server's stderr, for the last words of a crash

    @classmethod
    def start(cls, root: str) -> Server:
        """Start a server for the project at `root` (never on its sys.path)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        err_r, err_w = os.pipe()
        # The parent's path without the project (the server must not import from it), but
        # with wherever pipetool itself comes from.
        home = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        path = [p for p in sys.path if p and os.path.abspath(p) != os.path.abspath(root)]
        path += [] if home in path else [home]
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, json.dumps(path), str(theirs.fileno()), root],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_w, cwd="/",
                pass_fds=(theirs.fileno(),), start_new_session=True)  # Ctrl-C reaches pipetool only
        except BaseException:
            ours.close()
            os.close(err_r)
            raise
        finally:
            theirs.close()
            os.close(err_w)
        return cls(proc, ours, err_r)

    def request(self, token: int, preload: tuple[str, ...], job_bytes: bytes, out_fd: int, res_fd: int) -> None:
        """Ask for a child running the pickled job with fds 1 and 2 on `out_fd`."""
        payload = pickle.dumps((token, preload, job_bytes), protocol=pickle.HIGHEST_PROTOCOL)
        fds = struct.pack("ii", out_fd, res_fd)
        self.sock.sendmsg([_HEADER.pack(len(payload))], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        self.sock.sendall(payload)

    def close(self, timeout: float) -> None:
        """Let the server go (it exits when the socket closes); kill it if it lingers."""
        self.sock.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            os.close(self.stderr)


# -- the server process -------------------------------------------------------------


def serve(fd: int, root: str) -> None:
    """The server's main loop: fork a child per request, report each child's exit."""
    sys.argv[:] = ["-c"]  # what a callable finds there: a plain `python -c`
    sock = socket.socket(fileno=fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wakeup fd is written
    from . import pyworker  # the worker code every child runs, imported once here

    tried: set[str] = set()
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "request")
    sel.register(wake_r, selectors.EVENT_READ, "child")
    while True:
        for key, _ in sel.select():
            if key.data == "child":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                _reap(sock)
                continue
            got = _receive(sock)
            if got is None:  # the parent closed its end: the run is over
                return
            (token, preload, job_bytes), out_fd, res_fd = got
            _preload(preload, root, tried)
            try:
                pid = os.fork()
            except OSError as exc:
                sock.sendall(RECORD.pack(FORK_FAILED, token, exc.errno or 0))
            else:
                if pid == 0:
                    sel.close()
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    for own in (sock.detach(), wake_r, wake_w):
                        os.close(own)
                    pyworker.run_forked(job_bytes, out_fd, res_fd)  # never returns
                sock.sendall(RECORD.pack(FORKED, token, pid))
            finally:
                os.close(out_fd)
                os.close(res_fd)


def _receive(sock: socket.socket) -> tuple[tuple, int, int] | None:
    """One request and its two fds; None at the end of the stream."""
    size = socket.CMSG_SPACE(struct.calcsize("ii"))
    head, anc, _flags, _addr = sock.recvmsg(_HEADER.size, size)
    if not head:
        return None
    fds: list[int] = []
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(struct.unpack(f"{len(data) // 4}i", data[: len(data) - len(data) % 4]))
    head += _exactly(sock, _HEADER.size - len(head))
    (n,) = _HEADER.unpack(head)
    payload = _exactly(sock, n)
    if len(fds) != 2:
        raise RuntimeError(f"a request came with {len(fds)} file descriptors, not 2")
    return pickle.loads(payload), fds[0], fds[1]


def _exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("the parent closed the socket mid-request")
        buf += chunk
    return bytes(buf)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.sendall(RECORD.pack(EXITED, pid, os.waitstatus_to_exitcode(status)))


def _preload(names: tuple[str, ...], root: str, tried: set[str]) -> None:
    """Import the installed modules among `names` (once each), so that every later child
    has them already. A name the project itself provides is never imported here: the
    children must see its current source. A failure is left for the child to meet."""
    for name in names:
        if name in tried:
            continue
        tried.add(name)
        top = name.partition(".")[0]
        try:
            if importlib.machinery.PathFinder.find_spec(top, [root]) is None:
                importlib.import_module(name)
        except BaseException:  # the child imports it again and reports
            pass
