"""The workspace and the store as one run's scheduler sees them (its `RunHooks`): judge a
target now, clear and observe its outs, restore it from the local or remote run cache,
record it in the store and the cache, and make the executor when the first job starts."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .execute.jobs import Executor
from .execute.placement import make_executor
from .execute.scheduler import BUILT, RESTORED, Growth, TargetResult
from .fingerprint.trace import Trace
from .graph import build_graph
from .jsontext import dumps
from .judge import Judgement, judge
from .outguard import clear_outs, protect
from .partitioning import expand, vanished
from .prerun import callable_kwargs
from .project import Project, ensure_dir
from .reporting import Reporter
from .runconfig import RunConfig
from .spec.model import Target
from .store import records as store_records
from .store import runcache
from .store import runs as store_runs
from .store.cache import Cache, CacheMiss, executables
from .store.failures import raise_write_error
from .store.records import Record

if TYPE_CHECKING:
    from .remote.readthrough import RemoteSession


class RunWorkspace:
    """One run's side effects around each target: the record, the cache, the run cache,
    the journal; `changed` and `journaled` tell the end of the run what is left to do."""

    def __init__(self, proj: Project, run_id: str, records: dict[str, Record], jobs: int,
                 log_dir: str, params_file: str, config: RunConfig, reporter: Reporter):
        assert proj.conn is not None
        self.proj, self.run_id, self.records, self.jobs = proj, run_id, records, jobs
        self.config, self.reporter = config, reporter
        self.remote: RemoteSession | None = None  # set when a remote is configured
        self.log_dir, self.params_file = log_dir, params_file
        self.cache = Cache(proj.root)
        self.conn = proj.conn
        self.changed = False  # did any record change (the lock must be rewritten)
        self.journaled: set[str] = set()  # targets with their row in the run's journal

    # -- the workspace ---------------------------------------------------------------
    def judge(self, target: Target, forced: bool) -> Judgement:
        return judge(self.proj.pipeline, target, self.proj.hasher, self.records.get(target.name), forced=forced)

    def prepare_outs(self, target: Target) -> None:
        """Remove old outs (so a command that fails to write one is caught) and make their
        folders; what nobody could restore is moved aside first (outguard.py)."""
        self._protect(target)
        clear_outs(self.proj.root, target, self.proj.hasher)

    def _protect(self, target: Target) -> None:
        protect(target, self.records.get(target.name), self.proj.hasher, self.cache, self.run_id,
                self.reporter.warning)

    def outs_now(self, target: Target) -> dict[str, str | None]:
        """Each out's digest as its job left it (None: not written)."""
        hasher = self.proj.hasher
        for o in target.outs:
            hasher.forget(o)
        return {o: hasher.digest(o) for o in target.outs}

    # -- the store -------------------------------------------------------------------
    def record(self, name: str, trace: Trace, outs: dict[str, str | None], result: TargetResult) -> None:
        if result.action in (BUILT, RESTORED):
            stored = trace.to_dict()
            dirs = [o for o in outs if os.path.isdir(os.path.join(self.proj.root, o.rstrip("/")))]
            execs = executables(self.proj.root, outs, dirs)
            if execs:  # the lock carries them, so a pull restores the mode without asking the remote
                stored["execs"] = execs
            self._keep_record(name, trace.fingerprint, stored, outs)
            self.records[name] = Record(trace.fingerprint, outs, stored)
            self.changed = True
            if result.action == BUILT:
                self._cache_outs(self.proj.pipeline.targets[name], trace, outs, dirs, execs)
        store_runs.record_targets(self.conn, self.run_id, [
            (name, result.action, result.fingerprint, result.reason, round(result.duration_s, 3), result.outs,
             result.checks)])
        self.journaled.add(name)

    def _keep_record(self, name: str, fingerprint: str, trace: dict[str, Any], outs: dict[str, str | None]) -> None:
        """The record of what the workspace now holds, in the store (a sweep's point keeps
        its records in memory only: the seam it overrides)."""
        store_records.save_record(self.conn, name, fingerprint, trace, outs, self.run_id)

    def _drop_record(self, name: str) -> None:
        store_records.delete_record(self.conn, name)

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
            self.reporter.warning(f"{t.name}: outputs not cached: {exc}")
            return
        build = runcache.CachedBuild(
            trace.fingerprint, t.name, {o: d for o, d in outs.items() if d}, tuple(listings), trace.to_dict(),
            self.run_id, tuple(execs))
        runcache.save(self.conn, build)
        if self.remote is not None:
            self.remote.built_one(build)

    def restore(self, target: Target, trace: Trace) -> tuple[dict[str, str | None] | None, str]:
        """The outs of an earlier build with this very fingerprint, put back; else why not."""
        outs, why = self._restore(target, trace)
        if outs is not None:
            for o in target.outs:
                self.proj.hasher.forget(o)
        return outs, why

    def _restore(self, t: Target, trace: Trace) -> tuple[dict[str, str | None] | None, str]:
        if not t.cache:
            return None, ""
        entry = runcache.lookup(self.conn, trace.fingerprint)
        if entry is None and self.remote is not None:
            self._protect(t)
            outs, why = self.remote.restore(t.outs, trace.fingerprint)
            return outs, (f"{why}: rebuilding" if outs is None and why else why)
        if entry is None or set(entry.outs) != set(t.outs):
            return None, ""
        self._protect(t)
        try:
            self.cache.restore_outs(entry.outs, entry.dirs, entry.execs)
        except CacheMiss as exc:
            runcache.forget(self.conn, trace.fingerprint)
            return None, f"cached outputs unusable ({exc.reason}): rebuilding"
        except OSError as exc:
            return None, f"cached outputs could not be restored ({exc.strerror}): rebuilding"
        origin = f"run {entry.run_id}" if entry.run_id else "an earlier run"
        return dict(entry.outs), f"restored from the cache: built by {origin}"

    # -- running ---------------------------------------------------------------------
    def make_executor(self) -> Executor:
        # Made when the first target runs: a no-op run leaves no folders behind.
        try:
            ensure_dir(self.log_dir)
            ensure_dir(os.path.dirname(self.params_file))
            with open(self.params_file, "w", encoding="utf-8") as f:
                f.write(dumps(self.proj.pipeline.params, indent=2, sort_keys=True, default=str))
        except OSError as exc:
            raise_write_error(exc, self.params_file, f"run {self.run_id}'s logs and params file")
        return self._new_executor()

    def _new_executor(self) -> Executor:
        """The run's own executor (a sweep's point gets its lane of the sweep's shared one)."""
        needs = {n: t.resources for n, t in self.proj.pipeline.targets.items() if t.resources}
        return make_executor(self.config, self.proj.root, self.jobs, needs)

    # -- partitions ----------------------------------------------------------------------
    def expand(self, name: str) -> Growth:
        """The placeholder `name`'s partitions for the files its glob matches now; recorded
        partitions whose file is gone leave the workspace."""
        p, added = expand(self.proj.pipeline, [name], self.proj.hasher)
        self.proj.pipeline, self.proj.graph = p, build_graph(p)
        removed = self.remove_vanished(vanished(p, self.records, [name]))
        return Growth(p, self.proj.graph, tuple(added), removed)

    def remove_vanished(self, gone: dict[str, str]) -> dict[str, str]:
        """Take the outs of partitions whose item is gone out of the workspace (they stay in
        the cache; what nobody could restore is moved aside) and forget their records:
        name -> why."""
        out: dict[str, str] = {}
        for name, key in sorted(gone.items()):
            rec = self.records.pop(name, None)
            if rec is None:
                continue
            stand_in = Target(name=name, cmd=None, python=None, deps=(), outs=tuple(rec.outs), metrics=(),
                              params=(), needs=(), env=())
            protect(stand_in, rec, self.proj.hasher, self.cache, self.run_id, self.reporter.warning)
            clear_outs(self.proj.root, stand_in, self.proj.hasher)
            for o in rec.outs:  # clear_outs leaves the folders it would write into: not ours now
                _remove_empty_parents(self.proj.root, o)
            self._drop_record(name)
            self.changed = True
            out[name] = f"item gone: {key}"
        return out

    def job_kwargs(self, target: Target) -> tuple[dict[str, Any], tuple[str, ...]]:
        return callable_kwargs(self.proj.pipeline, target)


def _remove_empty_parents(root: str, out: str) -> None:
    """Remove the folders above a removed out that are left empty, up to the root."""
    parent = os.path.dirname(out.rstrip("/"))
    while parent:
        try:
            os.rmdir(os.path.join(root, parent))
        except OSError:
            return  # not empty, or not there: leave it and what is above it
        parent = os.path.dirname(parent)
