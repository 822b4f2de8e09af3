"""What a run does with a remote (SPEC §8): read through it, write back to it.

Before the scheduler starts, the run-cache entries of the stale targets are asked for,
level by level: a target's fingerprint is computed with its upstream's outs as the
remote builds would restore them, so a fresh clone learns in a few parallel rounds
that everything can be restored, and the objects download meanwhile. During the run, a
target judged stale that this could not foresee is asked for on its own. After the run,
what was built is uploaded (unless `--no-push`/`--read-only`). A remote that fails is
reported once and left alone: the run goes on locally.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..judge import judge
from ..store import runcache
from ..store.cache import Cache, CacheMiss
from ..store.records import Record
from ..store.runcache import CachedBuild
from .backend import Remote, RemoteError
from .progress import progress_for
from .staging import Staging
from .transfer import Transfers, lock_build

if TYPE_CHECKING:
    from ..project import Project
    from ..reporting import Reporter


class RemoteSession:
    """One run's use of the remote: what was asked, fetched, found unusable, and built."""

    def __init__(self, proj: Project, remote: Remote, push: bool, reporter: Reporter):
        self.proj = proj
        self.remote = remote
        self.push_enabled = push
        self.reporter = reporter
        self.cache = Cache(proj.root)
        self.staging = Staging(proj.root, self.cache)
        self.transfers = Transfers(remote, self.cache, progress=progress_for("remote"), sink=self.staging)
        self.asked: set[str] = set()  # fingerprints asked of the remote
        self.ready: dict[str, CachedBuild] = {}  # remote builds whose objects are here, by fingerprint
        self.unusable: dict[str, str] = {}  # fingerprint -> why its remote build cannot be used
        self.built: list[CachedBuild] = []  # built by this run: to upload
        self.broken = False  # the remote failed once: not asked again in this run
        self._pending: list[Future] = []  # object downloads started by the prefetch

    def _failed(self, exc: RemoteError, doing: str) -> None:
        if not self.broken:
            self.reporter.warning(f"{exc.message}; {doing}")
        self.broken = True

    # -- reading -------------------------------------------------------------------
    def prefetch(self, selected: list[str], records: dict[str, Record], forced: frozenset) -> None:
        """Ask for every stale target the remote may have built, level by level."""
        p, g, h = self.proj.pipeline, self.proj.graph, self.proj.hasher
        conn = self.proj.conn
        unknown: set[str] = set()  # targets that will build: their outs are not known ahead
        assumed: list[str] = []
        chosen = set(selected)
        depth: dict[str, int] = {}
        for n in selected:
            depth[n] = 1 + max((depth[u] for u in g.upstream[n] if u in chosen), default=-1)
        known: dict[str, CachedBuild] = {}  # builds the lock describes, by fingerprint
        levels: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for n in selected:
            levels[depth[n]].append(n)
        coordinator = ThreadPoolExecutor(1, thread_name_prefix="pipetool-prefetch")
        try:
            for level in levels:
                if self.broken:
                    break
                asks: dict[str, str] = {}
                for name in level:
                    t = p.targets[name]
                    if (any(u in unknown for u in g.upstream[name]) or name in forced or t.always or not t.cache
                            or t.foreach is not None):  # a placeholder: its partitions come later
                        unknown.add(name)
                        continue
                    j = judge(p, t, h, records.get(name))
                    if j.verdict.fresh:
                        continue
                    trace = j.trace
                    local = runcache.lookup(conn, trace.fingerprint) if conn is not None else None
                    local = local or self.ready.get(trace.fingerprint)
                    rec = records.get(name)
                    if local is None and rec is not None and rec.fingerprint == trace.fingerprint:
                        # The lock names the outs of this very fingerprint: fetch them by
                        # digest, no entry to ask for (the restore asks if they fail).
                        local = lock_build(name, rec)
                        known[trace.fingerprint] = local
                    if local is not None and set(local.outs) == set(t.outs):
                        for o, d in local.outs.items():
                            h.assume(o, d)
                            assumed.append(o)
                        continue
                    asks[name] = trace.fingerprint
                try:
                    entries = self._entries(asks.values())
                except RemoteError as exc:
                    self._failed(exc, "building locally")
                    break
                for name, fp in asks.items():
                    e = entries.get(fp)
                    if e is None or set(e.outs) != set(p.targets[name].outs):
                        unknown.add(name)
                        continue
                    for o, d in e.outs.items():
                        h.assume(o, d)
                        assumed.append(o)
                entries.update(known)
                known = {}
                if entries:
                    self._pending.append(coordinator.submit(self._fetch_objects, entries))
            self._wait_pending()
        finally:
            coordinator.shutdown(wait=True)
            for o in assumed:
                h.forget(o)

    def _entries(self, fps) -> dict[str, CachedBuild]:
        todo = [fp for fp in fps if fp not in self.asked]
        self.asked.update(todo)
        return self.transfers.get_entries(todo) if todo else {}

    def _fetch_objects(self, builds: dict[str, CachedBuild]) -> dict[str, CachedBuild]:
        failed = self.transfers.fetch_builds(builds)
        self.unusable.update({fp: f"remote copy unusable: {why}" for fp, why in failed.items()
                              if fp in self.asked})
        return {fp: b for fp, b in builds.items() if fp not in failed}

    def _wait_pending(self) -> None:
        for f in self._pending:
            try:
                self.ready.update(f.result())
            except RemoteError as exc:
                self._failed(exc, "building locally")
        self._pending.clear()

    def _fetch(self, fingerprint: str) -> None:
        """Ask the remote for one build (a target the prefetch could not foresee)."""
        if self.broken or fingerprint in self.asked:
            return
        try:
            entries = self._entries([fingerprint])
            if entries:
                self.ready.update(self._fetch_objects(entries))
        except RemoteError as exc:
            self._failed(exc, "building locally")

    def restore(self, outs: tuple[str, ...], fingerprint: str) -> tuple[dict[str, str | None] | None, str]:
        """Put back the remote's build of `fingerprint` (fetched now if the prefetch did not
        foresee it): its outs, or None and why not ("" when the remote has none)."""
        if fingerprint not in self.ready:
            self._fetch(fingerprint)
        build = self.ready.pop(fingerprint, None)
        if build is None or set(build.outs) != set(outs):
            return None, self.unusable.get(fingerprint, "")
        try:
            self.cache.restore_outs(build.outs, build.dirs, build.execs, source=self.staging)
        except (CacheMiss, OSError) as exc:
            return None, f"remote copy could not be restored ({getattr(exc, 'reason', None) or exc})"
        if build.run_id:
            return dict(build.outs), f"restored from remote: built by run {build.run_id}"
        return dict(build.outs), "restored from remote: the outputs pipetool.lock records"

    # -- writing -------------------------------------------------------------------
    def built_one(self, build: CachedBuild) -> None:
        if self.push_enabled:
            self.built.append(build)

    def push(self) -> None:
        """Upload what this run built: objects first, then their entries."""
        if not self.built:
            return
        try:
            self.transfers.push_builds(self.built)
        except RemoteError as exc:
            self.reporter.warning(f"{exc.message}; this run's outputs were not uploaded")
        self.built.clear()

    def close(self) -> None:
        self.transfers.close()
        self.staging.close()
