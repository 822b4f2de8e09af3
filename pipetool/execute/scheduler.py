"""The run loop: decide each target once its upstream is done, run the stale ones, record.

A ready queue fed by completed jobs: a target starts as soon as its own upstream targets
are done. Staleness is decided by `judge` (the pure `plan.decide` over the workspace now),
the workspace and the store sit behind `RunHooks`, the executor behind `Executor`; a
target is recorded only after it succeeded and its outs exist.
"""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from ..errors import PipetoolError
from ..graph import Graph
from ..judge import Judgement
from ..spec.model import Pipeline, Target
from .jobs import Executor, Job, JobKey, Outcome
from .slots import Slots

if TYPE_CHECKING:
    from ..fingerprint.trace import Trace
    from ..reporting import Reporter

# What a run did with a target (the manifest's `action`), and the two transient states:
# "running" while its job is out, "would-run" in a dry run's result.
Action = Literal["built", "restored", "skipped", "failed", "not-run", "removed", "running", "would-run"]
BUILT: Final = "built"
RESTORED: Final = "restored"
SKIPPED: Final = "skipped"
FAILED: Final = "failed"
NOT_RUN: Final = "not-run"
REMOVED: Final = "removed"  # a partition whose item is gone: its outs left the workspace
RUNNING: Final = "running"
WOULD_RUN: Final = "would-run"


@dataclass
class TargetResult:
    action: Action
    reason: str = ""
    duration_s: float = 0.0
    fingerprint: str = ""
    outs: dict[str, str | None] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)  # {"name", "ok", "message"} per check


@dataclass(frozen=True)
class RunOptions:
    jobs: int
    keep_going: bool = False
    forced: frozenset[str] = frozenset()
    run_id: str = ""
    log_dir: str = ""
    params_file: str = ""
    resources: Mapping[str, float] = field(default_factory=dict)  # --resources: slots held per target


@dataclass(frozen=True)
class Growth:
    """The graph after a foreach placeholder became its partitions (SPEC §10)."""

    pipeline: Pipeline
    graph: Graph
    added: tuple[str, ...]  # the partitions, to be planned like any target
    removed: Mapping[str, str]  # partitions whose item is gone, taken out of the workspace -> why


class RunHooks(Protocol):
    """The workspace and the store as the run loop sees them (Ninja's DiskInterface and
    build log in one): judge a target now, clear and observe its outs, restore it from a
    cache, record what happened, and make the executor. Tests pass a fake."""

    def judge(self, target: Target, forced: bool) -> Judgement: ...
    def restore(self, target: Target, trace: Trace) -> tuple[dict[str, str | None] | None, str]: ...
    def prepare_outs(self, target: Target) -> None: ...
    def outs_now(self, target: Target) -> dict[str, str | None]: ...
    def record(self, name: str, trace: Trace, outs: dict[str, str | None], result: TargetResult) -> None: ...
    def make_executor(self) -> Executor: ...
    def expand(self, name: str) -> Growth: ...
    def job_kwargs(self, target: Target) -> tuple[dict[str, Any], tuple[str, ...]]: ...


def run_targets(
    p: Pipeline,
    g: Graph,
    selected: list[str],
    hooks: RunHooks,
    reporter: Reporter,
    opts: RunOptions,
    results: dict[str, TargetResult],
) -> None:
    """Run what is stale among `selected` (a topological order), filling `results`.

    On KeyboardInterrupt, running children are terminated, `results` shows what
    finished (the running ones as failed, the rest not-run), and the interrupt propagates.
    """
    _Scheduler(p, g, selected, hooks, reporter, opts, results).run()


class _Scheduler:
    """One run's loop. Targets move: waiting (upstream not done) -> ready -> judged
    (decided stale, outs cleared) -> running -> done. Judging ahead while the slots are
    full means a freed slot is refilled at once.

    With declared resources, a judged target starts only when its resources are free, and
    the first judged target that fits goes first: one waiting for a GPU does not hold up
    those behind it that need none. It holds them until it is done, checks included."""

    def __init__(self, p: Pipeline, g: Graph, selected: list[str], hooks: RunHooks, reporter: Reporter,
                 opts: RunOptions, results: dict[str, TargetResult]):
        self.p, self.g, self.selected = p, g, list(selected)
        self.hooks, self.reporter, self.opts, self.results = hooks, reporter, opts, results
        self.chosen = set(selected)
        self.waiting = {n: sum(1 for u in g.upstream[n] if u in self.chosen) for n in selected}
        self.ready = deque(n for n in selected if self.waiting[n] == 0)
        self.judged: deque[tuple[str, tuple[str, ...]]] = deque()
        self.traces: dict[str, Trace] = {}
        self.running: set[JobKey] = set()
        self.slots = Slots(opts.resources)
        self.holding: dict[str, tuple[tuple[str, float], ...]] = {}  # target -> resources it holds
        self.executor: Executor | None = None
        self.stop = False
        self.done: set[str] = set()  # complete: their downstream may start

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            if self.executor is not None:
                self.executor.cancel_all()
            # Ctrl-C, SIGTERM, or pipetool's own machinery failing (its message says how)
            why = exc.message if isinstance(exc, PipetoolError) else "interrupted"
            for key in self.running:
                res = self.results[key.target]
                res.action, res.reason = FAILED, why
            self._not_run(why)
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
            self.running.discard(outcome.key)
            # Refill the freed slot before the bookkeeping of the finished target, unless
            # it failed (nothing new starts after a failure without -k) or holds resources
            # (they may come free there, for a target waiting on them).
            if outcome.ok and not self.stop and outcome.key.target not in self.holding:
                self._launch_next()
            self._finish(outcome)

    def _launch_next(self) -> bool:
        """Launch the first judged target whose resources are free; False if none."""
        for i, (name, reasons) in enumerate(self.judged):
            if self.slots.fits(self.p.targets[name].resources):
                del self.judged[i]
                self._launch(name, reasons)
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
            if t.foreach is not None:  # what it reads is there now: make its partitions
                self._grow(name)
                continue
            j = self.hooks.judge(t, name in self.opts.forced or t.template in self.opts.forced)
            if j.verdict.fresh:
                self.results[name] = TargetResult(SKIPPED, "up to date", 0.0, j.trace.fingerprint, j.outs)
                self._complete(name)
                continue
            self.traces[name] = j.trace
            self.judged.append((name, j.verdict.reasons))
            if self.slots.fits(t.resources):
                startable += 1

    def _launch(self, name: str, reasons: tuple[str, ...]) -> None:
        t = self.p.targets[name]
        trace = self.traces[name]
        if name not in self.opts.forced and t.template not in self.opts.forced and not t.always:
            try:
                outs, why = self.hooks.restore(t, trace)
            except PipetoolError as exc:  # its old outs could not be moved out of the way
                self.reporter.started(name, reasons)
                self._refuse(name, reasons, exc.message)
                return
            if outs is not None:
                res = TargetResult(RESTORED, why, 0.0, trace.fingerprint, dict(outs))
                self.results[name] = res
                self.hooks.record(name, trace, outs, res)
                self.reporter.restored(name, why)
                self._complete(name)
                return
            if why:  # an entry was there but could not be used: say so, then build
                reasons = (*reasons, why)
        if self.executor is None:  # before anything is touched: it may refuse (a cluster)
            self.executor = self.hooks.make_executor()
        self.reporter.started(name, reasons)
        try:
            self.hooks.prepare_outs(t)
        except PipetoolError as exc:  # nothing is deleted that could not be put back
            self._refuse(name, reasons, exc.message)
            return
        need = tuple((r, amount) for r, amount in t.resources if r in self.slots.capacity)
        if need:
            self.slots.take(need)
            self.holding[name] = need
        key = JobKey(name)
        self.executor.submit(self._job(t, key, t.cmd, t.python))
        self.running.add(key)
        self.results[name] = TargetResult(RUNNING, "; ".join(reasons), 0.0, trace.fingerprint)

    def _refuse(self, name: str, reasons: tuple[str, ...], message: str) -> None:
        """Fail a target before its job started."""
        self.results[name] = TargetResult(RUNNING, "; ".join(reasons), 0.0, self.traces[name].fingerprint)
        self._fail(name, message, JobKey(name))

    def _job(self, t: Target, key: JobKey, cmd: str | None, python: str | None) -> Job:
        """A target's job, or one of its checks' (run like the target: cwd = the root, the
        same env; a callable check gets the keyword arguments the target's callable would)."""
        o = self.opts
        env = {"PIPETOOL_PARAMS": o.params_file, "PIPETOOL_RUN_ID": o.run_id, "PIPETOOL_TARGET": t.name}
        log = os.path.join(o.log_dir, key.log_name)
        if cmd is not None:
            return Job(key, self.p.root, env, log, cmd=cmd)
        kwargs, ambiguous = self.hooks.job_kwargs(t)
        return Job(key, self.p.root, env, log, python=python, kwargs=kwargs, ambiguous=ambiguous)

    def _finish(self, outcome: Outcome) -> None:
        if outcome.key.check is not None:
            self._check_done(outcome)
            return
        name = outcome.key.target
        res = self.results[name]
        res.duration_s = outcome.duration_s
        t = self.p.targets[name]
        ok, message = outcome.ok, outcome.message
        outs: dict[str, str | None] = {}
        if ok:
            outs = self.hooks.outs_now(t)
            missing = [o for o, dgst in outs.items() if dgst is None]
            if missing:
                ok, message = False, f"did not write its out {missing[0]}" + (
                    f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        if not ok:
            self._fail(name, message, outcome.key)
            return
        res.outs = outs
        if t.checks:  # judged by its checks before it counts as built
            assert self.executor is not None
            res.checks = [{"name": c.name, "ok": None, "message": ""} for c in t.checks]
            for i, c in enumerate(t.checks):
                key = JobKey(name, i)
                self.executor.submit(self._job(t, key, c.cmd, c.python))
                self.running.add(key)
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
        name, idx = outcome.key.target, outcome.key.check
        assert idx is not None
        res = self.results[name]
        entry = res.checks[idx]
        entry["ok"] = outcome.ok
        entry["message"] = "" if outcome.ok else (self._tail(outcome.key, 1) or outcome.message)
        res.duration_s += outcome.duration_s
        if any(c["ok"] is None for c in res.checks):
            return
        failed = [(i, c) for i, c in enumerate(res.checks) if not c["ok"]]
        if not failed:
            self._built(name)
            return
        i, c = failed[0]
        self._fail(name, f"check failed: {c['name']}: {c['message']}", JobKey(name, i))

    def _fail(self, name: str, message: str, key: JobKey) -> None:
        self._release(name)
        res = self.results[name]
        res.action, res.reason = FAILED, message
        self.hooks.record(name, self.traces[name], {}, res)
        self.reporter.failed(name, message, self._tail(key), os.path.join(self.opts.log_dir, key.log_name))
        for d in sorted(self.g.closure_down([name]) - {name}):
            if d in self.chosen and d not in self.results:
                self.results[d] = TargetResult(NOT_RUN, f"upstream failed: {name}")
        if not self.opts.keep_going:
            self.stop = True

    def _grow(self, name: str) -> None:
        """Replace the placeholder `name` by its partitions: they are planned like any
        target; whatever waited on the placeholder now waits on them."""
        growth = self.hooks.expand(name)
        self.p, self.g = growth.pipeline, growth.graph
        self.chosen.discard(name)
        self.selected.remove(name)
        self.waiting.pop(name, None)
        self.done.add(name)
        for gone, why in growth.removed.items():
            self.results[gone] = TargetResult(REMOVED, why)
            self.reporter.removed(gone, why)
        self.selected.extend(growth.added)
        self.chosen.update(growth.added)
        for n in [*self.waiting, *growth.added]:
            if n in self.waiting and (self.waiting[n] == 0 or n in self.results):
                continue  # ready, judged, running or done already
            self.waiting[n] = sum(1 for u in self.g.upstream[n] if u in self.chosen and u not in self.done)
            if self.waiting[n] == 0:
                self.ready.append(n)

    def _complete(self, name: str) -> None:
        self.done.add(name)
        for d in self.g.downstream[name]:
            if d in self.waiting:
                self.waiting[d] -= 1
                if self.waiting[d] == 0:
                    self.ready.append(d)

    def _not_run(self, reason: str) -> None:
        for n in self.selected:
            if n not in self.results:
                self.results[n] = TargetResult(NOT_RUN, reason)

    def _tail(self, key: JobKey, lines: int = 20) -> str:
        """The last lines of a job's log ("" when it wrote nothing)."""
        try:
            with open(os.path.join(self.opts.log_dir, key.log_name), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])
