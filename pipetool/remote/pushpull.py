"""`pipetool push [RUN]` and `pipetool pull [TARGET...]`: explicit sync with the remote.

`pull` puts back the outputs `pipetool.lock` records, so that in a fresh clone
`pipetool pull && pipetool status --check` is green without building anything; `push`
uploads a run's outputs with their run-cache entries (objects first, entries last).
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from ..errors import UsageError
from ..outguard import OutsError, protect
from ..project import Project, open_project
from ..putback import KEPT_ACTIONS
from ..reporting import Reporter, or_quiet
from ..store import records as store_records
from ..store import runcache
from ..store import runs as store_runs
from ..store.cache import Cache, CacheMiss
from ..store.lockfile import read_lock
from ..store.projectlock import ProjectLock, acquire
from ..store.records import Record
from ..store.runcache import CachedBuild
from .backend import Remote, open_remote, remote_url
from .progress import progress_for
from .staging import Staging
from .transfer import TRANSFER_JOBS, Stats, Transfers, lock_build


@dataclass
class SyncResult:
    """What a push or pull did, target by target, and the bytes it moved."""

    remote: str
    run_id: str | None = None  # push: the run pushed
    done: list[str] = field(default_factory=list)  # pushed, or put back
    present: list[str] = field(default_factory=list)  # pull: already in the workspace
    missing: dict[str, str] = field(default_factory=dict)  # target -> why it was not done
    stats: Stats = field(default_factory=Stats)

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "run_id": self.run_id, "done": self.done, "present": self.present,
                "missing": self.missing, "transfer": self.stats.to_json()}


def _remote_of(proj: Project, flag: str | None) -> Remote:
    url = remote_url(proj.pipeline.remote, proj.root, flag)
    if url is None:
        raise UsageError("no remote: set `remote:` in the pipeline file, $PIPETOOL_REMOTE, or --remote URL")
    return open_remote(url)


def _locked(proj: Project, what: str, wait: bool, reporter: Reporter | None) -> ProjectLock:
    return acquire(proj.root, f"{what} (pid {os.getpid()})", wait, or_quiet(reporter).waiting)


def push(run: str | None = None, *, remote: str | None = None, jobs: int = TRANSFER_JOBS,
         file: str | None = None, cwd: str | None = None, wait: bool = True,
         reporter: Reporter | None = None) -> SyncResult:
    """Upload RUN's outputs (default: the workspace's last run) and their run-cache
    entries to the remote; what the remote already has is skipped."""
    from ..runflow import head

    with open_project(file, cwd) as proj:
        rem = _remote_of(proj, remote)
        conn = proj.conn
        if conn is None:
            raise UsageError(f"no pipetool state under {proj.root}/.pipetool: nothing to push")
        run_id = store_runs.resolve(conn, run) if run else head(proj)
        if run_id is None:
            raise UsageError("no run to push yet: `pipetool run` first, or name one")
        with _locked(proj, f"push of {run_id}", wait, reporter):
            manifest = store_runs.manifest(conn, run_id)
            result = SyncResult(rem.url, run_id)
            builds = []
            for name, t in sorted(manifest["targets"].items()):
                if t.get("action") not in KEPT_ACTIONS or not t.get("fingerprint"):
                    continue
                entry = runcache.lookup(conn, t["fingerprint"])
                if entry is None:
                    result.missing[name] = "not in the local cache (cache: false, or removed by gc)"
                    continue
                builds.append(entry)
                result.done.append(name)
            tr = Transfers(rem, Cache(proj.root), jobs, progress_for("push"))
            try:
                gone = tr.push_builds(builds)
            finally:
                tr.close()
            for b in gone:
                result.done.remove(b.target)
                result.missing[b.target] = "its objects are gone from the local cache"
            result.stats = tr.stats
            return result


def pull(targets: Iterable[str] = (), *, remote: str | None = None, jobs: int = TRANSFER_JOBS,
         file: str | None = None, cwd: str | None = None, wait: bool = True,
         reporter: Reporter | None = None) -> SyncResult:
    """Put back the outputs `pipetool.lock` records (of the named targets, or all), from
    the local cache or the remote, and record them as the workspace's state."""
    with open_project(file, cwd) as proj:
        rem = _remote_of(proj, remote)
        names = proj.selection(targets)[0] if targets else list(proj.pipeline.targets)
        with _locked(proj, "pull", wait, reporter):
            return _pull(proj, rem, names, jobs, or_quiet(reporter))


def _pull(proj: Project, rem: Remote, names: list[str], jobs: int, reporter: Reporter) -> SyncResult:
    from ..runflow import new_run_id

    conn, h = proj.conn, proj.hasher
    if conn is None:
        raise UsageError(f"cannot write pipetool's state under {proj.root}/.pipetool")
    result = SyncResult(rem.url)
    locked = read_lock(proj.root)
    current = proj.records()
    wanted: dict[str, Record] = {}
    for name in names:
        if name not in locked:
            result.missing[name] = "not in pipetool.lock"
            continue
        rec = store_records.from_lock(locked[name])
        if set(rec.outs) != set(proj.pipeline.targets[name].outs) or not all(rec.outs.values()):
            result.missing[name] = "pipetool.lock records other outs than the pipeline declares"
            continue
        if all(h.digest(o) == d for o, d in rec.outs.items()):
            result.present.append(name)
            _record(proj, name, rec, None)
            continue
        wanted[name] = rec

    displace_id = new_run_id()

    def usable(entry: CachedBuild | None, rec: Record) -> TypeGuard[CachedBuild]:
        return entry is not None and entry.outs == rec.outs

    cache = Cache(proj.root)
    staging = Staging(proj.root, cache)
    tr = Transfers(rem, cache, jobs, progress_for("pull"), sink=staging)
    try:
        builds: dict[str, CachedBuild] = {}
        described: dict[str, CachedBuild] = {}
        for name, rec in wanted.items():
            local = runcache.lookup(conn, rec.fingerprint)
            if usable(local, rec) and all(d is not None and cache.has(d) for d in rec.outs.values()):
                builds[rec.fingerprint] = local
            else:  # the lock says which objects: fetched by digest, no entry to ask for
                described[rec.fingerprint] = lock_build(name, rec)
        failed = tr.fetch_builds(described)
        builds.update({fp: b for fp, b in described.items() if fp not in failed})
        # What the lock alone could not give (a folder out without its "/", a damaged
        # object): the remote's own entry for that fingerprint.
        entries = tr.get_entries(sorted(failed))
        refailed = tr.fetch_builds(entries)
        builds.update({fp: b for fp, b in entries.items() if fp not in refailed})
        failed = {fp: refailed.get(fp) or (why if fp in entries else f"not on the remote ({why})")
                  for fp, why in failed.items() if fp not in builds}
        result.stats = tr.stats
        for name, rec in sorted(wanted.items()):
            entry = builds.get(rec.fingerprint)
            if not usable(entry, rec):
                result.missing[name] = failed.get(rec.fingerprint) or "not on the remote"
                continue
            try:
                protect(proj.pipeline.targets[name], current.get(name), h, cache, f"pull-{displace_id}",
                        reporter.warning)
                cache.restore_outs(entry.outs, entry.dirs, entry.execs, source=staging)
            except OutsError as exc:
                result.missing[name] = exc.message
                continue
            except (CacheMiss, OSError) as exc:
                result.missing[name] = getattr(exc, "reason", None) or str(exc)
                continue
            for o in entry.outs:
                h.forget(o)
            _record(proj, name, rec, entry.run_id)
            result.done.append(name)
    finally:
        tr.close()
        staging.close()
    return result


def _record(proj: Project, name: str, rec: Record, run_id: str | None) -> None:
    """The workspace now holds what the lock says: the store agrees from here on."""
    assert proj.conn is not None
    store_records.save_record(proj.conn, name, rec.fingerprint, rec.trace_dict() or {}, rec.outs, run_id or "")
