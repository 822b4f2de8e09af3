"""The one run path: `start_run` is what `run` and `branch` do once the project is open.

Checks before anything runs, the project lock, putting a base run's outputs back (branch),
then one run's lifecycle under the lock: the run row and manifest, the remote around the
scheduler, metrics, the workspace's head run and the lock file.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, PipelineError
from .execute.placement import resolve_jobs
from .execute.scheduler import (
    BUILT,
    FAILED,
    REMOVED,
    RESTORED,
    SKIPPED,
    WOULD_RUN,
    RunOptions,
    TargetResult,
    run_targets,
)
from .judge import judge_workspace
from .partitioning import template_names, vanished
from .plan import Verdict
from .project import Project
from .reporting import Reporter
from .runconfig import RunConfig, RunRequest
from .runhooks import RunWorkspace
from .spec.partitions import template_of
from .store import runs as store_runs
from .store.db import get_meta, set_meta
from .store.metrics import read_metrics
from .store.records import Record

RunStatus = Literal["succeeded", "failed", "interrupted", "dry-run"]
RunKind = Literal["run", "branch", "sweep"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, CI cancellation, `timeout`): stopped like Ctrl-C, exit 143."""


@dataclass
class RunResult:
    run_id: str | None
    status: RunStatus
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


def start_run(proj: Project, request: RunRequest, reporter: Reporter,
              base: dict[str, Any] | None = None) -> RunResult:
    """Run what is stale among the requested targets and record it as a new run.

    `base`: the manifest of the run to branch from (its outputs are put back first and it
    becomes the parent; `proj` was opened with its params). Otherwise the parent is the run
    whose outputs the workspace holds."""
    from .prerun import check_callables, check_outs_inside, check_resources
    from .putback import put_back, records_after, report_missing
    from .store.projectlock import acquire

    if request.dry_run:  # judged like `status`: placeholders expanded from the files there now
        proj.expand()
    else:  # partitions named one by one are made now; the rest when what they read is done
        proj.expand(sorted({tpl for n in request.targets if (tpl := template_of(n)) is not None}))
    p = proj.pipeline
    named, selected = proj.selection(request.targets, reporter.warning)
    forced = frozenset((named or selected) if request.force else ())
    if request.force:
        forced |= {n for n in request.targets if n in p.partitioned}
    templates = set(p.partitioned) if not request.targets else (
        template_names(p, selected) | {n for n in request.targets if n in p.partitioned})
    parent = base["id"] if base is not None else head(proj)
    if request.dry_run:
        records = records_after(proj, base) if base is not None else proj.records()
        verdicts = judge_workspace(p, proj.graph, proj.hasher, selected, records, templates, forced)
        return dry_run_result(verdicts, reporter, parent if base is not None else None)
    check_callables(p, selected)
    check_outs_inside(p, selected)
    check_resources(p, selected, request.config.capacity)
    run_id = new_run_id()
    holder = f"run {run_id}" if base is None else f"branch {run_id} from {parent}"
    with acquire(p.root, f"{holder} (pid {os.getpid()})", request.wait, reporter.waiting):
        records = proj.records()  # read under the lock: another run may just have finished
        put_back_now: dict[str, str] = {}
        if base is not None:
            pb = put_back(proj, base, records, reporter, run_id)
            report_missing(pb, reporter, "it will be rebuilt if needed")
            for name in pb.missing:  # the workspace holds something else: judge it afresh
                records.pop(name, None)
            put_back_now = dict.fromkeys(pb.restored, f"restored from the cache: put back from run {parent}")
        gone = vanished(proj.pipeline, records, templates)
        with sigterm_interrupts():
            return execute_run(proj, selected, forced, run_id, request, reporter, parent,
                               "run" if base is None else "branch", records, put_back_now, gone)


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
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into an interrupt, so running commands are stopped and records kept."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
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


def dry_run_result(verdicts: dict[str, Verdict], reporter: Reporter, parent: str | None = None) -> RunResult:
    """What `run -n` and `branch -n` answer: each target that would run, and why."""
    for n, v in verdicts.items():
        if not v.fresh:
            reporter.dry_run(n, v)
    return RunResult(None, "dry-run", {
        n: TargetResult(SKIPPED if v.fresh else WOULD_RUN, "; ".join(v.reasons))
        for n, v in verdicts.items()}, parent=parent)


class RunHost:
    """Where a run's targets live and what its end adopts. This one is the project itself
    (`run`, `branch`): `.pipetool/` beside the workspace, the run's own executor and remote
    session, and at the end the head run and pipetool.lock. A sweep's point brings its own
    (`sweeps/pointrun.py`): a workspace of its own, a shared executor, nothing adopted."""

    sweep: str | None = None  # the sweep the run is a point of (its manifest's `sweep`)

    def state_root(self, proj: Project) -> str:
        """The folder holding `.pipetool/` (the run's manifest file, logs, params file)."""
        return proj.root

    def jobs(self, config: RunConfig, jobs: int | None, root: str) -> int:
        return resolve_jobs(config, jobs, root)

    def remote(self, proj: Project, config: RunConfig, reporter: Reporter):
        return _open_remote(proj, config, reporter)

    def workspace(self, proj: Project, run_id: str, records: dict[str, Record], jobs: int, config: RunConfig,
                  reporter: Reporter) -> RunWorkspace:
        sdir = os.path.join(self.state_root(proj), ".pipetool")
        return RunWorkspace(proj, run_id, records, jobs, os.path.join(sdir, "logs", run_id),
                            os.path.join(sdir, "runs", run_id, "params.json"), config, reporter)

    def adopt(self, proj: Project, run_id: str, records: dict[str, Record], ws: RunWorkspace) -> None:
        """The workspace now holds this run's outputs: it becomes the head, the lock follows."""
        set_head(proj, run_id)
        rewrite_lock(proj, records, ws.changed)


def execute_run(proj: Project, selected: list[str], forced: frozenset[str], run_id: str, request: RunRequest,
                reporter: Reporter, parent: str | None, kind: RunKind, records: dict[str, Record],
                put_back_now: dict[str, str] | None = None, gone: dict[str, str] | None = None,
                host: RunHost | None = None) -> RunResult:
    """Run `selected` under the project lock and record it as run `run_id`. `put_back_now`:
    targets a branch put back from its base run before the scheduler ran (name -> reason):
    found up to date, they count as restored, not skipped (SPEC §5). `gone`: recorded
    partitions whose item is gone (name -> KEY), taken out of the workspace first. `host`:
    where it runs and what its end adopts (default: the project itself)."""
    host = host or RunHost()
    config = request.config
    jobs = host.jobs(config, request.jobs, proj.root)
    p = proj.pipeline
    conn = proj.conn
    if conn is None:
        raise PipelineError(f"cannot write pipetool's state under {p.root}/.pipetool")
    remote = host.remote(proj, config, reporter)  # a missing backend stops us before anything is written
    parent_params = store_runs.run_params(conn, parent) if parent else {}
    store_runs.start(conn, run_id, parent, list(request.argv), now_iso(), p.params, p.overrides,
                     param_changes(parent_params, p.params) if parent else [], kind, host.sweep)
    store_runs.write_manifest_file(host.state_root(proj), store_runs.manifest(conn, run_id))
    ws = host.workspace(proj, run_id, records, jobs, config, reporter)
    opts = RunOptions(jobs=jobs, keep_going=request.keep_going, forced=forced, run_id=run_id,
                      log_dir=ws.log_dir, params_file=ws.params_file, resources=config.capacity)
    results: dict[str, TargetResult] = {}
    status: RunStatus = "succeeded"
    signum = 0
    try:
        for name, why in ws.remove_vanished(gone or {}).items():
            results[name] = TargetResult(REMOVED, why)
            reporter.removed(name, why)
        if remote is not None:
            ws.remote = remote
            remote.prefetch(selected, records, forced)
        run_targets(p, proj.graph, selected, ws, reporter, opts, results)
        for name, why in (put_back_now or {}).items():
            res = results.get(name)
            if res is not None and res.action == SKIPPED:
                res.action, res.reason = RESTORED, why
                reporter.restored(name, why)
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
        _finish(proj, run_id, status, results, records, ws, reporter, host)
    return RunResult(run_id, status, results, signum, parent)


def _open_remote(proj: Project, config: RunConfig, reporter: Reporter):
    """The run's remote session, or None when no remote is configured."""
    from .remote.backend import remote_url

    url = remote_url(proj.pipeline.remote, proj.root, config.remote)
    if url is None:
        return None
    from .remote.backend import open_remote
    from .remote.readthrough import RemoteSession

    return RemoteSession(proj, open_remote(url), config.push, reporter)  # push False under --read-only


def _finish(proj: Project, run_id: str, status: RunStatus, results: dict[str, TargetResult],
            records: dict[str, Record], ws: RunWorkspace, reporter: Reporter, host: RunHost) -> None:
    """Journal what the scheduler did not (skipped, not-run), metrics, the manifest file,
    and what the host adopts (a run: the workspace's head run and the lock file)."""
    p, conn = proj.pipeline, proj.conn
    assert conn is not None
    store_runs.record_targets(conn, run_id, [
        (n, r.action, r.fingerprint or (records[n].fingerprint if n in records else None), r.reason,
         round(r.duration_s, 3), r.outs or (records[n].outs if n in records and r.action == SKIPPED else {}),
         r.checks)
        for n, r in results.items() if n not in ws.journaled])
    metric_files = [m for n, r in results.items() if r.action in (BUILT, RESTORED, SKIPPED)
                    for m in p.targets[n].metrics]
    store_runs.finish(conn, run_id, status, now_iso(), read_metrics(p.root, metric_files, reporter.warning))
    store_runs.write_manifest_file(host.state_root(proj), store_runs.manifest(conn, run_id))
    host.adopt(proj, run_id, records, ws)


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
