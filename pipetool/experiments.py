"""Runs as experiments: history, one manifest, branch, checkout, diff, gc (SPEC §5–6).

Everything returns plain data (dicts and dataclasses) so a notebook can compare runs.
"""
from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .project import open_project
from .putback import KEPT_ACTIONS, PutBack, put_back, report_missing
from .reporting import QuietReporter, Reporter, or_quiet
from .spec.loader import find_pipeline_file
from .store import runcache
from .store import runs as store_runs
from .store.cache import Cache
from .store.db import open_db

if TYPE_CHECKING:
    from .runflow import RunResult


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


# -- branch ---------------------------------------------------------------------------------

def branch(from_run: str, targets: Iterable[str] = (), *, file: str | None = None, cwd: str | None = None,
           reporter: Reporter | None = None, **options: Any) -> RunResult:
    """Start a new run from RUN: its outputs back, its params with `set` applied, then
    run what is stale against that (with the current code); the new run's parent is RUN.
    `options` are those of `pipetool.run`."""
    from .runconfig import run_request
    from .runflow import start_run

    request = run_request(targets, **options)
    with _store(file, cwd) as conn:
        base = _manifest(conn, from_run)
    with open_project(file, cwd, request.overrides, base_params=base["params"]) as proj:
        return start_run(proj, request, or_quiet(reporter), base=base)


# -- checkout -------------------------------------------------------------------------------

def checkout(run: str, *, file: str | None = None, cwd: str | None = None, wait: bool = True,
             reporter: Reporter | None = None) -> PutBack:
    """Put RUN's outputs and records back, run nothing; RUN becomes the workspace's run."""
    from .runflow import new_run_id, rewrite_lock, set_head
    from .store.projectlock import acquire

    rep = or_quiet(reporter)
    with open_project(file, cwd) as proj:
        base = _manifest(proj.conn, run)
        run_id = base["id"]
        with acquire(proj.root, f"checkout of {run_id} (pid {os.getpid()})", wait, rep.waiting):
            records = proj.records()
            pb = put_back(proj, base, records, rep, f"checkout-{new_run_id()}")
            report_missing(pb, rep, "`pipetool run` will rebuild it")
            set_head(proj, run_id)
            rewrite_lock(proj, records, changed=True)
            return pb


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
    from .spec.loader import load
    from .store.metrics import read_metrics

    p = load(file, cwd)
    files = [m for t in p.targets.values() for m in t.metrics]
    return p.params, read_metrics(p.root, files, QuietReporter().warning)


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
       file: str | None = None, cwd: str | None = None, wait: bool = True,
       reporter: Reporter | None = None) -> GcResult:
    """Remove cache objects that neither the last `keep_last` runs, the named runs, nor
    the workspace's own records refer to."""
    from .store.projectlock import acquire

    if keep_last < 0:
        raise UsageError("--keep-last must be 0 or more")
    rep = or_quiet(reporter)
    with open_project(file, cwd) as proj, acquire(proj.root, f"gc (pid {os.getpid()})", wait, rep.waiting):
        conn = proj.conn
        if conn is None:  # no store: nothing was ever cached here
            return GcResult([], 0, 0, 0, dry_run)
        named = [store_runs.resolve(conn, k) for k in keep]
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
