"""One point of a sweep as a run (SPEC §10): the run path's `RunHost` and `RunWorkspace`
for a point's own folder.

A point is an ordinary run (`runflow.execute_run`: the scheduler, the journal, the
manifest) whose workspace is its folder under `.pipetool/sweeps/`, whose records stay in
memory (the project's `records` table, head run and `pipetool.lock` are never written),
whose executor is its lane of the sweep's shared one, and whose restores are links into
the cache. A fingerprint another point is building is *followed* (`dedup.py`), never
built twice.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import PipetoolError
from ..execute.jobs import Executor, JobKey, Outcome
from ..execute.scheduler import BUILT, RESTORED, TargetResult
from ..fingerprint.trace import Trace
from ..outguard import OutsError
from ..project import Project
from ..remote.readthrough import RemoteSession
from ..reporting import Reporter
from ..runconfig import RunConfig
from ..runflow import RunHost
from ..runhooks import RunWorkspace
from ..spec.model import Target
from ..store import runcache
from ..store.cache import CacheMiss, executables
from ..store.records import Record
from .dedup import Builds, SharedBuildFailed
from .pointfs import PointCache
from .shared import FollowAnswer, Lane

if TYPE_CHECKING:
    from ..remote.backend import Remote


@dataclass
class PointEnv:
    """What a point runs with, made by the sweep."""

    number: int  # 1-based, in the sweep's order
    sweep_id: str
    project_root: str  # where .pipetool/ (the store, the cache, logs, manifests) lives
    jobs: int  # the sweep's -j
    lane: Lane
    builds: Builds
    cache: PointCache
    remote_url: str | None = None


class PointHost(RunHost):
    """A point's run lives in its folder and adopts nothing: no head run, no lock file."""

    def __init__(self, env: PointEnv):
        self.env = env
        self.sweep = env.sweep_id
        self.workspace_made: PointWorkspace | None = None

    def state_root(self, proj: Project) -> str:
        return self.env.project_root

    def jobs(self, config: RunConfig, jobs: int | None, root: str) -> int:
        return self.env.jobs  # resolved once for the sweep (a Dask cluster probed once)

    def remote(self, proj: Project, config: RunConfig, reporter: Reporter):
        if self.env.remote_url is None:
            return None
        from ..remote.backend import open_remote

        return PointRemote(proj, open_remote(self.env.remote_url), config.push, reporter, self.env)

    def workspace(self, proj: Project, run_id: str, records: dict[str, Record], jobs: int, config: RunConfig,
                  reporter: Reporter) -> RunWorkspace:
        sdir = os.path.join(self.env.project_root, ".pipetool")
        ws = PointWorkspace(proj, run_id, records, jobs, os.path.join(sdir, "logs", run_id),
                            os.path.join(sdir, "runs", run_id, "params.json"), config, reporter, self.env)
        self.workspace_made = ws
        return ws

    def adopt(self, proj: Project, run_id: str, records: dict[str, Record], ws: RunWorkspace) -> None:
        """The project's workspace does not hold a point's outputs: nothing to adopt."""


def inside_point(root: str, outs: tuple[str, ...] | list[str], name: str) -> None:
    """Refuse (the target fails, nothing written) an out whose folder resolves outside `root`."""
    real_root = os.path.join(os.path.realpath(root), "")
    for out in outs:
        folder = os.path.realpath(os.path.join(root, os.path.dirname(out.rstrip("/"))))
        if not os.path.join(folder, "").startswith(real_root):
            raise OutsError(f"{name}: its out {out} would be written through a link, into {folder}; a sweep's "
                            "point writes only inside its own folder")


class PointRemote(RemoteSession):
    """The remote as a run uses it, with the point's view of the project's cache; downloads
    wait under the project's `.pipetool/tmp/` and are moved into the point's folder."""

    def __init__(self, proj: Project, remote: Remote, push: bool, reporter: Reporter, env: PointEnv):
        from ..remote.staging import Staging
        from ..remote.transfer import Progress, Transfers

        super().__init__(proj, remote, push, reporter)
        self.cache = env.cache
        self.staging = Staging(env.project_root, env.cache)
        self.transfers = Transfers(remote, env.cache, progress=Progress(), sink=self.staging)


class PointWorkspace(RunWorkspace):
    """A point's folder and the store as its scheduler sees them."""

    def __init__(self, proj: Project, run_id: str, records: dict[str, Record], jobs: int, log_dir: str,
                 params_file: str, config: RunConfig, reporter: Reporter, env: PointEnv):
        super().__init__(proj, run_id, records, jobs, log_dir, params_file, config, reporter)
        self.env = env
        self.cache = env.cache
        self.claimed: set[str] = set()  # fingerprints this point builds for all
        self._following: dict[str, tuple[Target, Trace]] = {}
        self._after_follow: dict[str, str] = {}  # target -> why, restored once its followed build settled
        env.lane.on_follow = self._followed

    # -- records stay in memory ------------------------------------------------------------
    def _keep_record(self, name: str, fingerprint: str, trace: dict[str, Any], outs: dict[str, str | None]) -> None:
        """Not in the project's store: the project's workspace does not hold it."""

    def _drop_record(self, name: str) -> None:
        """Nothing stored to drop."""

    def _new_executor(self) -> Executor:
        return self.env.lane

    def prepare_outs(self, target: Target) -> None:
        """As a run does, once sure that no out's folder leads out of the point's folder
        (through a link into the project): a point writes only into its own folder."""
        inside_point(self.proj.root, target.outs, target.name)
        super().prepare_outs(target)

    # -- shared work once ------------------------------------------------------------------
    def restore(self, target: Target, trace: Trace) -> tuple[dict[str, str | None] | None, str]:
        if not target.cache:  # never restored: each point runs it
            return super().restore(target, trace)
        return self._restore_shared(target, trace)

    def _restore_shared(self, t: Target, trace: Trace) -> tuple[dict[str, str | None] | None, str]:
        """Restore `t` if its fingerprint was built; else build it, or follow the point
        that builds it now (None and why: the scheduler goes on to submit the job, which
        the lane parks)."""
        env, fp = self.env, trace.fingerprint
        other = env.builds.claim(fp, t.name, env.number, self.run_id, lambda: env.lane.settled(t.name))
        if other is not None and other.ok is False:
            raise SharedBuildFailed(other.failure())
        if other is not None:
            self._following[t.name] = (t, trace)
            env.lane.follow(t.name)
            return None, f"waiting for point {other.point}, which builds it (run {other.run_id})"
        self.claimed.add(fp)
        try:
            outs, why = super().restore(t, trace)
        except BaseException:
            self._settle(fp, None)
            raise
        if outs is not None:
            if why.startswith("restored from remote"):
                self._keep_locally(t, trace, outs)
            self._settle(fp, True)
        return outs, why

    def _followed(self, name: str) -> FollowAnswer:
        """The build `name` followed was settled: restore it now, follow another, or build it."""
        t, trace = self._following.pop(name)
        try:
            outs, why = self._restore_shared(t, trace)
        except PipetoolError as exc:
            return Outcome(JobKey(name), False, exc.message, 0.0)
        if outs is not None:
            self._after_follow[name] = why
            return Outcome(JobKey(name), True, "", 0.0)
        return "wait" if name in self._following else "build"

    def _keep_locally(self, t: Target, trace: Trace, outs: dict[str, str | None]) -> None:
        """Outputs restored from the remote go into the local cache too, so that the other
        points link them instead of downloading them again."""
        dirs = [o for o in outs if os.path.isdir(os.path.join(self.proj.root, o.rstrip("/")))]
        try:
            listings = {o: self.proj.hasher.dir_listing(o) for o in dirs}
            for out, digest in outs.items():
                assert digest is not None
                self.cache.store_out(out, digest, listings.get(out))
            runcache.save(self.conn, runcache.CachedBuild(
                trace.fingerprint, t.name, {o: d for o, d in outs.items() if d}, tuple(dirs), trace.to_dict(),
                self.run_id, tuple(executables(self.proj.root, outs, dirs))))
        except (CacheMiss, OSError, PipetoolError) as exc:
            self.reporter.warning(f"{t.name}: restored from the remote but not cached here: {exc}")

    def record(self, name: str, trace: Trace, outs: dict[str, str | None], result: TargetResult) -> None:
        why = self._after_follow.pop(name, None)
        if why is not None and result.action == BUILT:  # its job was parked, then restored
            result.action, result.reason, result.duration_s = RESTORED, why, 0.0
        ok: bool | None = None
        try:
            super().record(name, trace, outs, result)
            ok = result.action in (BUILT, RESTORED)
        finally:
            self._settle(trace.fingerprint, ok, result.reason)

    def _settle(self, fp: str, ok: bool | None, message: str = "") -> None:
        if fp in self.claimed:
            self.claimed.discard(fp)
            self.env.builds.settle(fp, self.env.number, ok, message)

    def release(self) -> None:
        """The point's run is over: what it still had claimed goes to the others."""
        self.env.builds.abandon(self.env.number)
        self.claimed.clear()
