"""Runs a `python:` target in the process it is given (a child forked for the job, or a
Dask worker's child): cwd, env, output, keyword arguments, a traceback on failure."""
from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import os
import pickle
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from .jobs import Job, Outcome


@dataclass(frozen=True)
class Context:
    """What a callable may ask for as `ctx`."""

    run_id: str
    target: str
    logger: logging.Logger


def _purge_project_modules(root: str) -> None:
    """Forget project modules this process imported before (none, in a fresh child), so
    edited code is seen."""
    prefix = os.path.join(root, "")
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if f and os.path.abspath(f).startswith(prefix):
            del sys.modules[name]


def _resolve(ref: str):
    module, _, qual = ref.partition(":")
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def call_kwargs(func, job: Job, ctx: Context) -> dict:
    """Keyword arguments chosen by the callable's signature."""
    candidates = dict(job.kwargs)
    candidates["ctx"] = ctx
    sig = inspect.signature(func)
    if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        return {k: v for k, v in candidates.items() if k not in job.ambiguous}
    kwargs = {}
    for name, p in sig.parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
            continue
        if name in job.ambiguous:
            raise TypeError(f"parameter '{name}' is ambiguous: two declared params end in '{name}'")
        if name in candidates:
            kwargs[name] = candidates[name]
    return kwargs


def _call(job: Job) -> tuple[bool, str]:
    """Import and call the job's callable here, with its env, cwd and `ctx`; a failure is
    its traceback on stderr and a one-line message, never raised."""
    logger = logging.getLogger(f"pipetool.{job.key.target}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        os.environ.update(job.env)
        os.chdir(job.cwd)
        if sys.path[:1] != [job.cwd]:
            sys.path.insert(0, job.cwd)
        _purge_project_modules(job.cwd)
        func = _resolve(job.python or "")
        ctx = Context(job.env.get("PIPETOOL_RUN_ID", ""), job.key.target, logger)
        kwargs = call_kwargs(func, job, ctx)
        kwargs = {k: ([Path(p) for p in v] if k in ("deps", "outs") else v) for k, v in kwargs.items()}
        func(**kwargs)
        return True, ""
    except BaseException as exc:  # the target's failure is reported, never raised here
        sys.stdout.flush()  # what it printed comes before its traceback
        traceback.print_exc()
        return False, f"{type(exc).__name__}: {exc}".strip()


def run_python_job(job: Job) -> Outcome:
    """Run the job in this process with its output in its log, and put the process back
    as it was (cwd, env, fds 1 and 2) afterwards: the Dask worker's child runs this."""
    start = time.perf_counter()
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    log_fd = os.open(job.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    keep_out, keep_err = os.dup(1), os.dup(2)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    try:
        ok, message = _call(job)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(keep_out, 1)
        os.dup2(keep_err, 2)
        for fd in (keep_out, keep_err, log_fd):
            os.close(fd)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return Outcome(job.key, ok, message, time.perf_counter() - start)


def run_forked(job_bytes: bytes, out_fd: int, res_fd: int) -> NoReturn:
    """The body of a child the fork server made for one job: its own session (its process
    group is stopped on an interrupt), fds 1 and 2 on `out_fd` (pipetool writes the log),
    the pickled `Outcome` to `res_fd`. It ends when the callable returns: nothing it
    changed in the process (modules, umask, env, threads) reaches another target."""
    code = 1
    try:
        start = time.perf_counter()
        os.setsid()
        os.set_inheritable(res_fd, False)  # a process the callable starts must not hold it
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        job: Job = pickle.loads(job_bytes)
        ok, message = _call(job)
        sys.stdout.flush()
        sys.stderr.flush()
        data = memoryview(pickle.dumps(Outcome(job.key, ok, message, time.perf_counter() - start)))
        while data:
            data = data[os.write(res_fd, data):]
        code = 0
    except BaseException:  # nothing may escape a forked child: the parent reports its death
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
    finally:
        os._exit(code)
