"""The run loop: decide each target once its upstream is done, run the stale ones, record.

A ready queue fed by completed jobs: a target starts as soon as its own upstream targets
are done. Staleness is decided by the pure `plan.decide`; the executor is behind the
small `Executor` interface; a target is recorded only after it succeeded and its outs exist.
"""
from __future__ import annotations

import os
import shutil
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from ..fingerprint.trace import Trace, observe, observe_outs
from ..graph import Graph
from ..fingerprint.hashing import Hasher
from ..plan import FRESH, decide
from ..store.records import Record
from ..spec.model import Pipeline, Target
from .jobs import Executor, Job, Outcome
from .slots import Slots

BUILT, RESTORED, SKIPPED, FAILED, NOT_RUN = "built", "restored", "skipped", "failed", "not-run"


@dataclass
class TargetResult:
    action: str
    reason: str = ""
    duration_s: float = 0.0
    fingerprint: str = ""
    outs: dict[str, str | None] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)  # {"name", "ok", "message"} per check


CHECK_SEP = "\0check"  # a check job's key: TARGET + CHECK_SEP + index


@dataclass
class RunOptions:
    jobs: int
    keep_going: bool = False
    forced: frozenset = frozenset()
    run_id: str = ""
    log_dir: str = ""
    params_file: str = ""
    resources: dict[str, float] = field(default_factory=dict)  # --resources: slots held per target


class Reporter(Protocol):
    """What the scheduler tells the user; see render.py for the terminal one."""

    def started(self, name: str, reasons: tuple[str, ...]) -> None: ...
    def finished(self, name: str, result: TargetResult) -> None: ...
    def restored(self, name: str, reason: str) -> None: ...
    def failed(self, name: str, message: str, log_tail: str, log_path: str) -> None: ...


class RunHooks(Protocol):
    """What a run does around the scheduler: record, restore from the run cache, run."""

    def record(self, name: str, trace: Trace, outs: dict[str, str | None], result: TargetResult) -> None: ...
    def restore(self, target: Target, trace: Trace) -> tuple[dict[str, str | None] | None, str]: ...
    def make_executor(self) -> Executor: ...
    def job_kwargs(self, target: Target) -> tuple[dict, tuple]: ...


def run_targets(
    p: Pipeline,
    g: Graph,
    selected: list[str],
    hasher: Hasher,
    records: dict[str, Record],
    hooks: RunHooks,
    reporter: Reporter,
    opts: RunOptions,
    results: dict[str, TargetResult],
) -> None:
    """Run what is stale among `selected` (a topological order), filling `results`.

    On KeyboardInterrupt, running children are terminated, `results` shows what
    finished (the running ones as failed, the rest not-run), and the interrupt propagates.
    """
    _Scheduler(p, g, selected, hasher, records, hooks, reporter, opts, results).run()


class _Scheduler:
    """One run's loop. Targets move: waiting (upstream not done) -> ready -> judged
    (decided stale, outs cleared) -> running -> done. Judging ahead while the slots are
    full means a freed slot is refilled at once.

    With declared resources, a judged target starts only when its resources are free, and
    the first judged target that fits goes first: one waiting for a GPU does not hold up
    those behind it that need none. It holds them until it is done, checks included."""

    def __init__(self, p, g, selected, hasher, records, hooks, reporter, opts, results):
        self.p, self.g, self.selected, self.hasher = p, g, selected, hasher
        self.records, self.hooks = records, hooks
        self.reporter, self.opts, self.results = reporter, opts, results
        self.chosen = set(selected)
        self.waiting = {n: sum(1 for u in g.upstream[n] if u in self.chosen) for n in selected}
        self.ready = deque(n for n in selected if self.waiting[n] == 0)
        self.judged: deque[tuple[str, tuple[str, ...]]] = deque()
        self.traces: dict[str, Trace] = {}
        self.running: set[str] = set()
        self.slots = Slots(opts.resources)
        self.holding: dict[str, tuple] = {}  # target -> the declared resources it holds
        self.executor: Executor | None = None
        self.stop = False

    def run(self) -> None:
        try:
            self._loop()
        except BaseException:
            if self.executor is not None:
                self.executor.cancel_all()
            for key in self.running:
                res = self.results[key.partition(CHECK_SEP)[0]]
                res.action, res.reason = FAILED, "interrupted"
            self._not_run("interrupted")
            raise
        finally:
            if self.executor is not None:
                self.executor.close()
        self._not_run("stopped after a failure")

    def _loop(self) -> None:
        jobs = self.opts.jobs
        while True:
            self._judge_ahead(jobs)
            while len(self.running) < jobs and not self.stop and self._launch_next():
                self._judge_ahead(jobs)
            if not self.running:
                break
            assert self.executor is not None
            outcome = self.executor.wait_next()
            self.running.discard(outcome.target)
            # Refill the freed slot before the bookkeeping of the finished target, unless
            # it holds resources: they may come free there, for a target waiting on them.
            if not self.stop and outcome.target.partition(CHECK_SEP)[0] not in self.holding:
                self._launch_next()
            self._finish(outcome)

    def _launch_next(self) -> bool:
        """Launch the first judged target whose resources are free; False if none."""
        if not self.slots.capacity:
            if not self.judged:
                return False
            self._launch(*self.judged.popleft())
            return True
        for i, (name, _) in enumerate(self.judged):
            if self.slots.fits(self.p.targets[name].resources):
                entry = self.judged[i]
                del self.judged[i]
                self._launch(*entry)
                return True
        return False

    def _startable(self, jobs: int) -> int:
        """How many judged targets could start now, counted up to `jobs`."""
        if not self.slots.capacity:
            return len(self.judged)
        n = 0
        for name, _ in self.judged:
            if self.slots.fits(self.p.targets[name].resources):
                n += 1
                if n >= jobs:
                    break
        return n

    def _judge_ahead(self, jobs: int) -> None:
        """Decide ready targets until `jobs` stale ones that could start wait for a slot;
        fresh ones are skipped on the spot (which may make their downstream ready)."""
        startable = self._startable(jobs)
        while self.ready and startable < jobs and not self.stop:
            name = self.ready.popleft()
            if name in self.results:  # blocked by a failure upstream
                continue
            t = self.p.targets[name]
            trace = observe(self.p, t, self.hasher)
            outs = observe_outs(t, self.hasher)
            verdict = decide(trace, outs, self.records.get(name), always=t.always,
                             forced=name in self.opts.forced)
            if verdict.state == FRESH:
                self.results[name] = TargetResult(SKIPPED, "up to date", 0.0, trace.fingerprint, outs)
                self._complete(name)
                continue
            self.traces[name] = trace
            self.judged.append((name, verdict.reasons))
            if self.slots.fits(t.resources):
                startable += 1

    def _launch(self, name: str, reasons: tuple[str, ...]) -> None:
        t = self.p.targets[name]
        trace = self.traces[name]
        if name not in self.opts.forced and not t.always:
            outs, why = self.hooks.restore(t, trace)
            if outs is not None:
                for o in t.outs:
                    self.hasher.forget(o)
                res = TargetResult(RESTORED, why, 0.0, trace.fingerprint, dict(outs))
                self.results[name] = res
                self.hooks.record(name, trace, outs, res)
                self.reporter.restored(name, why)
                self._complete(name)
                return
            if why:  # an entry was there but could not be used: say so, then build
                reasons = reasons + (why,)
        if self.executor is None:  # before anything is touched: it may refuse (a cluster)
            self.executor = self.hooks.make_executor()
        self.reporter.started(name, reasons)
        _prepare_outs(self.p.root, t, self.hasher)
        need = tuple((r, amount) for r, amount in t.resources if r in self.slots.capacity)
        if need:
            self.slots.take(need)
            self.holding[name] = need
        self.executor.submit(_job(self.p, t, self.opts, self.hooks.job_kwargs))
        self.running.add(name)
        self.results[name] = TargetResult("running", "; ".join(reasons), 0.0, self.traces[name].fingerprint)

    def _finish(self, outcome: Outcome) -> None:
        if CHECK_SEP in outcome.target:
            self._check_done(outcome)
            return
        name = outcome.target
        res = self.results[name]
        res.duration_s = outcome.duration_s
        t = self.p.targets[name]
        ok, message = outcome.ok, outcome.message
        if ok:
            for o in t.outs:
                self.hasher.forget(o)
            outs = observe_outs(t, self.hasher)
            missing = [o for o, dgst in outs.items() if dgst is None]
            if missing:
                ok, message = False, f"did not write its out {missing[0]}" + (
                    f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        if not ok:
            self._fail(name, message, _tail(self.opts, name), _log_path(self.opts, name))
            return
        res.outs = outs
        if t.checks:  # judged by its checks before it counts as built
            res.checks = [{"name": c.name, "ok": None, "message": ""} for c in t.checks]
            for i, c in enumerate(t.checks):
                self.executor.submit(_check_job(self.p, t, i, self.opts, self.hooks.job_kwargs))
                self.running.add(f"{name}{CHECK_SEP}{i}")
            return
        self._built(name)

    def _release(self, name: str) -> None:
        self.slots.give(self.holding.pop(name, ()))

    def _built(self, name: str) -> None:
        self._release(name)
        res = self.results[name]
        res.action = BUILT
        self.hooks.record(name, self.traces[name], res.outs, res)
        self.reporter.finished(name, res)
        self._complete(name)

    def _check_done(self, outcome: Outcome) -> None:
        name, _, idx = outcome.target.partition(CHECK_SEP)
        res = self.results[name]
        entry = res.checks[int(idx)]
        entry["ok"] = outcome.ok
        entry["message"] = "" if outcome.ok else (_tail(self.opts, outcome.target, 1) or outcome.message)
        res.duration_s += outcome.duration_s
        if any(c["ok"] is None for c in res.checks):
            return
        failed = [(i, c) for i, c in enumerate(res.checks) if not c["ok"]]
        if not failed:
            self._built(name)
            return
        i, c = failed[0]
        key = f"{name}{CHECK_SEP}{i}"
        self._fail(name, f"check failed: {c['name']}: {c['message']}", _tail(self.opts, key),
                   _log_path(self.opts, key))

    def _fail(self, name: str, message: str, tail: str, log: str) -> None:
        self._release(name)
        res = self.results[name]
        res.action, res.reason = FAILED, message
        self.hooks.record(name, self.traces[name], {}, res)
        self.reporter.failed(name, message, tail, log)
        for d in sorted(self.g.closure_down([name]) - {name}):
            if d in self.chosen and d not in self.results:
                self.results[d] = TargetResult(NOT_RUN, f"upstream failed: {name}")
        if not self.opts.keep_going:
            self.stop = True

    def _complete(self, name: str) -> None:
        for d in self.g.downstream[name]:
            if d in self.waiting:
                self.waiting[d] -= 1
                if self.waiting[d] == 0:
                    self.ready.append(d)

    def _not_run(self, reason: str) -> None:
        for n in self.selected:
            if n not in self.results:
                self.results[n] = TargetResult(NOT_RUN, reason)


def _log_path(opts: RunOptions, key: str) -> str:
    """TARGET.log, or TARGET.check-N.log for a target's Nth check."""
    name, sep, idx = key.partition(CHECK_SEP)
    return os.path.join(opts.log_dir, f"{name}.check-{idx}.log" if sep else f"{name}.log")


def _tail(opts: RunOptions, name: str, lines: int = 20) -> str:
    try:
        with open(_log_path(opts, name), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


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


def _check_job(p: Pipeline, t: Target, i: int, opts: RunOptions, job_kwargs) -> Job:
    """A check runs like its target: cwd = the root, the same env; a callable check gets
    the same keyword arguments the target's callable would."""
    check = t.checks[i]
    return _make_job(p, t, f"{t.name}{CHECK_SEP}{i}", check.cmd, check.python, opts, job_kwargs)


def _job(p: Pipeline, t: Target, opts: RunOptions, job_kwargs) -> Job:
    return _make_job(p, t, t.name, t.cmd, t.python, opts, job_kwargs)


def _make_job(p: Pipeline, t: Target, key: str, cmd: str | None, python: str | None,
              opts: RunOptions, job_kwargs) -> Job:
    env = {"PIPETOOL_PARAMS": opts.params_file, "PIPETOOL_RUN_ID": opts.run_id, "PIPETOOL_TARGET": t.name}
    log = _log_path(opts, key)
    if cmd is not None:
        return Job(key, p.root, env, log, cmd=cmd)
    kwargs, ambiguous = job_kwargs(t)
    return Job(key, p.root, env, log, python=python, kwargs=kwargs, ambiguous=ambiguous)
