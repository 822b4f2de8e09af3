"""The local executor: commands as subprocesses, Python callables in loky worker processes.

Both report into one queue in completion order, so the scheduler starts a target the
moment its own upstream targets are done (no waiting for a whole level).
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

from .jobs import Job, Outcome
from .pyworker import run_python_job

TERM_GRACE_S = 3.0


class LocalExecutor:
    def __init__(self, jobs: int):
        self.jobs = max(1, jobs)
        self._done: queue.Queue[Outcome] = queue.Queue()
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._pool = None  # loky executor, started on the first Python target
        self._pending_futures: dict[str, object] = {}
        # Resolved once: a bare "bash" costs a PATH search on every spawn.
        self._bash = shutil.which("bash") or "/bin/bash"

    # -- commands ---------------------------------------------------------------
    def _submit_cmd(self, job: Job) -> None:
        env = dict(os.environ)
        # The interpreter that runs pipetool comes first, so `python` in a command is the
        # venv's one even when the venv is not activated.
        bindir = os.path.dirname(sys.executable)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        env.update(job.env)
        start = time.perf_counter()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        out = os.open(job.stdout_path, flags, 0o644)
        try:
            err = os.open(job.stderr_path, flags, 0o644)
            try:
                proc = subprocess.Popen(
                    [self._bash, "-c", job.cmd or ""],
                    cwd=job.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,  # our own process group: we stop it on interrupt
                )
            finally:
                os.close(err)
        finally:
            os.close(out)
        with self._lock:
            self._procs[job.target] = proc

        def wait() -> None:
            rc = proc.wait()
            with self._lock:
                self._procs.pop(job.target, None)
            msg = "" if rc == 0 else (f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}")
            self._done.put(Outcome(job.target, rc == 0, msg, time.perf_counter() - start))

        threading.Thread(target=wait, daemon=True).start()

    # -- python callables -------------------------------------------------------
    def _submit_python(self, job: Job) -> None:
        if self._pool is None:
            from joblib.externals.loky import get_reusable_executor

            self._pool = get_reusable_executor(max_workers=self.jobs, timeout=60)
        start = time.perf_counter()
        fut = self._pool.submit(run_python_job, job)
        self._pending_futures[job.target] = fut

        def done(f) -> None:
            self._pending_futures.pop(job.target, None)
            try:
                outcome = f.result()
            except BaseException as exc:  # the worker died (crash, kill, unpicklable result)
                outcome = Outcome(job.target, False, f"worker failed: {type(exc).__name__}: {exc}",
                                  time.perf_counter() - start)
            self._done.put(outcome)

        fut.add_done_callback(done)

    # -- the interface ----------------------------------------------------------
    def submit(self, job: Job) -> None:
        if job.cmd is not None:
            self._submit_cmd(job)
        else:
            self._submit_python(job)

    def wait_next(self) -> Outcome:
        while True:  # a timeout keeps the main thread responsive to SIGINT
            try:
                return self._done.get(timeout=0.2)
            except queue.Empty:
                continue

    def cancel_all(self) -> None:
        """Terminate running commands (whole process groups) and Python workers."""
        with self._lock:
            procs = list(self._procs.values())
        for p in procs:
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_S
        for p in procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                p.wait()
        if self._pool is not None:
            self._pool.shutdown(wait=False, kill_workers=True)
            self._pool = None

    def close(self) -> None:
        # The reusable pool stays up for the next run in this process (notebooks); its
        # idle workers exit by themselves after a minute.
        pass


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
