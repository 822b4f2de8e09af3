"""The points of a sweep run together (SPEC §10): a few threads, each running one point at a
time through the ordinary run path (`runflow.execute_run` with a `PointHost`), all
submitting to one `SharedExecutor` under one `-j`.

A point's run row is opened when its thread takes it and closed when it ends, so a sweep
killed at any moment loses no finished point. On Ctrl-C or SIGTERM no further point
starts, the running jobs are terminated and each running point is recorded interrupted.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import PipetoolError
from ..project import Project
from ..reporting import Reporter
from ..runconfig import RunRequest
from ..runflow import RunResult, execute_run, new_run_id
from ..store.cache import CacheMiss
from ..store.db import StoreConnection, open_db
from ..store.records import Record
from ..store.runcache import CachedBuild
from .dedup import Builds
from .forest import ForestPlan, make_forest, plan_forest, project_lister
from .pointfs import PointCache, PointHasher, PointStats, Verified
from .pointrun import PointEnv, PointHost
from .prepare import PreparedPoint
from .report import for_point, point_done, point_error
from .shared import SharedExecutor


@dataclass
class PointOutcome:
    """How one point ended in this invocation."""

    number: int
    point_id: str
    run_id: str | None
    status: str  # succeeded | failed | interrupted | not-run
    error: str = ""


@dataclass
class Start:
    """Where every point starts: the base run, the records the workspace would hold, and
    (`--from RUN`) the base run's builds, linked in from the cache."""

    base: str | None
    records: dict[str, Record]
    provided: dict[str, CachedBuild] = field(default_factory=dict)


@dataclass
class Pool:
    """One sweep's run of its points (its state is shared by the point threads)."""

    root: str
    sweep_id: str
    start: Start
    request: RunRequest  # -j (resolved), -k, argv, where jobs run
    shared: SharedExecutor
    reporter: Reporter
    remote_url: str | None = None
    builds: Builds = field(default_factory=Builds)
    verified: Verified = field(default_factory=Verified)
    stopped: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _plans: dict[tuple, ForestPlan] = field(default_factory=dict)
    _last_id: str = ""
    _conns: list[StoreConnection] = field(default_factory=list)
    _errors: set[str] = field(default_factory=set)
    _results: dict[int, PointOutcome] = field(default_factory=dict)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start_points(self, points: list[PreparedPoint], threads: int) -> None:
        """Start running `points` on `threads` threads (at most one per point)."""
        todo = deque(points)

        def worker() -> None:
            conn: StoreConnection | None = None
            try:
                while True:
                    with self._lock:
                        if not todo:
                            return
                        pp = todo.popleft()
                        run_id = self._new_id()  # taken in the points' order: their runs list so
                    if self.stopped.is_set():
                        continue  # not-run
                    if conn is None:
                        conn = self._connect()
                    self._results[pp.number] = self._run_point(pp, conn, run_id)
            finally:
                if conn is not None:
                    conn.close()

        self._threads = [threading.Thread(target=worker, name=f"pipetool-sweep-{i}", daemon=True)
                         for i in range(max(1, min(threads, len(points))))]
        for t in self._threads:
            t.start()

    def join(self) -> None:
        """Wait for every point thread; Ctrl-C and SIGTERM reach this (the main) thread."""
        for t in self._threads:
            while t.is_alive():
                t.join(0.2)

    def outcomes(self, points: list[PreparedPoint]) -> list[PointOutcome]:
        return [self._results.get(pp.number) or PointOutcome(pp.number, pp.point.id, None, "not-run")
                for pp in points]

    def interrupt(self, make_exc: Callable[[], BaseException]) -> None:
        self.stopped.set()
        self.shared.interrupt(make_exc)

    def _connect(self) -> StoreConnection:
        conn = open_db(self.root)  # one per thread: SQLite transactions are per connection
        if conn is None:
            raise PipetoolError(f"cannot open pipetool's store under {self.root}/.pipetool")
        return conn

    # -- one point ---------------------------------------------------------------------------
    def _run_point(self, pp: PreparedPoint, conn: StoreConnection, run_id: str) -> PointOutcome:
        reporter = for_point(self.reporter, pp.label)
        host: PointHost | None = None
        try:
            host, proj, records, gone = self._point_workspace(pp, conn, reporter)
            result = execute_run(proj, list(pp.selected), frozenset(), run_id, self.request, reporter,
                                 self.start.base, "sweep", records, gone=gone, host=host)
        except Exception as exc:  # pipetool's own failure in this point: the others go on
            message = exc.render() if isinstance(exc, PipetoolError) else f"internal error: {type(exc).__name__}: {exc}"
            self._error(pp, message)
            started = host is not None and host.workspace_made is not None
            return PointOutcome(pp.number, pp.point.id, run_id if started else None, "failed", message)
        finally:
            if host is not None and host.workspace_made is not None:
                host.workspace_made.release()
            self.builds.abandon(pp.number)
        point_done(self.reporter, pp.label, result)
        return PointOutcome(pp.number, pp.point.id, result.run_id, _status(result))

    def _point_workspace(self, pp: PreparedPoint, conn: StoreConnection, reporter: Reporter
                         ) -> tuple[PointHost, Project, dict[str, Record], dict[str, str]]:
        """The point's folder made afresh, its project as the run path sees it, the records
        it starts from and the partitions whose item is gone."""
        from ..partitioning import vanished

        p0 = pp.proj.pipeline
        point_root = os.path.join(self.root, ".pipetool", "sweeps", self.sweep_id, pp.point.id)
        provided = {n: b for n, b in self.start.provided.items() if n in p0.targets}
        make_forest(self._plan(p0, provided), self.root, point_root)
        stats = PointStats(pp.proj.stat_cache)
        cache = PointCache(point_root, state_root=self.root, verified=self.verified, stats=stats)
        records = dict(self.start.records)
        for name, build in provided.items():  # the base run's outputs, linked from the cache
            try:
                cache.restore_outs(build.outs, build.dirs, build.execs)
            except (CacheMiss, OSError, PipetoolError) as exc:  # judged afresh
                records.pop(name, None)
                reporter.warning(f"{name}: outputs of run {self.start.base} cannot be linked in "
                                 f"({getattr(exc, 'reason', None) or exc}); it will be rebuilt if needed")
        p = dataclasses.replace(p0, root=point_root, partition_cache=None, derive=None)
        proj = Project(p, pp.proj.graph, conn, stats, PointHasher(point_root, stats, project_root=self.root))
        env = PointEnv(pp.number, self.sweep_id, self.root, self.request.jobs or 1, self.shared.lane(pp.number),
                       self.builds, cache, self.remote_url)
        return PointHost(env), proj, records, vanished(p, records, pp.templates)

    def _plan(self, p: Any, provided: dict[str, CachedBuild]) -> ForestPlan:
        outs = sorted({o for t in p.targets.values() for o in t.outs})
        deep = sorted({o for t in p.targets.values() if t.foreach is not None for o in t.outs})
        leave_out = sorted({o for b in provided.values() for o in b.outs})
        key = (tuple(outs), tuple(deep), tuple(leave_out))
        with self._lock:
            plan = self._plans.get(key)
        if plan is None:
            plan = plan_forest(project_lister(self.root), outs, deep, leave_out)
            with self._lock:
                self._plans[key] = plan
        return plan

    def _new_id(self) -> str:
        """Under the lock: a run id after every other of this sweep (several points may start
        in one millisecond, and an id's last digits are random)."""
        while True:
            rid = new_run_id()
            if rid > self._last_id:
                self._last_id = rid
                return rid

    def _error(self, pp: PreparedPoint, message: str) -> None:
        with self._lock:
            first = message not in self._errors
            self._errors.add(message)
        point_error(self.reporter, pp.label, message if first else "failed (the same error)")


def _status(result: RunResult) -> str:
    return result.status if result.status in ("succeeded", "failed", "interrupted") else "failed"
