"""Runs as experiments: history, one manifest, branch, checkout, diff, gc (SPEC §5–6).

Everything returns plain data (dicts and dataclasses) so a notebook can compare runs.
"""
from __future__ import annotations

import json
import os
import sqlite3
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from .errors import UsageError
from .store.records import Record
from .project import Project, open_project
from .spec.loader import find_pipeline_file
from .store import records as store_records
from .store import runcache
from .store import runs as store_runs
from .store.cache import Cache, CacheMiss
from .store.db import open_db

KEPT_ACTIONS = ("built", "restored", "skipped")


@contextmanager
def _store(file: str | None, cwd: str | None) -> Iterator[sqlite3.Connection | None]:
    """The project's store (None when it has none), without loading the pipeline."""
    conn = open_db(os.path.dirname(find_pipeline_file(file, cwd)), create=False)
    try:
        yield conn
    finally:
        if conn is not None:
            conn.close()


def _manifest(conn: sqlite3.Connection | None, ref: str) -> dict[str, Any]:
    """The manifest of the run `ref` names (an id or a unique prefix)."""
    return store_runs.manifest(conn, store_runs.resolve(conn, ref))  # type: ignore[arg-type]


def runs(*, file: str | None = None, cwd: str | None = None, full: bool = False) -> list[dict[str, Any]]:
    """Every run, oldest first: summaries (id, parent, status, times, params, changed
    params, metrics), or with `full` the whole manifests (per-target detail too)."""
    with _store(file, cwd) as conn:
        if conn is None:
            return []
        if not full:
            return store_runs.summaries(conn)
        return [store_runs.manifest(conn, s["id"]) for s in store_runs.summaries(conn)]


def show(run: str, *, file: str | None = None, cwd: str | None = None) -> dict[str, Any]:
    """One run's manifest (any unique prefix of at least 4 characters)."""
    with _store(file, cwd) as conn:
        return _manifest(conn, run)


# -- putting a run's outputs back ----------------------------------------------------------

@dataclass
class PutBack:
    """What putting a run's outputs back did: restored, already there, or missing."""

    run_id: str
    restored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # target -> why it must rebuild


def put_back(proj: Project, manifest: dict[str, Any], records: dict[str, Record]) -> PutBack:
    """Restore the outputs `manifest`'s run left, from the cache, and record them as the
    workspace's state; a target whose objects are gone is reported (it will rebuild)."""
    conn = proj.conn
    assert conn is not None
    cache = Cache(proj.root)
    result = PutBack(manifest["id"])
    for name, t in manifest["targets"].items():
        if name not in proj.pipeline.targets or t.get("action") not in KEPT_ACTIONS or not t.get("fingerprint"):
            continue
        fp, outs = t["fingerprint"], t.get("outs") or {}
        in_place = all(proj.hasher.digest(o) == d for o, d in outs.items())
        current = records.get(name)
        if in_place and current is not None and current.fingerprint == fp and current.outs == outs:
            result.unchanged.append(name)  # the workspace already holds exactly this
            continue
        entry = runcache.lookup(conn, fp)
        trace = entry.trace if entry else (current.trace_dict() if current is not None
                                           and current.fingerprint == fp else None)
        if in_place:
            result.unchanged.append(name)
        elif entry is None or set(entry.outs) != set(outs):
            result.missing[name] = "its outputs are not in the cache"
            continue
        else:
            try:
                cache.restore_outs(outs, entry.dirs, entry.execs)
                for out in outs:
                    proj.hasher.forget(out)
            except (CacheMiss, OSError) as exc:
                result.missing[name] = getattr(exc, "reason", None) or str(exc)
                runcache.forget(conn, fp)
                continue
            result.restored.append(name)
        trace = dict(trace or {})
        if entry is not None and entry.execs:
            trace["execs"] = list(entry.execs)
        store_records.save_record(conn, name, fp, trace, outs, manifest["id"])
        records[name] = Record(fp, dict(outs), trace)
    return result


def _report_missing(pb: PutBack, what: str) -> None:
    for name, why in sorted(pb.missing.items()):
        print(f"pipetool: {name}: outputs of run {pb.run_id} cannot be put back ({why}); "
              f"{what}", file=sys.stderr)


# -- branch ---------------------------------------------------------------------------------

def branch(
    from_run: str, targets: Iterable[str] = (), *, set: Iterable[str] | dict | None = None,
    jobs: int | None = None, keep_going: bool = False, dry_run: bool = False, force: bool = False,
    file: str | None = None, cwd: str | None = None, wait: bool = True, reporter: Any = None,
    argv: list[str] | None = None, executor: str = "local", scheduler: str | None = None,
    resources: Iterable[str] | dict | None = None, remote: str | None = None, push: bool = True,
    read_only: bool = False,
):
    """Start a new run from RUN: its outputs back, its params with `set` applied, then
    run what is stale against that (with the current code); the new run's parent is RUN.
    The executor and remote options are those of `pipetool.run`."""
    from .api import _overrides, _Quiet, _verdicts
    from .prerun import check_callables, check_outs_inside, check_resources
    from .runconfig import make_config
    from .runflow import dry_run_result, execute_run, new_run_id, sigterm_interrupts
    from .store.projectlock import acquire

    rep = reporter or _Quiet()
    config = make_config(executor, scheduler, resources, remote, push, read_only)
    with _store(file, cwd) as conn:
        base = _manifest(conn, from_run)
    run_id = base["id"]
    proj = open_project(file, cwd, _overrides(set), base_params=base["params"])
    try:
        named, selected = proj.selection(targets)
        forced = frozenset((named or selected) if force else ())
        if dry_run:
            for name, t in base["targets"].items():
                if t.get("action") in KEPT_ACTIONS:
                    for out, digest in (t.get("outs") or {}).items():
                        proj.hasher.assume(out, digest)
            return dry_run_result(_verdicts(proj, selected, forced, _records_of(proj, base)), rep, run_id)
        p = proj.pipeline
        check_callables(p, selected)
        check_outs_inside(p, selected)
        check_resources(p, selected, config.capacity)
        new_id = new_run_id()
        lock = acquire(p.root, f"branch {new_id} from {run_id} (pid {os.getpid()})", wait, rep.waiting)
        try:
            records = proj.records()
            pb = put_back(proj, base, records)
            _report_missing(pb, "it will be rebuilt if needed")
            for name in pb.missing:  # the workspace holds something else: judge it afresh
                records.pop(name, None)
            with sigterm_interrupts():
                return execute_run(proj, selected, forced, new_id, jobs, keep_going,
                                   rep, argv or sys.argv, run_id, "branch", config, records)
        finally:
            lock.release()
    finally:
        proj.close()


def _records_of(proj: Project, manifest: dict[str, Any]) -> dict[str, Record]:
    """The records the workspace would hold once `manifest`'s outputs were put back."""
    records = proj.records()
    assert proj.conn is not None
    for name, t in manifest["targets"].items():
        if t.get("action") in KEPT_ACTIONS and t.get("fingerprint"):
            entry = runcache.lookup(proj.conn, t["fingerprint"])
            records[name] = Record(t["fingerprint"], dict(t.get("outs") or {}), entry.trace if entry else None)
    return records


# -- checkout -------------------------------------------------------------------------------

def checkout(run: str, *, file: str | None = None, cwd: str | None = None, wait: bool = True,
             reporter: Any = None) -> PutBack:
    """Put RUN's outputs and records back, run nothing; RUN becomes the workspace's run."""
    from .api import _Quiet
    from .runflow import rewrite_lock, set_head
    from .store.projectlock import acquire

    rep = reporter or _Quiet()
    proj = open_project(file, cwd)
    try:
        base = _manifest(proj.conn, run)
        run_id = base["id"]
        lock = acquire(proj.root, f"checkout of {run_id} (pid {os.getpid()})", wait, rep.waiting)
        try:
            records = proj.records()
            pb = put_back(proj, base, records)
            _report_missing(pb, "`pipetool run` will rebuild it")
            set_head(proj, run_id)
            rewrite_lock(proj, records, changed=True)
            return pb
        finally:
            lock.release()
    finally:
        proj.close()


# -- diff -----------------------------------------------------------------------------------

def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (`train.lr`)."""
    if not isinstance(value, dict) or (prefix and not value):
        return {prefix: value}
    out: dict[str, Any] = {}
    for k, v in value.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _delta(a: Any, b: Any) -> Any:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return b - a
    return None


def _workspace_side(file: str | None, cwd: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    from .runflow import read_metrics
    from .spec.loader import load

    p = load(file, cwd)
    files = [m for t in p.targets.values() for m in t.metrics]
    return p.params, read_metrics(p.root, files)


def diff(left: str, right: str | None = None, *, file: str | None = None,
         cwd: str | None = None) -> dict[str, Any]:
    """Params that differ and metrics side by side with deltas, between two runs or a
    run and the workspace: {"params": {KEY: [L, R]}, "metrics": {FILE: {KEY: [L, R, DELTA]}}}."""
    with _store(file, cwd) as conn:
        lm = _manifest(conn, left)
        if right is not None:
            rm = _manifest(conn, right)
            rparams, rmetrics = rm["params"], rm["metrics"]
        else:
            rparams, rmetrics = _workspace_side(file, cwd)
    lp, rp = _flatten(lm["params"]), _flatten(rparams)
    params = {k: [lp.get(k), rp.get(k)] for k in sorted(set(lp) | set(rp))
              if json.dumps(lp.get(k), default=str) != json.dumps(rp.get(k), default=str)}
    metrics: dict[str, Any] = {}
    for f in sorted(set(lm["metrics"]) | set(rmetrics)):
        a, b = _flatten(lm["metrics"].get(f) or {}), _flatten(rmetrics.get(f) or {})
        rows = {k: [a.get(k), b.get(k), _delta(a.get(k), b.get(k))] for k in sorted(set(a) | set(b))
                if a.get(k) != b.get(k)}
        if rows:
            metrics[f] = rows
    return {"params": params, "metrics": metrics}


# -- gc ---------------------------------------------------------------------------------------

@dataclass
class GcResult:
    kept_runs: list[str]
    removed: int  # objects
    freed_bytes: int
    kept: int  # objects
    dry_run: bool


def gc(*, keep_last: int = 10, keep: Iterable[str] = (), dry_run: bool = False,
       file: str | None = None, cwd: str | None = None, wait: bool = True, reporter: Any = None) -> GcResult:
    """Remove cache objects that neither the last `keep_last` runs, the named runs, nor
    the workspace's own records refer to."""
    from .api import _Quiet
    from .store.projectlock import acquire

    if keep_last < 0:
        raise UsageError("--keep-last must be 0 or more")
    rep = reporter or _Quiet()
    proj = open_project(file, cwd)
    try:
        conn = proj.conn
        assert conn is not None
        named = [store_runs.resolve(conn, k) for k in keep]
        lock = acquire(proj.root, f"gc (pid {os.getpid()})", wait, rep.waiting)
        try:
            all_runs = [s["id"] for s in store_runs.summaries(conn)]
            kept_runs = sorted(set(all_runs[-keep_last:] if keep_last else []) | set(named))
            cache = Cache(proj.root)
            wanted: set[str] = set()
            for rid in kept_runs:
                for t in store_runs.manifest(conn, rid)["targets"].values():
                    if t.get("action") in KEPT_ACTIONS:
                        wanted.update(d for d in (t.get("outs") or {}).values() if d)
            for r in proj.records().values():
                wanted.update(d for d in r.outs.values() if d)
            objects = cache.all_objects()
            for digest in list(wanted):  # a kept folder keeps the files it lists
                listing = cache.peek_listing(digest, objects.get(digest, 0))
                if listing:
                    wanted.update(listing.values())
            doomed = {d: size for d, size in objects.items() if d not in wanted}
            if not dry_run:
                for d in doomed:
                    cache.remove(d)
                for entry in runcache.all_entries(conn):
                    if any(d in doomed for d in entry.outs.values()):
                        runcache.forget(conn, entry.fingerprint)
            return GcResult(kept_runs, len(doomed), sum(doomed.values()), len(objects) - len(doomed), dry_run)
        finally:
            lock.release()
    finally:
        proj.close()
