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
import time
from typing import Any

from .commands import CommandRunner, Spawn, signal_group
from .jobs import Job, Outcome
from .pyworker import run_python_job

TERM_GRACE_S = 3.0


class LocalExecutor:
    def __init__(self, jobs: int):
        self.jobs = max(1, jobs)
        self._done: queue.Queue[Outcome] = queue.Queue()
        self._pool: Any = None  # loky executor, started on the first Python target
        # Resolved once: a bare "bash" costs a PATH search on every spawn.
        self._bash = shutil.which("bash") or "/bin/bash"
        self._env: dict[bytes, bytes] | None = None
        self._runner: CommandRunner | None = None
        self._null_fd: int | None = None

    # -- commands ---------------------------------------------------------------
    def _base_env(self) -> dict[bytes, bytes]:
        """The environment every command starts from, encoded once per executor."""
        if self._env is None:
            env = {os.fsencode(k): os.fsencode(v) for k, v in os.environ.items()}
            # The interpreter that runs pipetool comes first, so `python` in a command is
            # the venv's one even when the venv is not activated.
            bindir = os.fsencode(os.path.dirname(sys.executable))
            env[b"PATH"] = bindir + os.pathsep.encode() + env.get(b"PATH", b"")
            self._env = env
        return self._env

    def _submit_cmd(self, job: Job) -> None:
        env = dict(self._base_env())
        env.update((os.fsencode(k), os.fsencode(v)) for k, v in job.env.items())
        if self._runner is None:
            self._runner = CommandRunner(self._done.put)
        self._runner.submit(Spawn(job.key, [self._bash, "-c", job.cmd or ""], job.cwd, env,
                                  self._devnull(), job.log_path))

    def _devnull(self) -> int:
        if self._null_fd is None:
            self._null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        return self._null_fd

    # -- python callables -------------------------------------------------------
    def _submit_python(self, job: Job) -> None:
        if self._pool is None:
            from loky import get_reusable_executor

            self._pool = get_reusable_executor(max_workers=self.jobs, timeout=60)
        start = time.perf_counter()
        fut = self._pool.submit(run_python_job, job)

        def done(f) -> None:
            try:
                outcome = f.result()
            except BaseException as exc:  # the worker died (crash, kill, unpicklable result)
                outcome = Outcome(job.key, False, f"worker failed: {type(exc).__name__}: {exc}",
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
        procs = self._runner.terminate(signal.SIGTERM) if self._runner is not None else []
        deadline = time.monotonic() + TERM_GRACE_S
        for p in procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(p.pid, signal.SIGKILL)
                p.wait()
        if self._pool is not None:
            self._pool.shutdown(wait=False, kill_workers=True)
            self._pool = None

    def close(self) -> None:
        # The reusable pool stays up for the next run in this process (notebooks); its
        # idle workers exit by themselves after a minute.
        if self._null_fd is not None:
            os.close(self._null_fd)
            self._null_fd = None
        if self._runner is not None:
            self._runner.close()
            self._runner = None
