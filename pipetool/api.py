"""The Python API: everything the CLI does, as functions returning plain data."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from .fingerprint.trace import observe, observe_outs
from .plan import FRESH, Verdict, plan
from .project import Project, open_project
from .spec.loader import load as _load
from .spec.model import Pipeline
from .spec.params import parse_overrides

if TYPE_CHECKING:  # the run path's modules load only when something runs
    from .runflow import RunResult


def load(file: str | None = None, cwd: str | None = None, set: Iterable[str] | dict | None = None) -> Pipeline:
    """Load and validate a pipeline (`set`: `-S` overrides as "k=v" strings or a dict)."""
    return _load(file, cwd, _overrides(set))


def _overrides(set_: Iterable[str] | dict | None) -> dict[str, Any]:
    if not set_:
        return {}
    if isinstance(set_, dict):
        return dict(set_)
    return parse_overrides(list(set_))


@dataclass
class StatusReport:
    targets: dict[str, Verdict]

    def names(self, state: str) -> list[str]:
        return [n for n, v in self.targets.items() if v.state == state]

    @property
    def up_to_date(self) -> bool:
        return all(v.state == FRESH for v in self.targets.values())

    def to_json(self) -> dict[str, Any]:
        return {"targets": {n: {"state": v.state, "reasons": list(v.reasons)} for n, v in self.targets.items()}}


def _verdicts(proj: Project, selected: list[str], forced: frozenset = frozenset(),
              records=None) -> dict[str, Verdict]:
    p, h = proj.pipeline, proj.hasher
    traces = {n: observe(p, p.targets[n], h) for n in selected}
    outs = {n: observe_outs(p.targets[n], h) for n in selected}
    always = frozenset(n for n in selected if p.targets[n].always)
    return plan(selected, proj.graph.upstream, proj.graph.dep_producers, traces, outs,
                proj.records() if records is None else records,
                always=always, forced=forced)


def status(
    targets: Iterable[str] = (), *, file: str | None = None, cwd: str | None = None,
    set: Iterable[str] | dict | None = None,
) -> StatusReport:
    """What is stale or pending among the targets (all when none) and why; runs nothing."""
    proj = open_project(file, cwd, _overrides(set))
    try:
        _, selected = proj.selection(targets)
        return StatusReport(_verdicts(proj, selected))
    finally:
        proj.close()


class _Quiet:
    def started(self, name, reasons): pass
    def finished(self, name, result): pass
    def restored(self, name, reason): pass
    def failed(self, name, message, log_tail, log_path): pass
    def waiting(self, message): pass
    def dry_run(self, name, verdict): pass


def run(
    targets: Iterable[str] = (), *, jobs: int | None = None, force: bool = False,
    keep_going: bool = False, dry_run: bool = False, set: Iterable[str] | dict | None = None,
    file: str | None = None, cwd: str | None = None, wait: bool = True, reporter: Any = None,
    argv: list[str] | None = None, executor: str = "local", scheduler: str | None = None,
    resources: Iterable[str] | dict | None = None, remote: str | None = None, push: bool = True,
    read_only: bool = False,
) -> RunResult:
    """Build the targets (all when none) and whatever they need that is stale.

    `executor="dask"` runs them on a Dask cluster (`scheduler`: its address; none: a local
    one sized by `jobs`); `resources` ("gpu=2" strings or a mapping) is what the machine
    has; `remote` (an fsspec URL) overrides the pipeline's remote cache; `push=False` or
    `read_only=True` keep this run from uploading to it."""
    from .prerun import check_callables, check_outs_inside, check_resources
    from .runconfig import make_config
    from .runflow import dry_run_result, execute_run, head, new_run_id, sigterm_interrupts
    from .store.projectlock import acquire

    rep = reporter or _Quiet()
    config = make_config(executor, scheduler, resources, remote, push, read_only)
    overrides = _overrides(set)
    proj = open_project(file, cwd, overrides)
    try:
        p = proj.pipeline
        named, selected = proj.selection(targets)
        forced = frozenset((named or selected) if force else ())
        if dry_run:
            return dry_run_result(_verdicts(proj, selected, forced), rep)
        check_callables(p, selected)
        check_outs_inside(p, selected)
        check_resources(p, selected, config.capacity)
        run_id = new_run_id()
        lock = acquire(p.root, f"run {run_id} (pid {os.getpid()})", wait, rep.waiting)
        try:
            with sigterm_interrupts():
                return execute_run(proj, selected, forced, run_id, jobs, keep_going,
                                   rep, argv or sys.argv, head(proj), "run", config)
        finally:
            lock.release()
    finally:
        proj.close()


def dag(*, file: str | None = None, cwd: str | None = None, format: str = "ascii") -> str:
    """The graph as text: ascii, mermaid or dot."""
    from .render import render_dag

    p = _load(file, cwd)
    from .graph import build_graph

    return render_dag(p, p.derived("graph", lambda: build_graph(p)), format)
