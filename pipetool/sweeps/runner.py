"""`pipetool sweep`: one run per point of a parameter space, all at once (SPEC §10).

The sweep is recorded (`sweeps` table) before any point runs, with all `--resume` needs:
the space, the targets, the base and the options. Every point is validated first (exit 2
naming the point, nothing run). Then, under the project lock, the points run together
(`pool.py`): each a run whose parent is the base, in a folder of its own under
`.pipetool/sweeps/SWEEP/POINT/`, sharing one executor and building a shared fingerprint
once. The project's records, head run, `pipetool.lock` and files are never written.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, PipelineError, UsageError
from ..execute.placement import make_executor, resolve_jobs
from ..project import Project, open_project
from ..putback import KEPT_ACTIONS
from ..reporting import Reporter
from ..runconfig import RunRequest, make_config
from ..runflow import Terminated, head, new_run_id, now_iso, sigterm_interrupts
from ..store import runcache
from ..store import runs as store_runs
from ..store.records import Record
from .pool import PointOutcome, Pool, Start
from .prepare import prepare_points
from .shared import SharedExecutor
from .space import Space, point_id


@dataclass(frozen=True)
class SweepRequest:
    """What a sweep is asked to do: a new space (with `from_run`), or `resuming` one."""

    run: RunRequest  # the targets, -j, -k, --no-wait, argv, where jobs run
    space: Space | None = None
    from_run: str | None = None
    resuming: bool = False
    resume: str | None = None  # the sweep to resume (an id or prefix); None: the last


@dataclass
class SweepResult:
    sweep_id: str
    base: str | None
    status: str  # succeeded | failed | interrupted
    points: list[PointOutcome] = field(default_factory=list)  # those run by this invocation
    signal: int = 0
    resumed: bool = False
    table: dict[str, Any] = field(default_factory=dict)  # `sweep show --json` at the end

    @property
    def exit_code(self) -> int:
        if self.status == "interrupted":
            return 128 + self.signal if self.signal else EXIT_INTERRUPTED
        return EXIT_FAILED if self.status == "failed" else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return self.table


def run_sweep(req: SweepRequest, file: str | None, cwd: str | None, reporter: Reporter) -> SweepResult:
    with open_project(file, cwd) as main:
        if main.conn is None or main.conn.read_only:
            raise PipelineError(f"cannot write pipetool's state under {main.root}/.pipetool: a sweep records "
                                "each point as a run")
        return _Sweep(main, req, reporter).run()


class _Sweep:
    def __init__(self, main: Project, req: SweepRequest, reporter: Reporter):
        self.main, self.req, self.reporter = main, req, reporter
        assert main.conn is not None
        self.conn = main.conn

    def run(self) -> SweepResult:
        from ..remote.backend import open_remote, remote_url
        from ..store.projectlock import acquire

        req, conn = self.req, self.conn
        run = req.run
        if req.resuming:
            sweep_id = store_runs.resolve_sweep(conn, req.resume)
            rec = store_runs.sweep_record(conn, sweep_id)
            space, targets = Space.from_json(rec["space"]), tuple(rec["targets"])
            run = _resumed_options(run, rec["options"], targets)
            base, from_mode = rec["base"], bool(rec["options"].get("from"))
            if not from_mode and base is not None and head(self.main) != base:
                from_mode = True  # the workspace moved on: start from the base run's outputs
            done = succeeded_points(conn, sweep_id, space)
            numbered = [(pt.index + 1, pt) for pt in space.points() if pt.id not in done]
            if not numbered:
                return SweepResult(sweep_id, base, "succeeded", resumed=True, table=_table(conn, sweep_id))
        else:
            assert req.space is not None
            sweep_id, space, targets = new_run_id(), req.space, run.targets
            from_mode = req.from_run is not None
            base = store_runs.resolve(conn, req.from_run) if req.from_run is not None else head(self.main)
            numbered = [(pt.index + 1, pt) for pt in space.points()]
        manifest = store_runs.manifest(conn, base) if from_mode and base is not None else None
        config = run.config
        points = prepare_points([pt for _, pt in numbered], space.fixed, targets, self.main,
                                manifest["params"] if manifest else None, config.capacity, self.reporter.warning,
                                [n for n, _ in numbered])
        jobs = resolve_jobs(config, run.jobs, self.main.root)
        url = remote_url(self.main.pipeline.remote, self.main.root, config.remote)
        if url is not None:
            open_remote(url)  # a missing backend stops the sweep before anything is written
        run = replace(run, jobs=jobs, targets=targets)
        self.main.stat_cache.get("")  # loaded here: the point threads read it
        holder = f"sweep {sweep_id} (pid {os.getpid()})"
        with acquire(self.main.root, holder, run.wait, self.reporter.waiting):
            start = self._start(base, manifest)
            if req.resuming:
                store_runs.resume_sweep(conn, sweep_id)
            else:
                store_runs.start_sweep(conn, sweep_id, base, now_iso(), list(run.argv), space.to_json(), list(targets),
                                       _options(run, req.from_run is not None))
            needs = {n: t.resources for pp in points for n, t in pp.proj.pipeline.targets.items() if t.resources}
            shared = SharedExecutor(lambda: make_executor(config, self.main.root, jobs, needs), jobs,
                                    config.capacity, lambda job: needs.get(job.key.target, ()))
            pool = Pool(self.main.root, sweep_id, start, run, shared, self.reporter, url)
            signum = 0
            try:
                with sigterm_interrupts():
                    pool.start_points(points, min(max(2 * jobs, 8), 64))
                    try:
                        pool.join()
                    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the points record, then stop
                        signum = 15 if isinstance(exc, Terminated) else 2
                        pool.interrupt(Terminated if signum == 15 else KeyboardInterrupt)
                        pool.join()  # a second interrupt stops waiting
            finally:
                shared.close()
            outcomes = pool.outcomes(points)
            status = self._status(sweep_id, space, signum)
            store_runs.finish_sweep(conn, sweep_id, status, now_iso())
        return SweepResult(sweep_id, base, status, outcomes, signum, req.resuming, _table(conn, sweep_id))

    def _start(self, base: str | None, manifest: dict[str, Any] | None) -> Start:
        """What each point starts from (read under the project lock)."""
        records = self.main.records()
        if manifest is None:
            return Start(base, records)
        start = Start(base, records)
        for name, t in manifest["targets"].items():
            fp, outs = t.get("fingerprint"), t.get("outs") or {}
            if t.get("action") not in KEPT_ACTIONS or not fp:
                continue
            entry = runcache.lookup(self.conn, fp)
            if entry is None or set(entry.outs) != set(outs):
                records.pop(name, None)
                self.reporter.warning(f"{name}: outputs of run {base} cannot be put back (its outputs are not in "
                                      "the cache); it will be rebuilt if needed")
                continue
            start.provided[name] = entry
            records[name] = Record(fp, dict(outs), entry.trace)
        return start

    def _status(self, sweep_id: str, space: Space, signum: int) -> str:
        if signum:
            return "interrupted"
        done = succeeded_points(self.conn, sweep_id, space)
        return "succeeded" if all(pt.id in done for pt in space.points()) else "failed"


def succeeded_points(conn: Any, sweep_id: str, space: Space) -> set[str]:
    """The ids of the sweep's points that have a succeeded run."""
    keys = space.keys
    return {run_point_id(r, keys) for r in store_runs.sweep_runs(conn, sweep_id) if r["status"] == "succeeded"}


def run_point_id(run: dict[str, Any], keys: list[str]) -> str:
    """The point a run of a sweep ran: its overrides on the swept keys."""
    overrides = run.get("overrides") or {}
    return point_id({k: overrides[k] for k in keys if k in overrides})


def _options(run: RunRequest, from_run: bool) -> dict[str, Any]:
    c = run.config
    return {"jobs": run.jobs, "keep_going": run.keep_going, "executor": c.executor, "scheduler": c.scheduler,
            "resources": dict(c.resources), "remote": c.remote, "push": c.push, "read_only": c.read_only,
            "from": from_run}


def _resumed_options(run: RunRequest, rec: dict[str, Any], targets: tuple[str, ...]) -> RunRequest:
    """A resumed sweep runs with the options it was started with, unless given again now."""
    c = run.config
    executor = c.executor if c.executor != "local" else rec.get("executor") or "local"
    scheduler = c.scheduler or (rec.get("scheduler") if executor == rec.get("executor") else None)
    config = make_config(executor, scheduler, dict(c.resources) or rec.get("resources") or None,
                         c.remote or rec.get("remote"), c.push and rec.get("push", True),
                         c.read_only or bool(rec.get("read_only")))
    return replace(run, targets=targets, jobs=run.jobs or rec.get("jobs"),
                   keep_going=run.keep_going or bool(rec.get("keep_going")), config=config)


def _table(conn: Any, sweep_id: str) -> dict[str, Any]:
    from .show import sweep_table

    return sweep_table(conn, sweep_id)


def check_resume_alone(targets: tuple[str, ...], sets: object, random_n: object, seed: object,
                       sweep_file: object, from_run: object) -> None:
    """`--resume` takes the sweep as it was recorded: nothing that would change it."""
    given = [name for name, v in (("TARGET", targets), ("-S", sets), ("--random", random_n), ("--seed", seed),
                                  ("--sweep", sweep_file), ("--from", from_run)) if v]
    if given:
        raise UsageError(f"--resume runs the recorded sweep's unfinished points as it was started; "
                         f"leave out {', '.join(given)}")
