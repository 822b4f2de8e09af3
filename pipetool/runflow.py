"""One run's lifecycle under the project lock: the run row and manifest, the scheduler,
the content-addressed cache and run cache around it, metrics, the lock file."""
from __future__ import annotations

import json
import os
import secrets
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, PipelineError
from .execute.scheduler import (BUILT, FAILED, RESTORED, SKIPPED, RunOptions, TargetResult,
                                run_targets)
from .fingerprint.trace import Trace
from .store.records import Record
from .prerun import callable_kwargs
from .project import Project, ensure_dir
from .runconfig import RunConfig
from .spec.model import Target
from .store import records as store_records
from .store import runcache
from .store import runs as store_runs
from .store.cache import Cache, CacheMiss, executables
from .store.db import get_meta, set_meta


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, CI cancellation, `timeout`): stopped like Ctrl-C, exit 143."""


@dataclass
class RunResult:
    run_id: str | None
    status: str  # succeeded | failed | interrupted | dry-run
    targets: dict[str, TargetResult] = field(default_factory=dict)
    signal: int = 0  # the signal that interrupted the run, if any
    parent: str | None = None

    @property
    def exit_code(self) -> int:
        if self.status == "interrupted":
            return 128 + self.signal if self.signal else EXIT_INTERRUPTED
        return EXIT_FAILED if self.status == "failed" else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "parent": self.parent, "status": self.status,
                "targets": {n: asdict(r) for n, r in self.targets.items()}}


def new_run_id() -> str:
    """Time-ordered as plain strings: base36 milliseconds, then 4 random hex digits."""
    ms = int(time.time() * 1000)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    s = ""
    while ms:
        ms, r = divmod(ms, 36)
        s = digits[r] + s
    return f"{s.rjust(9, '0')}{secrets.token_hex(2)}"


def now_iso() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@contextmanager
def sigterm_interrupts():
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


def head(proj: Project) -> str | None:
    """The run whose outputs the workspace holds (the last run, checkout or branch)."""
    return get_meta(proj.conn, "head") if proj.conn is not None else None


def set_head(proj: Project, run_id: str) -> None:
    assert proj.conn is not None
    set_meta(proj.conn, "head", run_id)


def param_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """`key: old -> new` for every leaf that differs (what `runs` shows per run)."""
    from .plan import param_diffs

    return [f"{k}: {a} -> {b}" for k, a, b in param_diffs(old, new)]


def dry_run_result(verdicts: dict, rep, parent: str | None = None) -> RunResult:
    """What `run -n` and `branch -n` answer: each target that would run, and why."""
    from .plan import FRESH

    for n, v in verdicts.items():
        if v.state != FRESH:
            rep.dry_run(n, v)
    return RunResult(None, "dry-run", {
        n: TargetResult("would-run" if v.state != FRESH else "skipped", "; ".join(v.reasons))
        for n, v in verdicts.items()}, parent=parent)


class _Hooks:
    """What happens around each target: the record, the cache, the run cache, the journal."""

    def __init__(self, proj: Project, run_id: str, records: dict[str, Record], jobs: int,
                 log_dir: str, params_file: str, config: RunConfig):
        self.proj, self.run_id, self.records, self.jobs = proj, run_id, records, jobs
        self.config = config
        self.remote = None  # a RemoteSession when a remote is configured
        self.log_dir, self.params_file = log_dir, params_file
        self.cache = Cache(proj.root)
        self.conn = proj.conn
        self.changed = False  # did any record change (the lock must be rewritten)
        self.journaled: set[str] = set()  # targets with their row in the run's journal

    def record(self, name: str, trace: Trace, outs: dict[str, str | None], result: TargetResult) -> None:
        assert self.conn is not None
        if result.action in (BUILT, RESTORED):
            stored = trace.to_dict()
            dirs = [o for o in outs if os.path.isdir(os.path.join(self.proj.root, o.rstrip("/")))]
            execs = executables(self.proj.root, outs, dirs)
            if execs:  # the lock carries them, so a pull restores the mode without asking the remote
                stored["execs"] = execs
            store_records.save_record(self.conn, name, trace.fingerprint, stored, outs, self.run_id)
            self.records[name] = Record(trace.fingerprint, outs, stored)
            self.changed = True
            if result.action == BUILT:
                self._cache_outs(self.proj.pipeline.targets[name], trace, outs, dirs, execs)
        store_runs.record_targets(self.conn, self.run_id, [
            (name, result.action, result.fingerprint, result.reason, round(result.duration_s, 3), result.outs,
             result.checks)])
        self.journaled.add(name)

    def _cache_outs(self, t: Target, trace: Trace, outs: dict[str, str | None], dirs: list[str],
                    execs: list[str]) -> None:
        """Store a built target's outs, then its run-cache entry (never the other way).

        Done here, between jobs: a thread of its own was measured slower on 2 cores (it
        competes with the scheduler for the interpreter and with the commands for CPU)."""
        if not t.cache:
            return
        listings = {}
        try:
            for out, digest in outs.items():
                assert digest is not None
                if out in dirs:
                    listings[out] = self.proj.hasher.dir_listing(out)
                self.cache.store_out(out, digest, listings.get(out))
        except (CacheMiss, OSError) as exc:
            print(f"pipetool: warning: {t.name}: outputs not cached: {exc}", file=sys.stderr)
            return
        build = runcache.CachedBuild(
            trace.fingerprint, t.name, {o: d for o, d in outs.items() if d}, tuple(listings), trace.to_dict(),
            self.run_id, tuple(execs))
        runcache.save(self.conn, build)
        if self.remote is not None:
            self.remote.built_one(build)

    def restore(self, t: Target, trace: Trace) -> tuple[dict[str, str | None] | None, str]:
        """The outs of an earlier build with this very fingerprint, put back; else why not."""
        if not t.cache or self.conn is None:
            return None, ""
        entry = runcache.lookup(self.conn, trace.fingerprint)
        if entry is None and self.remote is not None:
            outs, why = self.remote.restore(t.outs, trace.fingerprint)
            return outs, (f"{why}: rebuilding" if outs is None and why else why)
        if entry is None or set(entry.outs) != set(t.outs):
            return None, ""
        try:
            self.cache.restore_outs(entry.outs, entry.dirs, entry.execs)
        except CacheMiss as exc:
            runcache.forget(self.conn, trace.fingerprint)
            return None, f"cached outputs unusable ({exc.reason}): rebuilding"
        except OSError as exc:
            return None, f"cached outputs could not be restored ({exc.strerror}): rebuilding"
        origin = f"run {entry.run_id}" if entry.run_id else "an earlier run"
        return dict(entry.outs), f"restored from the cache: built by {origin}"

    def make_executor(self):
        from .execute.local import LocalExecutor

        # Made when the first target runs: a no-op run leaves no folders behind.
        ensure_dir(self.log_dir)
        ensure_dir(os.path.dirname(self.params_file))
        with open(self.params_file, "w", encoding="utf-8") as f:
            json.dump(self.proj.pipeline.params, f, indent=2, sort_keys=True, default=str)
        if self.config.executor == "dask":
            from .execute.dask import DaskExecutor

            needs = {n: t.resources for n, t in self.proj.pipeline.targets.items() if t.resources}
            return DaskExecutor(self.proj.root, self.jobs, self.config.scheduler, needs)
        return LocalExecutor(self.jobs)

    def job_kwargs(self, t: Target):
        return callable_kwargs(self.proj.pipeline, t)


def read_metrics(root: str, paths) -> dict[str, Any]:
    """Parse metrics files (JSON, YAML or TOML); an unreadable one is skipped with a note."""
    from .spec.params import read_params_file

    out: dict[str, Any] = {}
    for rel in paths:
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            continue
        try:
            out[rel] = _finite(read_params_file(path, rel, None, kind="metrics file"))
        except PipelineError as exc:
            print(f"pipetool: warning: {exc.render()} (not recorded)", file=sys.stderr)
    return out


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON: they are kept as the strings "NaN", "Infinity",
    "-Infinity", so `runs --json` stays strict JSON after a diverged training run."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def execute_run(proj: Project, selected: list[str], forced: frozenset, run_id: str, jobs: int | None,
                keep_going: bool, rep, argv: list[str], parent: str | None, kind: str,
                config: RunConfig | None = None, records: dict[str, Record] | None = None) -> RunResult:
    """Run `selected` under the project lock and record it as run `run_id` (`jobs` None:
    as many as the machine has cores)."""
    config = config or RunConfig()
    jobs = config.resolve_jobs(jobs, proj.root)
    p = proj.pipeline
    conn = proj.conn
    if conn is None:
        raise PipelineError(f"cannot write pipetool's state under {p.root}/.pipetool")
    if records is None:
        records = proj.records()  # read under the lock: another run may just have finished
    remote = _open_remote(proj, config)  # a missing backend stops us before anything is written
    parent_params = store_runs.run_params(conn, parent) if parent else {}
    store_runs.start(conn, run_id, parent, argv, now_iso(), p.params, p.overrides,
                     param_changes(parent_params, p.params) if parent else [], kind)
    store_runs.write_manifest_file(p.root, store_runs.manifest(conn, run_id))
    sdir = os.path.join(p.root, ".pipetool")
    hooks = _Hooks(proj, run_id, records, jobs, os.path.join(sdir, "logs", run_id),
                   os.path.join(sdir, "runs", run_id, "params.json"), config)
    opts = RunOptions(jobs=jobs, keep_going=keep_going, forced=forced, run_id=run_id,
                      log_dir=hooks.log_dir, params_file=hooks.params_file, resources=config.capacity)
    results: dict[str, TargetResult] = {}
    status, signum = "succeeded", 0
    try:
        if remote is not None:
            hooks.remote = remote
            remote.prefetch(selected, records, forced)
        run_targets(p, proj.graph, selected, proj.hasher, records, hooks, rep, opts, results)
        if any(r.action == FAILED for r in results.values()):
            status = "failed"
        if remote is not None:
            remote.push()  # what succeeded, also after a failure elsewhere (-k)
    except Terminated:
        status, signum = "interrupted", 15
    except KeyboardInterrupt:
        status, signum = "interrupted", 2
    except BaseException:  # pipetool's own failure (a cluster that would not start...): never "succeeded"
        status = "failed"
        raise
    finally:
        if remote is not None:
            remote.close()
        _finish(proj, run_id, status, results, records, hooks.changed, hooks.journaled)
    return RunResult(run_id, status, results, signum, parent)


def _open_remote(proj: Project, config: RunConfig):
    """The run's remote session, or None when no remote is configured."""
    from .remote.backend import remote_url

    url = remote_url(proj.pipeline.remote, proj.root, config.remote)
    if url is None:
        return None
    from .remote.backend import open_remote
    from .remote.readthrough import RemoteSession

    return RemoteSession(proj, open_remote(url), push=config.push)  # False under --read-only


def _finish(proj: Project, run_id: str, status: str, results: dict[str, TargetResult],
            records: dict[str, Record], changed: bool, journaled: set[str]) -> None:
    """Journal what the scheduler did not (skipped, not-run), metrics, the manifest file,
    the workspace's head run and the lock file."""
    p, conn = proj.pipeline, proj.conn
    assert conn is not None
    store_runs.record_targets(conn, run_id, [
        (n, r.action, r.fingerprint or (records[n].fingerprint if n in records else None), r.reason,
         round(r.duration_s, 3), r.outs or (records[n].outs if n in records and r.action == SKIPPED else {}),
         r.checks)
        for n, r in results.items() if n not in journaled])
    metric_files = [m for n, r in results.items() if r.action in (BUILT, RESTORED, SKIPPED)
                    for m in p.targets[n].metrics]
    store_runs.finish(conn, run_id, status, now_iso(), read_metrics(p.root, metric_files))
    store_runs.write_manifest_file(p.root, store_runs.manifest(conn, run_id))
    set_head(proj, run_id)
    rewrite_lock(proj, records, changed)


def rewrite_lock(proj: Project, records: dict[str, Record], changed: bool) -> None:
    """The lock is derived from the records: rewrite it when something was recorded, the
    targets changed, or someone else's hand changed the file since we wrote it."""
    from .digests import hash_strings
    from .store.lockfile import file_digest, write_lock

    p, conn = proj.pipeline, proj.conn
    assert conn is not None
    names = hash_strings(sorted(p.targets))
    if changed or get_meta(conn, "lock") != json.dumps([names, file_digest(p.root)]):
        write_lock(p.root, {n: records[n] for n in p.targets if n in records})
        set_meta(conn, "lock", json.dumps([names, file_digest(p.root)]))
