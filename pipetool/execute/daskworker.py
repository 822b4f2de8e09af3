"""What runs on a Dask worker for pipetool (imports nothing of Dask).

Every job, command or callable, runs in a child process of its own, in its own session:
a worker may run several jobs at once on its threads, and `pyworker.run_python_job`
changes cwd, env and fds 1/2 process-wide; a child also can be stopped (Ctrl-C on the
pipetool side reaches it through `stop_run`) where a thread could not. Started as
`python -m pipetool.execute.daskworker`, this module runs one pickled callable job.
"""
from __future__ import annotations

import functools
import os
import pickle
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time

from .commands import signal_group
from .jobs import Job, Outcome

# The children of each pipetool run (by its token) alive on this worker, so that
# `stop_run`, called by `client.run` outside the task system, can find them. Module state
# because the worker process is the unit both sides share.
_lock = threading.Lock()
_children: dict[str, dict[int, subprocess.Popen]] = {}
_stopped: dict[str, None] = {}  # tokens of stopped runs, oldest first (a bounded set)
_STOPPED_KEPT = 256


@functools.lru_cache(maxsize=1)
def _bash() -> str:
    return shutil.which("bash") or "/bin/bash"


def _env(job: Job) -> dict[str, str]:
    """The worker's environment, the job's variables, and this interpreter's bin first on
    PATH (as the local executor does: `python` in a command is the venv's one)."""
    env = dict(os.environ)
    env.update(job.env)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def run_job(job: Job, token: str) -> Outcome:
    """Run one job to its end; its output goes to job.log_path (removed if empty)."""
    start = time.perf_counter()
    if job.cmd is not None:
        argv, stdin, payload = [_bash(), "-c", job.cmd], subprocess.DEVNULL, None
    else:
        argv, stdin = [sys.executable, "-m", "pipetool.execute.daskworker"], subprocess.PIPE
        payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
    with _lock:
        if token in _stopped:
            return Outcome(job.key, False, "interrupted", 0.0)
    try:
        log = open(job.log_path, "ab")  # noqa: SIM115 - the `with log:` below closes it
    except OSError as exc:
        return Outcome(job.key, False, f"cannot write its log {job.log_path}: {exc.strerror}", 0.0)
    with log:
        try:
            proc = subprocess.Popen(
                argv, cwd=job.cwd, env=_env(job), stdin=stdin, stderr=log,
                stdout=log if payload is None else subprocess.PIPE,
                start_new_session=True)  # its own group: stop_run signals the whole of it
        except OSError as exc:
            return Outcome(job.key, False, f"could not start: {exc.strerror or exc}", 0.0)
        with _lock:
            _children.setdefault(token, {})[proc.pid] = proc
            if token in _stopped:  # stopped while this one was being started
                signal_group(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(payload)
        finally:
            with _lock:
                mine = _children.get(token, {})
                mine.pop(proc.pid, None)
                if not mine:
                    _children.pop(token, None)
        empty = log.tell() == 0
    if empty:
        _remove(job.log_path)
    rc = proc.returncode
    if payload is not None and rc == 0:
        try:
            return pickle.loads(out)
        except Exception as exc:
            return Outcome(job.key, False, f"no result from the Python child: {exc}",
                           time.perf_counter() - start)
    msg = "" if rc == 0 else (f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}")
    return Outcome(job.key, rc == 0, msg, time.perf_counter() - start)


def _remove(path: str) -> None:
    try:
        if os.path.getsize(path) == 0:  # a Python child may have written to its own handle
            os.unlink(path)
    except OSError:
        pass


def stop_run(token: str, sig: int) -> int:
    """Send `sig` (0: none) to the process groups of run `token` on this worker; how many
    are still alive. Later jobs of that run will not start here."""
    with _lock:
        _stopped[token] = None
        while len(_stopped) > _STOPPED_KEPT:
            del _stopped[next(iter(_stopped))]
        pids = list(_children.get(token, {}))
    alive = 0
    for pid in pids:
        if sig:
            signal_group(pid, sig)
        try:
            os.killpg(pid, 0)
            alive += 1
        except (ProcessLookupError, PermissionError):
            pass
    return alive


def probe(path: str, token: str) -> str:
    """Can this worker read the token pipetool wrote at `path`, and write beside it?
    The path of the reply it wrote, or why not (prefixed `!`)."""
    try:
        with open(path, "rb") as f:
            seen = f.read()
    except OSError as exc:
        return f"!cannot read {path}: {exc.strerror}"
    if seen != token.encode():
        return f"!{path} holds something else there (another machine's folder of that name?)"
    reply = f"{path}.{secrets.token_hex(4)}"
    try:
        with open(reply, "wb") as f:
            f.write(token.encode())
    except OSError as exc:
        return f"!cannot write in {os.path.dirname(path)}: {exc.strerror}"
    return reply


def _child_main() -> None:
    """One callable job from stdin; its Outcome, pickled, to the original stdout."""
    from .pyworker import run_python_job

    job = pickle.load(sys.stdin.buffer)
    result = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # the job's stray writes after it ends must not reach the result
    os.close(null)
    outcome = run_python_job(job)
    with os.fdopen(result, "wb") as f:
        pickle.dump(outcome, f, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    _child_main()
