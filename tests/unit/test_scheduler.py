"""The run loop (execute/scheduler.py) against a fake workspace and a fake executor: no
processes, no files, no sleeps. The fake executor finishes jobs when the test says so
(its `pick`), so orderings that depend on timing in a real run are chosen here."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from pipetool.errors import PipetoolError
from pipetool.execute.jobs import Job, JobKey, Outcome
from pipetool.execute.scheduler import RunOptions, TargetResult, run_targets
from pipetool.fingerprint.trace import Trace
from pipetool.graph import build_graph
from pipetool.judge import Judgement
from pipetool.plan import decide
from pipetool.spec.model import Check, Dep, Pipeline, Target
from pipetool.store.records import Record


def target(name: str, deps=(), outs=None, checks=(), resources=(), always=False) -> Target:
    return Target(name=name, cmd=f"make {name}", python=None, deps=tuple(Dep(d) for d in deps),
                  outs=tuple(outs if outs is not None else [f"out/{name}"]), metrics=(), params=(), needs=(),
                  env=(), always=always, checks=tuple(Check(cmd=c) for c in checks),
                  resources=tuple(resources), cmd_template=f"make {name}")


def pipeline(*targets: Target) -> Pipeline:
    return Pipeline(root="/nonexistent-root", file="/nonexistent-root/pipeline.yaml",
                    targets={t.name: t for t in targets}, params={}, order=tuple(t.name for t in targets))


class FakeExecutor:
    """Holds submitted jobs until `wait_next` finishes one: the one `pick` chooses (default:
    the oldest), with the outcome `fail` names for it (default: success)."""

    def __init__(self, world: World):
        self.world = world
        self.running: dict[JobKey, Job] = {}
        self.submitted: list[JobKey] = []
        self.most_at_once = 0
        self.cancelled = False
        self.closed = False

    def submit(self, job: Job) -> None:
        assert job.key not in self.running
        self.running[job.key] = job
        self.submitted.append(job.key)
        self.most_at_once = max(self.most_at_once, len(self.running))

    def wait_next(self) -> Outcome:
        assert self.running, "waiting with nothing running would hang a real run"
        key = self.world.pick(self)
        self.running.pop(key)
        message = self.world.fail.get(str(key))
        if message is None and key.check is None:
            self.world.produce(self.world.p.targets[key.target])
        return Outcome(key, message is None, message or "", 1.0)

    def cancel_all(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        self.closed = True


def oldest(ex: FakeExecutor) -> JobKey:
    return next(iter(ex.running))


@dataclass
class World:
    """The workspace as content digests by path, the records, and what a job writes.

    A target's trace is its deps' digests, decided by the real `plan.decide`: so a
    rebuilt upstream with the same bytes leaves its downstream fresh (early cutoff)."""

    p: Pipeline
    content: dict[str, str | None] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)
    writes: dict[str, str | None] = field(default_factory=dict)  # out -> what a build writes
    restorable: set[str] = field(default_factory=set)
    fail: dict[str, str] = field(default_factory=dict)  # job (str(JobKey)) -> failure message
    pick: Callable[[FakeExecutor], JobKey] = oldest
    events: list[tuple[str, str]] = field(default_factory=list)
    executors: list[FakeExecutor] = field(default_factory=list)
    judged_forced: dict[str, bool] = field(default_factory=dict)
    unclearable: set[str] = field(default_factory=set)  # prepare_outs refuses these

    def trace(self, t: Target) -> Trace:
        return Trace(f"cmd:{t.cmd_template}", {}, {d.path: self.content.get(d.path) for d in t.deps}, {})

    def build_all(self) -> None:
        """Record every target as built from the current content (a clean workspace)."""
        for name in build_graph(self.p).order:
            t = self.p.targets[name]
            self.produce(t)
            tr = self.trace(t)
            self.records[name] = Record(tr.fingerprint, {o: self.content[o] for o in t.outs}, tr.to_dict())

    def produce(self, t: Target) -> None:
        for o in t.outs:
            self.content[o] = self.writes.get(o, f"{o}-v1")

    # -- RunHooks ------------------------------------------------------------------
    def judge(self, t: Target, forced: bool) -> Judgement:
        self.judged_forced[t.name] = forced
        tr = self.trace(t)
        outs = {o: self.content.get(o) for o in t.outs}
        return Judgement(tr, outs, decide(tr, outs, self.records.get(t.name), always=t.always, forced=forced))

    def restore(self, t: Target, trace: Trace):
        if t.name in self.restorable:
            self.produce(t)
            return {o: self.content[o] for o in t.outs}, "restored from the cache: built by run x"
        return None, ""

    def prepare_outs(self, t: Target) -> None:
        self.events.append(("prepare", t.name))
        if t.name in self.unclearable:
            raise PipetoolError(f"cannot clear its out {t.outs[0]} before running (Permission denied)")
        for o in t.outs:
            self.content[o] = None

    def outs_now(self, t: Target) -> dict[str, str | None]:
        return {o: self.content.get(o) for o in t.outs}

    def record(self, name: str, trace: Trace, outs, result: TargetResult) -> None:
        self.events.append(("record", f"{name} {result.action}"))
        if result.action in ("built", "restored"):
            self.records[name] = Record(trace.fingerprint, dict(outs), trace.to_dict())

    def make_executor(self) -> FakeExecutor:
        ex = FakeExecutor(self)
        self.executors.append(ex)
        return ex

    def job_kwargs(self, t: Target):
        return {}, ()


class Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def started(self, name, reasons):
        self.lines.append(f"start {name}")

    def finished(self, name, result):
        self.lines.append(f"built {name}")

    def restored(self, name, reason):
        self.lines.append(f"restored {name}")

    def failed(self, name, message, log_tail, log_path):
        self.lines.append(f"failed {name}: {message}")

    def waiting(self, message):
        pass

    def dry_run(self, name, verdict):
        pass

    def warning(self, message):
        self.lines.append(f"warning {message}")

    def removed(self, name, reason):
        self.lines.append(f"removed {name}: {reason}")


def run(world: World, jobs: int = 2, keep_going: bool = False, forced=(), resources=None, log_dir="/nonexistent-logs"):
    g = build_graph(world.p)
    results: dict[str, TargetResult] = {}
    rep = Reporter()
    opts = RunOptions(jobs=jobs, keep_going=keep_going, forced=frozenset(forced), run_id="r1",
                      log_dir=log_dir, resources=resources or {})
    run_targets(world.p, g, list(g.order), world, rep, opts, results)
    return results, rep


def actions(results: dict[str, TargetResult]) -> dict[str, str]:
    return {n: r.action for n, r in results.items()}


CHAIN = (target("a", deps=["in/a"]), target("b", deps=["out/a"]), target("c", deps=["out/b"]))


# -- deciding what runs -------------------------------------------------------------

def test_a_fresh_workspace_makes_no_executor_and_skips_everything():
    w = World(pipeline(*CHAIN), content={"in/a": "x"})
    w.build_all()
    results, rep = run(w)
    assert actions(results) == {"a": "skipped", "b": "skipped", "c": "skipped"}
    assert w.executors == [] and rep.lines == []


def test_a_changed_dep_rebuilds_its_target_and_what_its_new_outputs_feed():
    w = World(pipeline(*CHAIN), content={"in/a": "x"})
    w.build_all()
    w.content["in/a"] = "y"
    w.writes["out/a"] = "out/a-v2"  # a writes new bytes; b then writes what it wrote before
    results, rep = run(w)
    assert actions(results) == {"a": "built", "b": "built", "c": "skipped"}
    assert w.executors[0].submitted == [JobKey("a"), JobKey("b")]
    assert results["a"].reason == "dep changed: in/a"
    assert results["b"].reason == "dep changed: out/a"
    assert rep.lines == ["start a", "built a", "start b", "built b"]


def test_early_cutoff_an_upstream_rebuilt_to_the_same_bytes_leaves_its_downstream_alone():
    w = World(pipeline(*CHAIN), content={"in/a": "x"})
    w.build_all()
    w.content["in/a"] = "y"  # a reruns but writes what it wrote before
    results, _ = run(w)
    assert actions(results) == {"a": "built", "b": "skipped", "c": "skipped"}
    assert w.executors[0].submitted == [JobKey("a")]


def test_forced_targets_are_judged_forced_and_never_restored():
    w = World(pipeline(*CHAIN), content={"in/a": "x"}, restorable={"a", "b", "c"})
    w.build_all()
    results, _ = run(w, forced={"b"})
    assert w.judged_forced == {"a": False, "b": True, "c": False}
    assert actions(results) == {"a": "skipped", "b": "built", "c": "skipped"}
    assert results["b"].reason == "forced"


def test_a_restorable_target_runs_no_job_and_its_downstream_goes_on():
    w = World(pipeline(*CHAIN), content={"in/a": "x"}, restorable={"a"})
    results, rep = run(w)
    assert actions(results) == {"a": "restored", "b": "built", "c": "built"}
    assert w.executors[0].submitted == [JobKey("b"), JobKey("c")]
    assert rep.lines[0] == "restored a"
    assert ("prepare", "a") not in w.events  # outs are cleared only for a job


def test_an_out_the_job_did_not_write_fails_the_target():
    w = World(pipeline(target("a", outs=["out/a", "out/a2"])), writes={"out/a2": None})
    results, _rep = run(w)
    assert actions(results) == {"a": "failed"}
    assert results["a"].reason == "did not write its out out/a2"
    assert ("record", "a failed") in w.events and "a" not in w.records


# -- parallelism ----------------------------------------------------------------------

def test_no_more_than_jobs_run_at_once_and_all_run():
    w = World(pipeline(*(target(n) for n in "abcde")))
    results, _ = run(w, jobs=2)
    assert w.executors[0].most_at_once == 2
    assert sorted(w.executors[0].submitted, key=str) == [JobKey(n) for n in "abcde"]
    assert set(actions(results).values()) == {"built"}


def test_a_target_starts_when_its_own_upstream_is_done_not_its_level():
    # a -> b, and c alone; c is slow: b starts while c still runs.
    w = World(pipeline(target("a"), target("b", deps=["out/a"]), target("c")),
              pick=lambda ex: JobKey("c") if list(ex.running) == [JobKey("c")] else
              next(k for k in ex.running if k.target != "c"))
    run(w, jobs=2)
    ex = w.executors[0]
    assert ex.submitted == [JobKey("a"), JobKey("c"), JobKey("b")]
    assert ex.most_at_once == 2


# -- failures -------------------------------------------------------------------------

FAN = (target("a"), target("b", deps=["out/a"]), target("x"), target("y", deps=["out/x"]))


def test_a_failure_stops_launching_and_blocks_its_downstream():
    w = World(pipeline(*FAN), fail={"a": "exit status 1"})
    results, rep = run(w, jobs=1)
    assert actions(results) == {"a": "failed", "b": "not-run", "x": "not-run", "y": "not-run"}
    assert results["b"].reason == "upstream failed: a"
    assert results["x"].reason == "stopped after a failure"
    assert rep.lines == ["start a", "failed a: exit status 1"]


def test_keep_going_runs_everything_that_does_not_depend_on_the_failure():
    w = World(pipeline(*FAN), fail={"a": "exit status 1"})
    results, _ = run(w, jobs=1, keep_going=True)
    assert actions(results) == {"a": "failed", "b": "not-run", "x": "built", "y": "built"}
    assert w.executors[0].submitted == [JobKey("a"), JobKey("x"), JobKey("y")]


def test_a_job_running_when_another_fails_finishes_and_is_recorded():
    w = World(pipeline(*FAN), fail={"a": "exit status 1"})
    results, _ = run(w, jobs=2)
    assert actions(results) == {"a": "failed", "b": "not-run", "x": "built", "y": "not-run"}
    assert results["y"].reason == "stopped after a failure"


def test_a_target_whose_old_outs_cannot_be_cleared_fails_without_running():
    w = World(pipeline(*FAN), unclearable={"a"})
    results, rep = run(w, jobs=1, keep_going=True)
    assert actions(results) == {"a": "failed", "b": "not-run", "x": "built", "y": "built"}
    assert results["a"].reason == "cannot clear its out out/a before running (Permission denied)"
    assert JobKey("a") not in w.executors[0].submitted
    assert rep.lines[:2] == ["start a", "failed a: cannot clear its out out/a before running (Permission denied)"]


# -- checks -----------------------------------------------------------------------------

def test_checks_run_after_the_target_and_it_is_built_only_when_all_pass():
    w = World(pipeline(target("a", checks=["test -s out/a", "true"]), target("b", deps=["out/a"])))
    results, _ = run(w, jobs=4)
    ex = w.executors[0]
    assert ex.submitted == [JobKey("a"), JobKey("a", 0), JobKey("a", 1), JobKey("b")]
    assert actions(results) == {"a": "built", "b": "built"}
    assert [c["ok"] for c in results["a"].checks] == [True, True]
    assert results["a"].duration_s == 3.0  # the target's own time plus its checks'


def test_a_failing_check_fails_its_target_unrecorded_and_blocks_downstream():
    w = World(pipeline(target("a", checks=["true", "test -s out/a"]), target("b", deps=["out/a"])),
              fail={"a-check-1": "exit status 1"})
    results, rep = run(w, jobs=4)
    assert actions(results) == {"a": "failed", "b": "not-run"}
    assert results["a"].reason == "check failed: test -s out/a: exit status 1"
    assert [c["ok"] for c in results["a"].checks] == [True, False]
    assert "a" not in w.records
    assert rep.lines[-1] == "failed a: check failed: test -s out/a: exit status 1"


# -- resources --------------------------------------------------------------------------

def test_a_target_waiting_for_a_resource_never_blocks_those_that_need_none():
    gpu = (("gpu", 1.0),)
    w = World(pipeline(target("g1", resources=gpu), target("g2", resources=gpu), target("cpu")))
    run(w, jobs=3, resources={"gpu": 1.0})
    ex = w.executors[0]
    # g2 waits for g1's GPU; cpu starts beside g1 at once.
    assert ex.submitted == [JobKey("g1"), JobKey("cpu"), JobKey("g2")]
    assert ex.most_at_once == 2


def test_a_resource_is_held_until_the_targets_checks_are_done():
    gpu = (("gpu", 1.0),)
    order: list[str] = []

    def pick(ex: FakeExecutor) -> JobKey:
        key = next(iter(ex.running))
        order.append(str(key))
        return key

    w = World(pipeline(target("g1", resources=gpu, checks=["true"]), target("g2", resources=gpu)), pick=pick)
    run(w, jobs=4, resources={"gpu": 1.0})
    assert order == ["g1", "g1-check-0", "g2"]
    assert w.executors[0].most_at_once == 1


# -- interrupts -------------------------------------------------------------------------

def test_an_interrupt_cancels_the_running_jobs_and_marks_what_did_not_finish():
    calls = []

    def pick(ex: FakeExecutor) -> JobKey:
        calls.append(len(calls))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return JobKey("a")

    w = World(pipeline(target("a"), target("b"), target("c", deps=["out/a"]), target("d")), pick=pick)
    with pytest.raises(KeyboardInterrupt):
        run(w, jobs=2)
    ex = w.executors[0]
    assert ex.cancelled and ex.closed
    assert ex.submitted == [JobKey("a"), JobKey("b"), JobKey("d")]


def test_an_interrupt_leaves_results_saying_what_happened_to_each_target():
    def pick(ex: FakeExecutor) -> JobKey:
        if JobKey("a") in ex.running:
            return JobKey("a")
        raise KeyboardInterrupt

    w = World(pipeline(target("a"), target("b"), target("c", deps=["out/a"]), target("d")), pick=pick)
    g = build_graph(w.p)
    results: dict[str, TargetResult] = {}
    opts = RunOptions(jobs=2, run_id="r1", log_dir="/nonexistent-logs")
    with pytest.raises(KeyboardInterrupt):
        run_targets(w.p, g, list(g.order), w, Reporter(), opts, results)
    # a finished; b and d were running; c was judged but never launched
    assert actions(results) == {"a": "built", "b": "failed", "c": "not-run", "d": "failed"}
    assert results["b"].reason == results["d"].reason == results["c"].reason == "interrupted"


def test_a_failing_executor_names_its_failure_on_the_targets_it_stopped():
    def pick(ex: FakeExecutor) -> JobKey:
        raise PipetoolError("the run was stopped: internal error in pipetool's I/O thread (RuntimeError: x)")

    w = World(pipeline(target("a"), target("b", deps=["out/a"])), pick=pick)
    g = build_graph(w.p)
    results: dict[str, TargetResult] = {}
    with pytest.raises(PipetoolError):
        run_targets(w.p, g, list(g.order), w, Reporter(), RunOptions(jobs=1, log_dir="/nonexistent-logs"), results)
    why = "the run was stopped: internal error in pipetool's I/O thread (RuntimeError: x)"
    assert {n: (r.action, r.reason) for n, r in results.items()} == {"a": ("failed", why), "b": ("not-run", why)}
    assert w.executors[0].cancelled


# -- partitions known at run time ---------------------------------------------------------

def test_a_placeholder_becomes_its_partitions_when_ready_and_the_fan_in_waits_for_them():
    import dataclasses

    from pipetool.execute.scheduler import Growth

    placeholder = dataclasses.replace(target("clean", deps=["out/split/*.txt"], outs=["out/clean/"]),
                                      cmd=None, cmd_template=None, foreach="out/split/*.txt")
    p = pipeline(target("split", outs=["out/split/"]), placeholder, target("summary", deps=["out/clean/"]))
    w = World(p)

    def expand(name: str) -> Growth:
        parts = {f"clean[{k}]": dataclasses.replace(target(f"clean[{k}]", deps=[f"out/split/{k}.txt"],
                                                           outs=[f"out/clean/{k}"]), template="clean", key=k)
                 for k in ("a", "b")}
        targets = {n: t for n, t in w.p.targets.items() if n != name} | parts
        w.p = dataclasses.replace(w.p, targets=targets)
        return Growth(w.p, build_graph(w.p), tuple(parts), {"clean[z]": "item gone: z"})

    w.expand = expand  # type: ignore[method-assign]
    w.writes.update({"out/split/": "split-v1"})
    results, rep = run(w, jobs=1)
    assert w.executors[0].submitted == [JobKey("split"), JobKey("clean[a]"), JobKey("clean[b]"), JobKey("summary")]
    assert actions(results) == {"split": "built", "clean[a]": "built", "clean[b]": "built", "summary": "built",
                                "clean[z]": "removed"}
    assert "clean" not in results
    assert rep.lines[:3] == ["start split", "built split", "removed clean[z]: item gone: z"]
