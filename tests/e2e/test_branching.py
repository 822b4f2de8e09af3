"""Lineage, branching, checkout, diff and gc (issue 4, SPEC §4–6)."""
from __future__ import annotations

import dataclasses
import json
import re

import pytest

from .support import (
    FAST_THEN_SLOW,
    actions,
    cache_objects,
    experiment,
    ok,
    run_id,
    run_json,
    runs_json,
    show_json,
    status_json,
    wait_started,
)

# -- lineage ----------------------------------------------------------------------------------------

def test_lineage_run_run_S_and_branch_from_the_first_have_the_right_parents(project, pt):
    experiment(project)
    a = run_id(project, "run")
    b = run_id(project, "run", "-S", "train.lr=0.1")
    c = run_id(project, "branch", "--from", a, "-S", "train.lr=0.5")
    d = run_id(project, "run", "-S", "train.lr=0.5")  # parent: the branch, whose outputs it holds
    ok(pt("checkout", b))
    e = run_id(project, "run", "-S", "train.lr=0.7")  # parent: the run last checked out
    parents = {m["id"]: m["parent"] for m in runs_json(project)}
    assert parents == {a: None, b: a, c: a, d: c, e: b}


def test_runs_prints_a_tree_with_changed_params_and_metrics(project, pt):
    experiment(project)
    a = run_id(project, "run")
    b = run_id(project, "run", "-S", "train.lr=0.1")
    c = run_id(project, "branch", "--from", a, "-S", "train.lr=0.5")
    out = ok(pt("runs")).stdout
    lines = out.splitlines()
    row = {rid: next(line for line in lines if rid in line) for rid in (a, b, c)}
    assert lines.index(row[a]) < lines.index(row[b]) and lines.index(row[a]) < lines.index(row[c])
    # a is the root; b and c hang below it, indented
    assert row[a].startswith(a), row[a]
    for child in (b, c):
        assert not row[child].startswith(child), f"{child} not drawn as a child:\n{out}"
    assert "train.lr: 0.01 -> 0.1" in row[b], out
    assert "train.lr: 0.01 -> 0.5" in row[c], out
    assert "->" not in row[a]
    for rid in (a, b, c):
        assert "succeeded" in row[rid]
    # headline metrics
    assert "acc=0.01" in row[a] and "acc=0.1" in row[b] and "acc=0.5" in row[c], out


# -- the three-step experiment ----------------------------------------------------------------

def test_three_step_experiment_runs_exactly_the_stale_targets(project, pt):
    experiment(project)
    first = run_id(project, "run")
    assert project.runs() == ["prep", "train", "eval"]
    model_first = project.read("out/model.txt")

    project.clear_runs()
    second = run_id(project, "run", "-S", "train.lr=0.1")
    assert project.runs() == ["train", "eval"]
    assert project.read("out/model.txt") == "seed=1\nlr=0.1\n"

    project.clear_runs()
    third = run_id(project, "branch", "--from", first, "-S", "train.lr=0.5")
    assert project.runs() == ["train", "eval"], "upstream of train reran, or train did not"
    assert project.read("out/model.txt") == "seed=1\nlr=0.5\n"
    m = show_json(project, third)
    assert m["parent"] == first
    assert m["params"]["train"]["lr"] == 0.5
    assert m["overrides"] == {"train.lr": 0.5}
    assert m["targets"]["prep"]["action"] == "skipped"  # its output was the same in both runs
    assert actions(m)["train"] == "built" and actions(m)["eval"] == "built"
    assert "train.lr" in m["targets"]["train"]["reason"]

    # a fourth step, branching from the first with no change: nothing executes, its
    # outputs come back
    project.clear_runs()
    fourth = run_id(project, "branch", "--from", first)
    assert project.runs() == []
    assert project.read("out/model.txt") == model_first
    m = show_json(project, fourth)
    assert m["parent"] == first
    assert m["params"]["train"]["lr"] == 0.01
    # prep's bytes were the same in both runs; train and eval were put back (SPEC §5)
    assert actions(m) == {"prep": "skipped", "train": "restored", "eval": "restored"}
    assert m["targets"]["train"]["reason"] == f"restored from the cache: put back from run {first}"
    assert second != third


def test_branch_takes_the_runs_params_not_the_files(project, pt):
    experiment(project)
    a = run_id(project, "run")
    project.write("pipeline.yaml", project.read("pipeline.yaml").replace("lr: 0.01", "lr: 0.2"), dedent=False)
    run_id(project, "run")
    project.clear_runs()
    c = run_id(project, "branch", "--from", a)
    assert project.runs() == []
    m = show_json(project, c)
    assert m["params"]["train"]["lr"] == 0.01
    assert project.read("out/model.txt") == "seed=1\nlr=0.01\n"


def test_branch_with_the_current_code_reruns_a_target_whose_command_changed(project, pt):
    experiment(project)
    a = run_id(project, "run")
    project.write("pipeline.yaml", project.read("pipeline.yaml").replace(
        "cat out/model.txt) > out/eval.txt", "cat out/model.txt out/model.txt) > out/eval.txt"), dedent=False)
    project.clear_runs()
    c = run_id(project, "branch", "--from", a)
    assert project.runs() == ["eval"]
    assert actions(show_json(project, c))["eval"] == "built"


def test_branch_of_named_targets_runs_only_what_they_need(project, pt):
    experiment(project)
    a = run_id(project, "run")
    project.clear_runs()
    c = run_id(project, "branch", "--from", a, "train", "-S", "train.lr=0.6")
    assert project.runs() == ["train"]
    assert actions(show_json(project, c)) == {"prep": "skipped", "train": "built"}  # eval not selected


def test_branch_dry_run_records_nothing_and_touches_nothing(project, pt):
    experiment(project)
    a = run_id(project, "run")
    run_id(project, "run", "-S", "train.lr=0.1")
    model = project.read("out/model.txt")
    project.clear_runs()
    res = ok(pt("branch", "--from", a, "-n", "-S", "train.lr=0.5"))
    assert "would run train" in res.stderr and "would run eval" in res.stderr, res.stderr
    assert "would run prep" not in res.stderr
    assert project.runs() == []
    assert len(runs_json(project)) == 2
    assert project.read("out/model.txt") == model


def test_branch_with_an_unknown_param_is_exit_2_and_records_nothing(project, pt):
    experiment(project)
    a = run_id(project, "run")
    project.clear_runs()
    res = pt("branch", "--from", a, "-S", "train.lrr=0.5")
    assert res.returncode == 2, res.stderr
    assert "train.lr" in res.stderr
    assert project.runs() == [] and len(runs_json(project)) == 1


# -- branching from a failed run ---------------------------------------------------------------

FLAKY = """
    params: {x: bad}
    targets:
      prep:
        cmd: echo prep >> runs.log && echo p > out/prep.txt
        outs: [out/prep.txt]
      check:
        cmd: echo check >> runs.log && test ${x} = ok && cat out/prep.txt > out/check.txt
        deps: [out/prep.txt]
        outs: [out/check.txt]
      after:
        cmd: echo after >> runs.log && cat out/check.txt > out/after.txt
        deps: [out/check.txt]
        outs: [out/after.txt]
      side:
        cmd: echo side >> runs.log && echo s > out/side.txt
        outs: [out/side.txt]
"""


def test_branch_from_a_failed_run_reruns_only_what_did_not_succeed(project, pt):
    project.pipeline(FLAKY)
    failed = run_json(project, "run", "-k", "-j", "1", code=1)["run_id"]
    m = show_json(project, failed)
    assert m["status"] == "failed"
    assert actions(m) == {"prep": "built", "check": "failed", "after": "not-run", "side": "built"}
    project.clear_runs()
    b = run_id(project, "branch", "--from", failed, "-S", "x=ok")
    assert sorted(project.runs()) == ["after", "check"]
    m = show_json(project, b)
    assert m["status"] == "succeeded" and m["parent"] == failed
    # the workspace still holds the failed run's outputs: nothing to put back
    assert actions(m) == {"prep": "skipped", "check": "built", "after": "built", "side": "skipped"}
    assert project.read("out/after.txt") == "p\n"


def test_branch_from_a_failed_run_after_the_workspace_moved_on_restores_what_succeeded(project, pt):
    project.pipeline(FLAKY.replace("echo p > out/prep.txt", "echo p${x} > out/prep.txt"))
    failed = run_json(project, "run", "-k", code=1)["run_id"]
    ok(pt("run", "-S", "x=ok"))  # workspace moves on: prep rebuilt with x=ok
    assert project.read("out/prep.txt") == "pok\n"
    project.clear_runs()
    # from the failed run, with its params (x=bad) but a check that now passes
    project.write("pipeline.yaml", project.read("pipeline.yaml").replace("test ${x} = ok", "test ${x} = bad"),
                  dedent=False)
    b = run_id(project, "branch", "--from", failed)
    assert sorted(project.runs()) == ["after", "check"], "a target that succeeded in the failed run reran"
    assert project.read("out/prep.txt") == "pbad\n"
    assert actions(show_json(project, b))["prep"] == "restored"  # put back: the workspace held pok


SLOW = FAST_THEN_SLOW


def test_branch_from_a_killed_run_reruns_only_what_did_not_finish(project, pt):
    import os
    import signal

    project.pipeline(SLOW)
    proc = project.popen("run", "-j", "2")
    project.kill_at_end.append(wait_started(project, proc))
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=5)
    (killed,) = runs_json(project)
    assert killed["status"] == "interrupted"
    project.clear_runs()
    b = run_json(project, "branch", "--from", killed["id"], env={"SLEEP": "0"})["run_id"]
    assert project.runs() == ["slow"]
    m = show_json(project, b)
    assert m["parent"] == killed["id"] and m["status"] == "succeeded"
    # the workspace still holds what the killed run built: nothing to put back
    assert actions(m) == {"fast": "skipped", "slow": "built"}


def test_branch_works_after_a_param_was_added_to_the_pipeline(project, pt):
    experiment(project)
    a = run_id(project, "run")
    text = project.read("pipeline.yaml").replace("train: {lr: 0.01, epochs: 3}", "train: {lr: 0.01, epochs: 3}\n  extra: {k: 5}")
    text = text.replace("echo eval >> runs.log &&", "echo eval >> runs.log && echo k=${extra.k} >> out/eval.txt &&")
    project.write("pipeline.yaml", text, dedent=False)
    project.clear_runs()
    b = run_id(project, "branch", "--from", a, "-S", "extra.k=6")
    assert project.runs() == ["eval"]
    m = show_json(project, b)
    assert m["params"]["extra"] == {"k": 6} and m["params"]["train"]["lr"] == 0.01


# -- checkout -----------------------------------------------------------------------------------

def test_checkout_puts_a_runs_outputs_back_without_running_anything(project, pt):
    experiment(project)
    a = run_id(project, "run")
    files = ("out/prep.txt", "out/model.txt", "out/eval.txt", "metrics/train.json", "metrics/eval.yaml")
    content_a = {f: project.read(f) for f in files}
    b = run_id(project, "run", "-S", "train.lr=0.1")
    content_b = {f: project.read(f) for f in files}
    assert content_a != content_b
    project.clear_runs()
    res = ok(pt("checkout", a))
    assert project.runs() == []
    assert {f: project.read(f) for f in files} == content_a
    assert a in res.stdout
    assert len(runs_json(project)) == 2, "checkout recorded a run"
    # a run right after it finds everything up to date
    rid = run_id(project, "run")
    assert project.runs() == []
    assert set(actions(show_json(project, rid)).values()) == {"skipped"}
    ok(pt("checkout", b))
    assert {f: project.read(f) for f in files} == content_b
    assert project.runs() == []


def test_status_after_checkout_compares_against_that_run(project, pt):
    experiment(project)
    a = run_id(project, "run")
    b = run_id(project, "run", "-S", "train.lr=0.1")
    ok(pt("checkout", a))
    ok(pt("status", "--check"))  # A was run with the file's params: all fresh
    ok(pt("checkout", b))
    st = status_json(project)["targets"]
    assert st["prep"]["state"] == "fresh"
    assert st["train"]["state"] == "stale"
    assert any("train.lr" in r and "0.1" in r and "0.01" in r for r in st["train"]["reasons"]), st
    ok(pt("status", "--check", "-S", "train.lr=0.1"))
    # and pipetool.lock follows the checked-out run
    lock = project.read("pipetool.lock")
    assert show_json(project, b)["targets"]["train"]["outs"]["out/model.txt"] in lock


# -- diff -----------------------------------------------------------------------------------------

def test_diff_two_runs_shows_params_that_differ_and_metric_deltas(project, pt):
    experiment(project)
    a = run_id(project, "run")
    b = run_id(project, "run", "-S", "train.lr=0.1", "-S", "train.epochs=5")
    d = json.loads(ok(pt("diff", a, b, "--json")).stdout)
    assert set(d) == {"params", "metrics"}
    assert d["params"] == {"train.lr": [0.01, 0.1], "train.epochs": [3, 5]}
    assert set(d["metrics"]) == {"metrics/train.json"}, d  # eval's metrics are equal
    rows = d["metrics"]["metrics/train.json"]
    assert set(rows) == {"acc", "epochs"}, rows
    left, right, delta = rows["acc"]
    assert (left, right) == (0.01, 0.1) and delta == pytest.approx(0.09)
    assert rows["epochs"] == [3, 5, 2]
    out = ok(pt("diff", a, b)).stdout  # for people: the same, with signed deltas
    assert "train.lr" in out and "0.01" in out and "0.1" in out
    assert "acc" in out and "+0.09" in out and "+2" in out, out
    # the other way round: deltas change sign
    assert json.loads(ok(pt("diff", a, a, "--json")).stdout) == {"params": {}, "metrics": {}}
    back = json.loads(ok(pt("diff", b, a, "--json")).stdout)
    assert back["params"]["train.lr"] == [0.1, 0.01]
    assert back["metrics"]["metrics/train.json"]["acc"][2] == pytest.approx(-0.09)


def test_diff_a_run_against_the_workspace(project, pt):
    experiment(project)
    a = run_id(project, "run")
    # the workspace: the pipeline file's params and the metrics files now in place
    project.write("pipeline.yaml", project.read("pipeline.yaml").replace("lr: 0.01", "lr: 0.05"), dedent=False)
    run_id(project, "run")
    d = json.loads(ok(pt("diff", a, "--json")).stdout)
    assert d["params"] == {"train.lr": [0.01, 0.05]}
    (left, right, delta), = [d["metrics"]["metrics/train.json"]["acc"]]
    assert (left, right) == (0.01, 0.05) and delta == pytest.approx(0.04)
    # a metric only one side has: null on the other, no delta
    project.write("metrics/train.json", '{"acc": 0.05, "loss": 2, "epochs": 3, "f1": 0.7}')
    d = json.loads(ok(pt("diff", a, "--json")).stdout)
    assert d["metrics"]["metrics/train.json"]["f1"] == [None, 0.7, None]


def test_diff_of_non_numeric_metrics_has_null_delta(project, pt):
    experiment(project)
    a = run_id(project, "run")
    project.write("pipeline.yaml", project.read("pipeline.yaml").replace("name: ev", "name: other"), dedent=False)
    b = run_id(project, "run")
    d = json.loads(ok(pt("diff", a, b, "--json")).stdout)
    assert d["params"] == {}
    assert d["metrics"]["metrics/eval.yaml"] == {"name": ["ev", "other", None]}


# -- gc ---------------------------------------------------------------------------------------------

def _digests(manifest: dict) -> set[str]:
    return {d for t in manifest["targets"].values() if t["action"] in ("built", "restored", "skipped")
            for d in t["outs"].values() if d}


def test_gc_dry_run_reports_bytes_without_removing(project, pt):
    experiment(project)
    a = run_id(project, "run")
    b = run_id(project, "run", "-S", "train.lr=0.1")
    before = {d: p.read_bytes() for d, p in cache_objects(project).items()}
    only_a = _digests(show_json(project, a)) - _digests(show_json(project, b))
    assert only_a and only_a <= set(before)
    size = sum(len(before[d]) for d in only_a)
    res = ok(pt("gc", "--keep-last", "1", "-n"))
    assert re.search(rf"would remove {len(only_a)} object\(s\), {size} B\b", res.stdout), (res.stdout, size)
    after = {d: p.read_bytes() for d, p in cache_objects(project).items()}
    assert after == before
    project.clear_runs()
    ok(pt("checkout", a))
    assert project.runs() == []


def test_gc_keep_last_1_removes_only_objects_older_runs_referred_to(project, pt):
    experiment(project)
    a = run_id(project, "run")
    b = run_id(project, "run", "-S", "train.lr=0.1")
    only_a = _digests(show_json(project, a)) - _digests(show_json(project, b))
    res = ok(pt("gc", "--keep-last", "1"))
    assert f"removed {len(only_a)} object(s)" in res.stdout, res.stdout
    left = set(cache_objects(project))
    assert not (only_a & left)
    assert _digests(show_json(project, b)) <= left
    # the runs are still listed; the newest still restores from the cache
    assert len(runs_json(project)) == 2
    (project.root / "out/model.txt").unlink()
    project.clear_runs()
    run_id(project, "run", "-S", "train.lr=0.1")
    assert project.runs() == []


def test_gc_keep_names_a_run_whose_objects_stay(project, pt):
    experiment(project)
    a = run_id(project, "run")
    run_id(project, "run", "-S", "train.lr=0.1")
    run_id(project, "run", "-S", "train.lr=0.2")
    ok(pt("gc", "--keep-last", "1", "--keep", a))
    assert _digests(show_json(project, a)) <= set(cache_objects(project))
    project.clear_runs()
    ok(pt("checkout", a))
    assert project.runs() == [] and project.read("out/model.txt") == "seed=1\nlr=0.01\n"


def test_gc_keeps_what_the_workspace_holds(project, pt):
    experiment(project)
    a = run_id(project, "run")
    run_id(project, "run", "-S", "train.lr=0.1")
    ok(pt("checkout", a))
    ok(pt("gc", "--keep-last", "0"))
    assert _digests(show_json(project, a)) <= set(cache_objects(project))


def test_branch_from_a_gcd_run_says_what_must_rebuild_and_rebuilds_it(project, pt):
    experiment(project)
    a = run_id(project, "run")
    model_a = project.read("out/model.txt")
    run_id(project, "run", "-S", "train.lr=0.1")
    ok(pt("gc", "--keep-last", "1"))
    project.clear_runs()
    res = ok(pt("branch", "--from", a, "--json"))
    assert "train" in res.stderr and "eval" in res.stderr, res.stderr
    assert "prep" not in re.findall(r"pipetool: (\w+):", res.stderr)
    assert project.runs() == ["train", "eval"]
    assert project.read("out/model.txt") == model_a
    m = show_json(project, json.loads(res.stdout)["run_id"])
    assert m["status"] == "succeeded" and m["parent"] == a
    assert actions(m)["train"] == "built"


def test_checkout_of_a_gcd_run_says_what_must_rebuild_and_run_rebuilds_it(project, pt):
    experiment(project)
    a = run_id(project, "run")
    model_a = project.read("out/model.txt")
    run_id(project, "run", "-S", "train.lr=0.1")
    ok(pt("gc", "--keep-last", "1"))
    project.clear_runs()
    res = ok(pt("checkout", a))
    assert project.runs() == []
    assert "train" in res.stderr and "eval" in res.stderr, res.stderr
    assert "2 not in the cache" in res.stdout, res.stdout
    st = status_json(project)["targets"]
    assert st["train"]["state"] != "fresh"
    run_id(project, "run")
    assert project.runs() == ["train", "eval"]
    assert project.read("out/model.txt") == model_a
    ok(pt("status", "--check"))


def test_checkout_with_a_corrupt_cache_object_reports_it_and_run_rebuilds(project, pt):
    import os

    experiment(project)
    a = run_id(project, "run")
    model_a = project.read("out/model.txt")
    digest = show_json(project, a)["targets"]["train"]["outs"]["out/model.txt"]
    run_id(project, "run", "-S", "train.lr=0.1")
    obj = cache_objects(project)[digest]
    os.chmod(obj, 0o644)
    obj.write_text("garbage\n")
    project.clear_runs()
    res = ok(pt("checkout", a))
    assert "train" in res.stderr and "corrupt" in res.stderr, res.stderr
    assert project.runs() == []
    assert "garbage" not in project.read("out/model.txt")
    assert digest not in cache_objects(project), "the corrupt object was kept"
    run_id(project, "run")
    assert project.runs() == ["train"]
    assert project.read("out/model.txt") == model_a
    ok(pt("status", "--check"))


def test_checkout_leaves_a_target_that_cannot_be_put_back_untouched(project, pt):
    # train has two outs (out/model.txt and metrics/train.json); when one of them cannot
    # be restored, the workspace should not end up with A's metrics beside B's model.
    import os

    experiment(project)
    a = run_id(project, "run")
    digest = show_json(project, a)["targets"]["train"]["outs"]["out/model.txt"]
    run_id(project, "run", "-S", "train.lr=0.1")
    model_b, metrics_b = project.read("out/model.txt"), project.read("metrics/train.json")
    obj = cache_objects(project)[digest]
    os.chmod(obj, 0o644)
    obj.write_text("garbage\n")
    res = ok(pt("checkout", a))
    assert "train" in res.stderr
    assert project.read("out/model.txt") == model_b
    assert project.read("metrics/train.json") == metrics_b, "half of train's outputs were put back"


# -- the project lock -----------------------------------------------------------------------------

HOLD = """
    targets:
      other:
        cmd: echo other >> runs.log && echo o > out/o.txt
        outs: [out/o.txt]
      hold:
        cmd: echo hold >> runs.log && echo $$ > pid && while [ ! -f release ]; do sleep 0.05; done && echo h > out/h.txt
        outs: [out/h.txt]
"""


def _hold(project):
    proc = project.popen("run", "hold")
    path = project.root / "pid"
    project.wait_for(lambda: (path.exists() and path.read_text().strip() != "") or proc.poll() is not None,
                     15, "the holding run to start")
    assert proc.poll() is None, proc.communicate(timeout=5)
    return proc


def test_branch_while_another_run_holds_the_project_with_no_wait_exits_3(project, pt):
    project.pipeline(HOLD)
    a = run_id(project, "run", "other")
    holder = _hold(project)
    try:
        res = pt("branch", "--from", a, "--no-wait", timeout=10)
        assert res.returncode == 3, res.stderr
        assert "Traceback" not in res.stderr and res.stderr.strip()
        # checkout and gc too; read-only commands do not wait
        for cmd in (["checkout", a, "--no-wait"], ["gc", "--no-wait"]):
            res = pt(*cmd, timeout=10)
            assert res.returncode == 3, (cmd, res.stderr)
            assert "Traceback" not in res.stderr
        ok(pt("diff", a, a, timeout=10))
    finally:
        project.write("release", "x")
    holder.communicate(timeout=20)
    assert holder.returncode == 0
    assert project.runs() == ["other", "hold"]
    assert [m["id"] == a for m in runs_json(project)] == [True, False], "the busy branch recorded a run"


# -- the Python API ---------------------------------------------------------------------------

def _plain(value):
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    json.dumps(value)
    return value


def test_python_api_branch_checkout_diff_and_gc_return_plain_data(project, pt):
    import pipetool

    experiment(project)
    cwd = str(project.root)
    a = run_id(project, "run")
    project.clear_runs()
    r = pipetool.branch(a, set={"train.lr": 0.1}, cwd=cwd, jobs=1)
    assert r.status == "succeeded" and r.parent == a and r.run_id
    assert project.runs() == ["train", "eval"]
    assert _plain(r.to_json())["run_id"] == r.run_id
    _plain(r)
    r2 = pipetool.branch(a, set=["train.lr=0.2"], cwd=cwd, jobs=1)
    assert r2.parent == a
    d = pipetool.diff(r.run_id, r2.run_id, cwd=cwd)
    assert d["params"] == {"train.lr": [0.1, 0.2]}
    assert d["metrics"]["metrics/train.json"]["acc"][:2] == [0.1, 0.2]
    _plain(d)
    pb = pipetool.checkout(a, cwd=cwd)
    assert pb.run_id == a and "train" in pb.restored
    _plain(pb)
    assert project.read("out/model.txt") == "seed=1\nlr=0.01\n"
    g = pipetool.gc(keep_last=1, dry_run=True, cwd=cwd)
    assert g.dry_run and g.removed > 0 and g.freed_bytes > 0
    _plain(g)
    runs = pipetool.runs(cwd=cwd)
    assert [x["parent"] for x in runs] == [None, a, a]
    _plain(runs)


def test_python_api_names_are_exported_from_the_package():
    import pipetool

    for name in ("runs", "show", "branch", "checkout", "diff", "gc"):
        assert callable(getattr(pipetool, name)), name
        assert name in pipetool.__all__
