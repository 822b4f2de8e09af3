"""The run loop: decide each target once its upstream is done, run the stale ones, record.

A ready queue fed by completed jobs: a target starts as soon as its own upstream targets
are done. Staleness is decided by the pure `plan.decide`; the executor is behind the
small `Executor` interface; a target is recorded only after it succeeded and its outs exist.
"""
from __future__ import annotations

import os
import shutil
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from ..fingerprint import Trace, observe, observe_outs
from ..graph import Graph
from ..hashing import Hasher
from ..plan import FRESH, Record, decide
from ..spec.model import Pipeline, Target
from .jobs import Executor, Job, Outcome

BUILT, SKIPPED, FAILED, NOT_RUN = "built", "skipped", "failed", "not-run"


@dataclass
class TargetResult:
    action: str
    reason: str = ""
    duration_s: float = 0.0
    fingerprint: str = ""
    outs: dict[str, str | None] = field(default_factory=dict)


@dataclass
class RunOptions:
    jobs: int
    keep_going: bool = False
    forced: frozenset = frozenset()
    run_id: str = ""
    log_dir: str = ""
    params_file: str = ""


class Reporter:
    """What the scheduler tells the user; see render.py for the terminal one."""

    def started(self, name: str, reasons: tuple[str, ...]) -> None: ...
    def finished(self, name: str, result: TargetResult) -> None: ...
    def failed(self, name: str, message: str, log_tail: str, log_path: str) -> None: ...


def run_targets(
    p: Pipeline,
    g: Graph,
    selected: list[str],
    hasher: Hasher,
    records: dict[str, Record],
    record: Callable[[str, Trace, dict], None],
    make_executor: Callable[[], Executor],
    reporter: Reporter,
    opts: RunOptions,
    job_kwargs: Callable[[Target], tuple[dict, tuple]],
    results: dict[str, TargetResult],
) -> None:
    """Run what is stale among `selected` (a topological order), filling `results`.

    On KeyboardInterrupt, running children are terminated, `results` shows what
    finished (the running ones as failed, the rest not-run), and the interrupt propagates.
    """
    chosen = set(selected)
    waiting = {n: sum(1 for u in g.upstream[n] if u in chosen) for n in selected}
    ready = deque(n for n in selected if waiting[n] == 0)
    traces: dict[str, Trace] = {}
    running: dict[str, float] = {}
    executor: Executor | None = None
    stop = False

    def complete(name: str) -> None:
        for d in g.downstream[name]:
            if d in waiting:
                waiting[d] -= 1
                if waiting[d] == 0:
                    ready.append(d)

    def block_downstream(name: str) -> None:
        for d in sorted(g.closure_down([name]) - {name}):
            if d in chosen and d not in results:
                results[d] = TargetResult(NOT_RUN, f"upstream failed: {name}")

    try:
        while ready or running:
            while ready and len(running) < opts.jobs and not stop:
                name = ready.popleft()
                if name in results:  # blocked by a failure upstream
                    continue
                t = p.targets[name]
                trace = observe(p, t, hasher)
                outs = observe_outs(t, hasher)
                verdict = decide(trace, outs, records.get(name), always=t.always, forced=name in opts.forced)
                if verdict.state == FRESH:
                    results[name] = TargetResult(SKIPPED, "up to date", 0.0, trace.fingerprint, outs)
                    complete(name)
                    continue
                traces[name] = trace
                reporter.started(name, verdict.reasons)
                _prepare_outs(p.root, t, hasher)
                if executor is None:
                    executor = make_executor()
                executor.submit(_job(p, t, opts, job_kwargs))
                running[name] = time.perf_counter()
                results[name] = TargetResult("running", "; ".join(verdict.reasons), 0.0, trace.fingerprint)
            if not running:
                break
            assert executor is not None
            outcome = executor.wait_next()
            name = outcome.target
            running.pop(name, None)
            res = results[name]
            res.duration_s = outcome.duration_s
            t = p.targets[name]
            ok, message = outcome.ok, outcome.message
            if ok:
                for o in t.outs:
                    hasher.forget(o)
                outs = observe_outs(t, hasher)
                missing = [o for o, dgst in outs.items() if dgst is None]
                if missing:
                    ok, message = False, f"did not write its out {missing[0]}" + (
                        f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            if ok:
                record(name, traces[name], outs)
                res.action, res.outs = BUILT, outs
                reporter.finished(name, res)
                complete(name)
            else:
                res.action = FAILED
                res.reason = message
                reporter.failed(name, message, _tail(opts, name), _log_path(opts, name, "err"))
                block_downstream(name)
                if not opts.keep_going:
                    stop = True
    except BaseException:
        if executor is not None:
            executor.cancel_all()
        for name in running:
            results[name].action = FAILED
            results[name].reason = "interrupted"
        for n in selected:
            if n not in results:
                results[n] = TargetResult(NOT_RUN, "interrupted")
        raise
    finally:
        if executor is not None:
            executor.close()
    for n in selected:
        if n not in results:
            results[n] = TargetResult(NOT_RUN, "stopped after a failure")


def _log_path(opts: RunOptions, name: str, stream: str) -> str:
    return os.path.join(opts.log_dir, f"{name}.{stream}")


def _tail(opts: RunOptions, name: str, lines: int = 20) -> str:
    for stream in ("err", "out"):
        try:
            with open(_log_path(opts, name, stream), "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if text.strip():
            return "\n".join(text.rstrip("\n").splitlines()[-lines:])
    return ""


def _prepare_outs(root: str, t: Target, hasher: Hasher) -> None:
    """Remove old outs (so a command that fails to write one is caught) and make parents."""
    for o in t.outs:
        path = os.path.join(root, o.rstrip("/"))
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        os.makedirs(os.path.dirname(path) or root, exist_ok=True)
        hasher.forget(o)


def _job(p: Pipeline, t: Target, opts: RunOptions, job_kwargs) -> Job:
    env = {
        "PIPETOOL_PARAMS": opts.params_file,
        "PIPETOOL_RUN_ID": opts.run_id,
        "PIPETOOL_TARGET": t.name,
    }
    out, err = _log_path(opts, t.name, "out"), _log_path(opts, t.name, "err")
    if t.cmd is not None:
        return Job(t.name, p.root, env, out, err, cmd=t.cmd)
    kwargs, ambiguous = job_kwargs(t)
    return Job(t.name, p.root, env, out, err, python=t.python, kwargs=kwargs, ambiguous=ambiguous)
