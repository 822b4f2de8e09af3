"""The local executor: commands as subprocesses, each Python callable in a fresh process
forked from a warm server (`forkserver.py`), so nothing one callable does to its process
reaches the next target.

Both report into one queue in completion order, so the scheduler starts a target the
moment its own upstream targets are done (no waiting for a whole level). When the I/O
thread or the fork server fails, `wait_next` raises `ExecutorError`: the run stops with
an error instead of waiting forever for an outcome that cannot come.
"""
from __future__ import annotations

import ast
import os
import pickle
import queue
import shutil
import signal
import sys

from ..errors import EXIT_FAILED, PipetoolError
from .commands import CommandRunner, PySpawn, Spawn, signal_group
from .jobs import Job, Outcome

TERM_GRACE_S = 3.0
KILL_WAIT_S = 5.0


class ExecutorError(PipetoolError):
    """The executor cannot go on (its I/O thread or the Python fork server failed): the
    run stops, its running targets are terminated (exit 1)."""

    exit_code = EXIT_FAILED


class _Failure:
    def __init__(self, message: str):
        self.message = message


class LocalExecutor:
    def __init__(self, jobs: int):
        self.jobs = max(1, jobs)
        self._done: queue.Queue[Outcome | _Failure] = queue.Queue()
        # Resolved once: a bare "bash" costs a PATH search on every spawn.
        self._bash = shutil.which("bash") or "/bin/bash"
        self._env: dict[bytes, bytes] | None = None
        self._runner: CommandRunner | None = None
        self._null_fd: int | None = None
        self._preloads: dict[tuple[str, str], tuple[str, ...]] = {}

    def _runner_now(self) -> CommandRunner:
        if self._runner is None:
            self._runner = CommandRunner(self._done.put, lambda message: self._done.put(_Failure(message)))
        return self._runner

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
        self._runner_now().submit(Spawn(job.key, [self._bash, "-c", job.cmd or ""], job.cwd, env,
                                        self._devnull(), job.log_path))

    def _devnull(self) -> int:
        if self._null_fd is None:
            self._null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        return self._null_fd

    # -- python callables -------------------------------------------------------
    def _submit_python(self, job: Job) -> None:
        try:
            job_bytes = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a value that cannot reach a child fails its target
            self._done.put(Outcome(job.key, False, f"could not start: its arguments cannot be sent: {exc}"))
            return
        self._runner_now().submit(PySpawn(job.key, job.cwd, job_bytes, self._preload(job), job.log_path))

    def _preload(self, job: Job) -> tuple[str, ...]:
        """What the fork server may import once for every child: the modules the callable's
        module imports at its top level (the server skips those the project provides)."""
        ref = (job.cwd, job.python or "")
        if ref not in self._preloads:
            self._preloads[ref] = top_level_imports(job.cwd, ref[1].partition(":")[0])
        return self._preloads[ref]

    # -- the interface ----------------------------------------------------------
    def submit(self, job: Job) -> None:
        if job.cmd is not None:
            self._submit_cmd(job)
        else:
            self._submit_python(job)

    def wait_next(self) -> Outcome:
        while True:  # a timeout keeps the main thread responsive to SIGINT
            try:
                got = self._done.get(timeout=0.2)
            except queue.Empty:
                if self._runner is not None and not self._runner.alive:
                    raise ExecutorError(
                        f"the run was stopped: {self._runner.error or 'pipetool I/O thread ended'}") from None
                continue
            if isinstance(got, _Failure):
                raise ExecutorError(f"the run was stopped: {got.message}")
            return got

    def cancel_all(self) -> None:
        """Terminate running jobs (whole process groups: commands and Python children)."""
        if self._runner is None:
            return
        children = self._runner.terminate(signal.SIGTERM)
        if not self._runner.wait_exited(children, TERM_GRACE_S):
            for c in children:
                if c.pid is not None and c.rc is None:
                    signal_group(c.pid, signal.SIGKILL)
            self._runner.wait_exited(children, KILL_WAIT_S)

    def close(self) -> None:
        if self._null_fd is not None:
            os.close(self._null_fd)
            self._null_fd = None
        if self._runner is not None:
            self._runner.close()
            self._runner = None


def top_level_imports(root: str, module: str) -> tuple[str, ...]:
    """The absolute imports at the top level of `module` (its `try:` blocks included),
    and the module itself: names for the fork server to import once, where installed."""
    from ..fingerprint.modules import installed_module_file, module_file, module_info

    names = [module]
    try:
        path = module_file(root, module) or installed_module_file(root, module)
        tree = module_info(path).tree if path else None
    except (OSError, ValueError):
        tree = None
    body = list(tree.body) if tree is not None else []
    for stmt in body:
        if isinstance(stmt, ast.Try):
            body.extend(stmt.body)
        elif isinstance(stmt, ast.Import):
            names.extend(a.name for a in stmt.names)
        elif isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module:
            names.append(stmt.module)
    return tuple(dict.fromkeys(names))
