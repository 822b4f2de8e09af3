"""The Python API: everything the CLI does, as functions returning plain data."""
from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, PipelineError
from .fingerprint import observe, observe_outs
from .plan import FRESH, Record, Verdict, plan
from .project import Project, ensure_dir, open_project
from .spec.loader import load as _load
from .spec.model import Pipeline, Target
from .spec.params import parse_overrides

if TYPE_CHECKING:  # the run path's modules load only when something runs
    from .execute.scheduler import TargetResult


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


def _verdicts(proj: Project, selected: list[str], forced: frozenset = frozenset()) -> dict[str, Verdict]:
    p, h = proj.pipeline, proj.hasher
    traces = {n: observe(p, p.targets[n], h) for n in selected}
    outs = {n: observe_outs(p.targets[n], h) for n in selected}
    always = frozenset(n for n in selected if p.targets[n].always)
    return plan(selected, proj.graph.upstream, proj.graph.dep_producers, traces, outs, proj.records(),
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


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, CI cancellation, `timeout`): stopped like Ctrl-C, exit 143."""


@dataclass
class RunResult:
    run_id: str | None
    status: str  # succeeded | failed | interrupted | dry-run
    targets: dict[str, "TargetResult"] = field(default_factory=dict)
    signal: int = 0  # the signal that interrupted the run, if any

    @property
    def exit_code(self) -> int:
        if self.status == "interrupted":
            return 128 + self.signal if self.signal else EXIT_INTERRUPTED
        return EXIT_FAILED if self.status == "failed" else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status,
                "targets": {n: asdict(r) for n, r in self.targets.items()}}


class _Quiet:
    def started(self, name, reasons): pass
    def finished(self, name, result): pass
    def failed(self, name, message, log_tail, log_path): pass
    def waiting(self, message): pass
    def dry_run(self, name, verdict): pass


def new_run_id() -> str:
    """Time-ordered as plain strings: base36 milliseconds, then 4 random hex digits."""
    import secrets

    ms = int(time.time() * 1000)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    s = ""
    while ms:
        ms, r = divmod(ms, 36)
        s = digits[r] + s
    return f"{s.rjust(9, '0')}{secrets.token_hex(2)}"


def run(
    targets: Iterable[str] = (), *, jobs: int | None = None, force: bool = False,
    keep_going: bool = False, dry_run: bool = False, set: Iterable[str] | dict | None = None,
    file: str | None = None, cwd: str | None = None, wait: bool = True, reporter: Any = None,
    argv: list[str] | None = None,
) -> RunResult:
    """Build the targets (all when none) and whatever they need that is stale."""
    from .execute.scheduler import TargetResult
    from .store.projectlock import acquire

    rep = reporter or _Quiet()
    overrides = _overrides(set)
    proj = open_project(file, cwd, overrides)
    try:
        p = proj.pipeline
        named, selected = proj.selection(targets)
        forced = frozenset((named or selected) if force else ())
        if dry_run:
            verdicts = _verdicts(proj, selected, forced)
            for n, v in verdicts.items():
                if v.state != FRESH:
                    rep.dry_run(n, v)
            return RunResult(None, "dry-run", {
                n: TargetResult("would-run" if v.state != FRESH else "skipped", "; ".join(v.reasons))
                for n, v in verdicts.items()})
        _check_callables(p, selected)
        _check_outs_inside(p, selected)
        run_id = new_run_id()
        lock = acquire(p.root, f"run {run_id} (pid {os.getpid()})", wait, rep.waiting)
        try:
            with _sigterm_interrupts():
                return _run_locked(proj, selected, forced, run_id, jobs, keep_going, rep, argv, overrides)
        finally:
            lock.release()
    finally:
        proj.close()


@contextmanager
def _sigterm_interrupts():
    """Turn SIGTERM into an interrupt, so running commands are stopped and records kept."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _run_locked(proj: Project, selected, forced, run_id, jobs, keep_going, rep, argv, overrides) -> RunResult:
    from .execute.scheduler import RunOptions, run_targets
    from .store import records as store_records
    from .store import runs as store_runs
    from .store.lockfile import file_digest, write_lock

    p = proj.pipeline
    conn = proj.conn
    if conn is None:
        raise PipelineError(f"cannot write pipetool's state under {p.root}/.pipetool")
    records = proj.records()  # read under the lock: another run may just have finished
    sdir = os.path.join(p.root, ".pipetool")
    params_file = os.path.join(sdir, "runs", run_id, "params.json")
    log_dir = os.path.join(sdir, "logs", run_id)
    store_runs.start(conn, run_id, None, argv or sys.argv, _now())
    built: list[str] = []

    def record(name: str, trace, outs: dict) -> None:
        store_records.save_record(conn, name, trace.fingerprint, trace.to_dict(), outs, run_id)
        records[name] = Record(trace.fingerprint, outs, trace.to_dict())
        built.append(name)

    def make_executor():
        from .execute.local import LocalExecutor

        # Made when the first target runs: a no-op run leaves no folders behind.
        ensure_dir(log_dir)
        ensure_dir(os.path.dirname(params_file))
        with open(params_file, "w", encoding="utf-8") as f:
            json.dump(p.params, f, indent=2, sort_keys=True, default=str)
        return LocalExecutor(jobs or os.cpu_count() or 1)

    opts = RunOptions(jobs=jobs or os.cpu_count() or 1, keep_going=keep_going, forced=forced,
                      run_id=run_id, log_dir=log_dir, params_file=params_file)
    results: dict[str, TargetResult] = {}
    status, signum = "succeeded", 0
    try:
        run_targets(p, proj.graph, selected, proj.hasher, records, record, make_executor, rep, opts,
                    lambda t: callable_kwargs(p, t), results)
        if any(r.action == "failed" for r in results.values()):
            status = "failed"
    except Terminated:
        status, signum = "interrupted", 15
    except KeyboardInterrupt:
        status, signum = "interrupted", 2
    finally:
        # The lock is derived from the records: rewrite it when something was built, the
        # targets changed, or someone else's hand changed the file since we wrote it.
        from .hashing import hash_strings
        from .store.db import get_meta, set_meta

        names = hash_strings(sorted(p.targets))
        if built or get_meta(conn, "lock") != json.dumps([names, file_digest(p.root)]):
            write_lock(p.root, {n: records[n] for n in p.targets if n in records})
            set_meta(conn, "lock", json.dumps([names, file_digest(p.root)]))
        store_runs.finish(conn, run_id, status, _now())
    return RunResult(run_id, status, results, signum)


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


FIXED_ARGS = ("params", "deps", "outs", "ctx")


def callable_kwargs(p: Pipeline, t: Target) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Candidate keyword arguments: each declared param by its last key segment (and the
    leaves of declared subtrees), `params` (nested), `deps`, `outs`; ctx is added by the worker.
    """
    from .spec.params import lookup

    nested: dict[str, Any] = {}
    explicit: dict[str, list[Any]] = {}  # last segment of a declared key -> values
    leaf: dict[str, list[Any]] = {}  # leaf name inside a declared subtree -> values

    def leaves(value: dict[str, Any]) -> None:
        for k, v in value.items():
            if isinstance(v, dict):
                leaves(v)
            else:
                leaf.setdefault(k, []).append(v)

    for key in t.params:
        value = lookup(p.params, key)
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        explicit.setdefault(parts[-1], []).append(value)
        if isinstance(value, dict):
            leaves(value)
    named: dict[str, Any] = {}
    ambiguous: set[str] = set()
    for source in (explicit, leaf):
        for name, values in source.items():
            if name in named or (source is leaf and name in explicit):
                continue
            if all(v == values[0] for v in values[1:]):
                named[name] = values[0]
            else:
                ambiguous.add(name)
    kwargs = dict(named)
    kwargs["params"] = nested
    kwargs["deps"] = [d.path.rstrip("/") for d in t.deps]
    kwargs["outs"] = [o.rstrip("/") for o in t.outs]
    return kwargs, tuple(sorted(ambiguous - set(FIXED_ARGS)))


def _check_callables(p: Pipeline, selected: list[str]) -> None:
    """Every required parameter of a selected callable must be one we can pass."""
    from .codehash import read_signature, resolve_callable

    for n in selected:
        t = p.targets[n]
        if t.python is None:
            continue
        where = p.where("targets", n, "python")
        sig = read_signature(resolve_callable(p.root, t.python, where), t.python, where)
        offered, ambiguous = callable_kwargs(p, t)
        for name in sig.required:
            if name in ambiguous:
                raise PipelineError(f"target '{n}': parameter '{name}' of {t.python} is ambiguous: "
                                    f"two declared params end in '{name}'; declare only one", where)
            if name not in offered and name != "ctx":
                raise PipelineError(
                    f"target '{n}': {t.python} requires parameter '{name}', which is neither the last "
                    f"segment of a declared param nor one of {', '.join(FIXED_ARGS)}", where)


def _check_outs_inside(p: Pipeline, selected: list[str]) -> None:
    """Outs are deleted before their target runs: none may reach outside the root
    through a symlinked folder."""
    real_root = os.path.realpath(p.root)
    seen: dict[str, str] = {}
    for n in selected:
        for i, out in enumerate(p.targets[n].outs):
            parent = os.path.dirname(out.rstrip("/"))
            if parent not in seen:
                seen[parent] = os.path.realpath(os.path.join(p.root, parent))
            real = seen[parent]
            if real != real_root and not real.startswith(real_root + os.sep):
                raise PipelineError(
                    f"target '{n}': out '{out}' lies outside the project root through a symlink "
                    f"(its folder resolves to {real})", p.where("targets", n, "outs"))


def dag(*, file: str | None = None, cwd: str | None = None, format: str = "ascii") -> str:
    """The graph as text: ascii, mermaid or dot."""
    from .render import render_dag

    p = _load(file, cwd)
    from .graph import build_graph

    return render_dag(p, p.derived("graph", lambda: build_graph(p)), format)
