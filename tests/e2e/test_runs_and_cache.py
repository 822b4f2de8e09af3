"""Run manifests, run ids, the content-addressed cache and the run cache (issue 4, SPEC §5–6)."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import stat
import subprocess
from datetime import datetime

import pytest

from .support import (
    FAST_THEN_SLOW,
    actions,
    cache_objects,
    experiment,
    group_members,
    ok,
    pid_alive,
    run_id,
    run_json,
    runs_json,
    show_json,
    status_json,
    wait_started,
)

MANIFEST_KEYS = {"id", "parent", "status", "started_at", "finished_at", "argv", "params", "overrides",
                 "targets", "metrics"}
TARGET_KEYS = {"action", "fingerprint", "reason", "duration_s", "outs"}


def _parse_time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


# -- manifests ---------------------------------------------------------------------------------

def test_runs_json_lists_manifests_oldest_first_with_spec_fields(project, pt):
    experiment(project)
    first = run_id(project, "run")
    second = run_id(project, "run", "-S", "train.lr=0.1")
    data = runs_json(project)
    assert [m["id"] for m in data] == [first, second]
    for m in data:
        assert set(m) >= MANIFEST_KEYS, sorted(MANIFEST_KEYS - set(m))
        assert m["status"] == "succeeded"
        assert _parse_time(m["started_at"]) <= _parse_time(m["finished_at"])
        assert set(m["targets"]) == {"prep", "train", "eval"}
        for name, t in m["targets"].items():
            assert set(t) >= TARGET_KEYS, (name, t)
            assert isinstance(t["fingerprint"], str) and t["fingerprint"], (name, t)
            assert isinstance(t["duration_s"], (int, float)) and t["duration_s"] >= 0
            assert isinstance(t["reason"], str)
    a, b = data
    assert a["parent"] is None and b["parent"] == first
    assert a["argv"][:2] == ["pipetool", "run"] and b["argv"][:4] == ["pipetool", "run", "-S", "train.lr=0.1"]
    assert a["overrides"] == {} and b["overrides"] == {"train.lr": 0.1}
    assert a["params"] == {"prep": {"seed": 1}, "train": {"lr": 0.01, "epochs": 3}}
    assert b["params"] == {"prep": {"seed": 1}, "train": {"lr": 0.1, "epochs": 3}}
    assert actions(a) == {"prep": "built", "train": "built", "eval": "built"}
    assert actions(b) == {"prep": "skipped", "train": "built", "eval": "built"}
    assert a["targets"]["prep"]["reason"] == "never built"
    assert "train.lr" in b["targets"]["train"]["reason"]
    # the out hashes are the workspace's content hashes, as recorded in pipetool.lock
    assert set(a["targets"]["train"]["outs"]) >= {"out/model.txt"}
    assert a["targets"]["prep"]["outs"] == b["targets"]["prep"]["outs"]
    assert a["targets"]["train"]["outs"]["out/model.txt"] != b["targets"]["train"]["outs"]["out/model.txt"]
    assert a["targets"]["prep"]["fingerprint"] == b["targets"]["prep"]["fingerprint"]
    assert a["targets"]["train"]["fingerprint"] != b["targets"]["train"]["fingerprint"]
    # `show RUN --json` prints the same manifest, and so does the manifest file
    assert show_json(project, second) == b
    assert json.loads((project.root / ".pipetool" / "runs" / second / "manifest.json").read_text()) == b


def test_metrics_parsed_from_json_yaml_and_toml_outputs(project, pt):
    experiment(project)
    rid = run_id(project, "run", "-S", "train.lr=0.25")
    m = show_json(project, rid)
    expected = {
        "metrics/train.json": {"acc": 0.25, "loss": 2, "epochs": 3},
        "metrics/eval.yaml": {"score": 7, "name": "ev"},
        "metrics/eval.toml": {"loss": 0.5},
    }
    assert m["metrics"] == expected
    # a run that skips everything still reports the metrics its targets hold
    again = show_json(project, run_id(project, "run", "-S", "train.lr=0.25"))
    assert set(actions(again).values()) == {"skipped"}
    assert again["metrics"] == expected


def _strict_json(text: str):
    def bad(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=bad)


def test_runs_and_show_json_stay_strict_json_when_a_metric_is_nan(project, pt):
    # A diverged training run writes NaN; `--json` output must still parse anywhere
    # (JSON has no NaN: JavaScript's JSON.parse, Go's encoding/json reject it).
    project.pipeline("""
        targets:
          train:
            cmd: |-
              echo train >> runs.log && echo '{"loss": NaN, "acc": 0.5}' > metrics.json
            metrics: [metrics.json]
    """)
    rid = run_id(project, "run")
    _strict_json(ok(pt("show", rid, "--json")).stdout)
    _strict_json(ok(pt("runs", "--json")).stdout)


def test_show_human_prints_targets_and_metrics(project, pt):
    experiment(project)
    rid = run_id(project, "run", "-S", "train.lr=0.1")
    out = ok(pt("show", rid)).stdout
    assert rid in out and "succeeded" in out
    assert "train.lr=0.1" in out
    for name in ("prep", "train", "eval"):
        assert re.search(rf"built\s+{name}\b", out), out
    assert "metrics/train.json" in out and "0.1" in out


def test_run_ids_sort_by_time(project, pt):
    experiment(project)
    ids = [run_id(project, "run", "-S", f"train.lr={lr}") for lr in (0.1, 0.2, 0.3)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    data = runs_json(project)
    assert [m["id"] for m in data] == ids
    starts = [_parse_time(m["started_at"]) for m in data]
    assert starts == sorted(starts)


def _shortest_unique_prefix(rid: str, others: list[str], minimum: int = 4) -> str:
    for n in range(minimum, len(rid) + 1):
        if not any(o != rid and o.startswith(rid[:n]) for o in others):
            return rid[:n]
    raise AssertionError(f"{rid} has no unique prefix")


def test_a_unique_prefix_of_4_or_more_characters_resolves(project, pt):
    experiment(project)
    ids = [run_id(project, "run"), run_id(project, "run", "-S", "train.lr=0.1")]
    for rid in ids:
        prefix = _shortest_unique_prefix(rid, ids)
        assert show_json(project, prefix)["id"] == rid
    # prefixes work wherever a RUN is asked for
    res = ok(pt("diff", _shortest_unique_prefix(ids[0], ids), _shortest_unique_prefix(ids[1], ids), "--json"))
    assert json.loads(res.stdout)["params"] == {"train.lr": [0.01, 0.1]}


def test_a_4_character_prefix_resolves_when_it_is_unique(project, pt):
    experiment(project)
    rid = run_id(project, "run")  # the only run: any 4 characters of it are unique
    assert show_json(project, rid[:4])["id"] == rid


def test_an_ambiguous_prefix_is_exit_2_listing_the_candidates(project, pt):
    experiment(project)
    ids = [run_id(project, "run"), run_id(project, "run", "-S", "train.lr=0.1")]
    common = os.path.commonprefix(ids)  # noqa: RUF071 - a string prefix is meant, not a path
    assert len(common) >= 4, ids  # ids made a moment apart share their time prefix
    for cmd in (["show", common], ["checkout", common], ["branch", "--from", common]):
        res = pt(*cmd)
        assert res.returncode == 2, (cmd, res.stderr)
        assert "Traceback" not in res.stderr
        assert "ambiguous" in res.stderr
        for rid in ids:
            assert rid in res.stderr, (cmd, res.stderr)
    assert project.runs() == ["prep", "train", "eval", "train", "eval"]


def test_an_unknown_run_id_is_exit_2(project, pt):
    experiment(project)
    run_id(project, "run")
    for cmd in (["show", "zzzzzzzz"], ["diff", "zzzzzzzz"], ["branch", "--from", "zzzzzzzz"],
                ["gc", "--keep", "zzzzzzzz"]):
        res = pt(*cmd)
        assert res.returncode == 2, (cmd, res.stderr)
        assert "Traceback" not in res.stderr
        assert "zzzzzzzz" in res.stderr, res.stderr
    assert len(runs_json(project)) == 1


def test_show_in_a_project_with_no_runs_is_exit_2(project, pt):
    experiment(project)
    res = pt("show", "abcdef")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert json.loads(ok(pt("runs", "--json")).stdout) == []
    assert "no runs" in ok(pt("runs")).stdout


def test_a_3_character_prefix_is_exit_2(project, pt):
    experiment(project)
    rid = run_id(project, "run")
    res = pt("show", rid[:3])
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert "4" in res.stderr, res.stderr  # says how many characters it needs


def test_dry_run_records_no_run(project, pt):
    experiment(project)
    res = ok(pt("run", "-n"))
    assert "would run" in res.stderr
    assert runs_json(project) == []
    assert project.runs() == []


def test_a_failed_run_is_recorded_failed_with_not_run_downstream(project, pt):
    experiment(project)
    project.write("pipeline.yaml", project.read("pipeline.yaml").replace(
        "echo train >> runs.log &&", "echo train >> runs.log && false &&"), dedent=False)
    res = pt("run")
    assert res.returncode == 1, res.stderr
    m = runs_json(project)[-1]
    assert m["status"] == "failed"
    assert actions(m) == {"prep": "built", "train": "failed", "eval": "not-run"}
    assert m["finished_at"]


# -- the run cache -------------------------------------------------------------------------------

def test_going_back_to_an_earlier_param_restores_instead_of_rerunning(project, pt):
    experiment(project)
    a = run_id(project, "run", "-S", "train.lr=0.3")
    model_a = project.read("out/model.txt")
    eval_a = project.read("out/eval.txt")
    run_id(project, "run", "-S", "train.lr=0.4")
    assert project.read("out/model.txt") != model_a
    before = project.runs()
    c = run_id(project, "run", "-S", "train.lr=0.3")
    assert project.runs() == before, "something executed instead of being restored"
    m = show_json(project, c)
    assert actions(m) == {"prep": "skipped", "train": "restored", "eval": "restored"}
    assert a in m["targets"]["train"]["reason"], m["targets"]["train"]
    assert a in m["targets"]["eval"]["reason"], m["targets"]["eval"]
    assert project.read("out/model.txt") == model_a
    assert project.read("out/eval.txt") == eval_a
    assert m["metrics"] == show_json(project, a)["metrics"]
    assert m["targets"]["train"]["outs"] == show_json(project, a)["targets"]["train"]["outs"]
    assert status_json(project, "-S", "train.lr=0.3")["targets"]["train"]["state"] == "fresh"


def test_a_deleted_out_whose_content_is_cached_is_restored_not_rebuilt(project, pt):
    experiment(project)
    run_id(project, "run")
    model = project.read("out/model.txt")
    (project.root / "out/model.txt").unlink()
    before = project.runs()
    rid = run_id(project, "run")
    assert project.runs() == before
    m = show_json(project, rid)
    assert actions(m) == {"prep": "skipped", "train": "restored", "eval": "skipped"}
    assert project.read("out/model.txt") == model
    ok(pt("status", "--check"))


def test_a_modified_out_whose_content_is_cached_is_restored_not_rebuilt(project, pt):
    experiment(project)
    run_id(project, "run")
    model = project.read("out/model.txt")
    project.write("out/model.txt", "tampered\n")
    before = project.runs()
    rid = run_id(project, "run")
    assert project.runs() == before
    assert actions(show_json(project, rid))["train"] == "restored"
    assert project.read("out/model.txt") == model
    ok(pt("status", "--check"))


def test_a_restored_file_is_writable_and_editing_it_leaves_the_cache_intact(project, pt):
    experiment(project)
    run_id(project, "run")
    model = project.read("out/model.txt")
    (project.root / "out/model.txt").unlink()
    run_id(project, "run")  # restored from the cache
    path = project.root / "out/model.txt"
    assert os.stat(path).st_nlink == 1, "the workspace file is hard-linked"
    with open(path, "a") as f:  # edit in place (same inode)
        f.write("edited in place\n")
    for obj in cache_objects(project).values():
        assert "edited in place" not in obj.read_text(errors="replace"), obj
    # the cache still holds the original: a modified out is restored from it
    run_id(project, "run")
    assert project.read("out/model.txt") == model


def test_editing_a_freshly_built_out_in_place_leaves_the_cache_intact(project, pt):
    experiment(project)
    a = run_id(project, "run")
    model = project.read("out/model.txt")
    with open(project.root / "out/model.txt", "a") as f:
        f.write("edited in place\n")
    run_id(project, "run", "-S", "train.lr=0.9")
    project.clear_runs()
    ok(pt("checkout", a))
    assert project.runs() == []
    assert project.read("out/model.txt") == model


def test_cache_objects_are_read_only(project, pt):
    experiment(project)
    run_id(project, "run")
    objs = cache_objects(project)
    assert objs
    for obj in objs.values():
        assert not os.stat(obj).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), obj


CACHE_FALSE = """
    params: {n: 1}
    targets:
      raw:
        cmd: echo raw >> runs.log && echo n=${n} > out/raw.txt
        outs: [out/raw.txt]
        cache: false
      cooked:
        cmd: echo cooked >> runs.log && cat out/raw.txt > out/cooked.txt && echo cooked >> out/cooked.txt
        deps: [out/raw.txt]
        outs: [out/cooked.txt]
"""


def test_cache_false_target_reruns_when_its_fingerprint_comes_back(project, pt):
    project.pipeline(CACHE_FALSE)
    run_id(project, "run")
    run_id(project, "run", "-S", "n=2")
    project.clear_runs()
    rid = run_id(project, "run")  # n=1 again
    assert "raw" in project.runs(), "a cache: false target was restored"
    m = show_json(project, rid)
    assert m["targets"]["raw"]["action"] == "built"
    # its downstream is cached as usual: same input as the first run, so restored
    assert m["targets"]["cooked"]["action"] == "restored"
    assert "cooked" not in project.runs()
    assert project.read("out/raw.txt") == "n=1\n"


def test_cache_false_out_deleted_is_rebuilt_not_restored(project, pt):
    project.pipeline(CACHE_FALSE)
    run_id(project, "run")
    raw_digest = runs_json(project)[0]["targets"]["raw"]["outs"]["out/raw.txt"]
    assert raw_digest not in cache_objects(project), "a cache: false out was stored"
    (project.root / "out/raw.txt").unlink()
    project.clear_runs()
    rid = run_id(project, "run")
    assert project.runs() == ["raw"]
    assert actions(show_json(project, rid)) == {"raw": "built", "cooked": "skipped"}


FOLDER = """
    params: {k: 1}
    targets:
      gen:
        cmd: echo gen >> runs.log && mkdir -p data/dir/sub && echo k=${k} > data/dir/a.txt && echo two > data/dir/sub/b.txt
        outs: [data/dir/]
      use:
        cmd: echo use >> runs.log && cat data/dir/a.txt data/dir/sub/b.txt > out/use.txt
        deps: [data/dir/]
        outs: [out/use.txt]
"""


def _tree(root) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_folder_outs_round_trip_through_the_cache(project, pt):
    project.pipeline(FOLDER)
    a = run_id(project, "run")
    tree_a = _tree(project.root / "data/dir")
    assert tree_a == {"a.txt": "k=1\n", "sub/b.txt": "two\n"}
    run_id(project, "run", "-S", "k=2")
    assert project.read("data/dir/a.txt") == "k=2\n"
    before = project.runs()
    c = run_id(project, "run")  # k=1 again
    assert project.runs() == before
    m = show_json(project, c)
    assert actions(m) == {"gen": "restored", "use": "restored"}
    assert a in m["targets"]["gen"]["reason"]
    assert _tree(project.root / "data/dir") == tree_a
    assert project.read("out/use.txt") == "k=1\ntwo\n"
    ok(pt("status", "--check"))


def test_a_deleted_or_modified_folder_out_is_restored_exactly(project, pt):
    project.pipeline(FOLDER)
    run_id(project, "run")
    tree = _tree(project.root / "data/dir")
    import shutil

    shutil.rmtree(project.root / "data/dir")
    before = project.runs()
    run_id(project, "run")
    assert project.runs() == before
    assert _tree(project.root / "data/dir") == tree
    # an extra file and a changed one: the folder comes back exactly as built
    project.write("data/dir/extra.txt", "junk\n")
    project.write("data/dir/sub/b.txt", "changed\n")
    rid = run_id(project, "run")
    assert project.runs() == before
    assert actions(show_json(project, rid))["gen"] == "restored"
    assert _tree(project.root / "data/dir") == tree
    ok(pt("status", "--check"))


def test_a_restored_executable_out_keeps_its_mode(project, pt):
    # An output that is a script must still run after it comes back from the cache.
    project.pipeline("""
        targets:
          tool:
            cmd: echo tool >> runs.log && printf '#!/bin/sh\\necho hi\\n' > bin/tool && chmod 755 bin/tool
            outs: [bin/tool]
    """)
    run_id(project, "run")
    assert os.access(project.root / "bin/tool", os.X_OK)
    (project.root / "bin/tool").unlink()
    run_id(project, "run")
    assert project.runs() == ["tool"]
    assert os.access(project.root / "bin/tool", os.X_OK), oct(os.stat(project.root / "bin/tool").st_mode)


# -- a corrupt cache object ------------------------------------------------------------------------

def test_a_corrupt_cache_object_is_reported_and_the_target_rebuilt(project, pt):
    experiment(project)
    a = run_id(project, "run", "-S", "train.lr=0.3")
    model_a = project.read("out/model.txt")
    digest = show_json(project, a)["targets"]["train"]["outs"]["out/model.txt"]
    run_id(project, "run", "-S", "train.lr=0.4")
    obj = cache_objects(project)[digest]
    os.chmod(obj, 0o644)
    obj.write_text("seed=1\nlr=666\n")  # same kind of content, wrong bytes
    project.clear_runs()
    res = ok(pt("run", "-S", "train.lr=0.3", "--json"))
    assert project.runs() == ["train"], "the corrupt object was used instead of rebuilding"
    assert "corrupt" in res.stderr, res.stderr
    assert project.read("out/model.txt") == model_a
    m = show_json(project, json.loads(res.stdout)["run_id"])
    assert m["targets"]["train"]["action"] == "built"
    assert "corrupt" in m["targets"]["train"]["reason"], m["targets"]["train"]
    # rebuilt byte-identical to the first run: eval's own (intact) cached outputs come back
    assert m["targets"]["eval"]["action"] == "restored"
    # the rebuilt content is back in the cache, verified
    assert cache_objects(project)[digest].read_text() == model_a


def test_a_truncated_cache_object_is_never_used_on_restore_of_a_deleted_out(project, pt):
    experiment(project)
    a = run_id(project, "run")
    digest = show_json(project, a)["targets"]["train"]["outs"]["out/model.txt"]
    obj = cache_objects(project)[digest]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"")
    (project.root / "out/model.txt").unlink()
    project.clear_runs()
    res = ok(pt("run"))
    assert project.runs() == ["train"], res.stderr
    assert "corrupt" in res.stderr
    assert project.read("out/model.txt") == "seed=1\nlr=0.01\n"


# -- interrupts -----------------------------------------------------------------------------------

SLOW = FAST_THEN_SLOW




def test_sigkill_during_a_run_leaves_an_interrupted_manifest_and_a_new_run_works(project, pt):
    project.pipeline(SLOW)
    proc = project.popen("run", "-j", "2")
    bash_pid = wait_started(project, proc)
    project.kill_at_end.append(bash_pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=5)
    res = ok(pt("runs", "--json"))
    data = json.loads(res.stdout)
    assert len(data) == 1
    killed = data[0]
    assert killed["status"] == "interrupted"
    assert killed["targets"]["fast"]["action"] == "built"
    assert killed["targets"]["fast"]["outs"]
    assert killed["targets"].get("slow", {}).get("action") != "built"
    assert show_json(project, killed["id"])["status"] == "interrupted"
    assert "interrupted" in ok(pt("runs")).stdout
    # a new run after it: reruns only what did not finish
    new = run_json(project, "run", "--no-wait", env={"SLEEP": "0"})
    assert project.runs() == ["fast", "slow", "slow"]
    m = show_json(project, new["run_id"])
    assert m["status"] == "succeeded"
    assert actions(m) == {"fast": "skipped", "slow": "built"}
    assert [r["status"] for r in runs_json(project)] == ["interrupted", "succeeded"]


def test_sigint_leaves_a_run_with_status_interrupted(project, pt):
    project.pipeline(SLOW)
    proc = project.popen("run", "-j", "2")
    bash_pid = wait_started(project, proc)
    project.kill_at_end.append(bash_pid)
    project.wait_for(lambda: len(group_members(bash_pid)) >= 2, 5, "bash to start its sleep child")
    proc.send_signal(signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        raise AssertionError("pipetool did not exit within 8s of SIGINT") from None
    assert proc.returncode == 130, err
    project.wait_for(lambda: not pid_alive(bash_pid), 3, "the command to be gone")
    (m,) = runs_json(project)
    assert m["status"] == "interrupted"
    assert m["finished_at"]
    assert m["targets"]["fast"]["action"] == "built"
    assert m["targets"]["slow"]["action"] == "failed"
    assert m["targets"]["slow"]["reason"] == "interrupted"
    on_disk = json.loads((project.root / ".pipetool" / "runs" / m["id"] / "manifest.json").read_text())
    assert on_disk["status"] == "interrupted"


def test_a_running_run_shows_as_running_and_read_only_commands_do_not_wait(project, pt):
    project.pipeline(SLOW)
    proc = project.popen("run", "-j", "2")
    wait_started(project, proc)
    res = ok(pt("runs", "--json", timeout=10))
    (m,) = json.loads(res.stdout)
    assert m["status"] == "running"
    assert m["targets"]["fast"]["action"] == "built"
    assert show_json(project, m["id"])["status"] == "running"
    ok(pt("runs", timeout=10))


# -- a corrupt manifest file --------------------------------------------------------------------

def test_a_corrupt_or_missing_manifest_file_never_crashes_runs(project, pt):
    import shutil

    experiment(project)
    a = run_id(project, "run")
    b = run_id(project, "run", "-S", "train.lr=0.1")
    (project.root / ".pipetool" / "runs" / a / "manifest.json").write_bytes(b"{not json\xff")
    shutil.rmtree(project.root / ".pipetool" / "runs" / b)
    res = ok(pt("runs", "--json"))
    assert [m["id"] for m in json.loads(res.stdout)] == [a, b]
    ok(pt("runs"))
    ok(pt("show", a))
    ok(pt("diff", a, b))
    run_id(project, "run")  # and the next run works


# -- the Python API ------------------------------------------------------------------------------

def _plain(value) -> None:
    """JSON-serialisable plain data (after dataclasses.asdict for dataclasses)."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    json.dumps(value)


def test_python_api_runs_and_show_return_plain_data(project, pt):
    import pipetool

    experiment(project)
    a = run_id(project, "run")
    b = run_id(project, "run", "-S", "train.lr=0.1")
    runs = pipetool.runs(cwd=str(project.root))
    assert isinstance(runs, list) and [r["id"] for r in runs] == [a, b]
    assert runs[1]["parent"] == a
    assert runs[1]["metrics"]["metrics/train.json"]["acc"] == 0.1
    _plain(runs)
    full = pipetool.runs(cwd=str(project.root), full=True)
    assert full == runs_json(project)
    shown = pipetool.show(_shortest_unique_prefix(b, [a, b]), cwd=str(project.root))
    assert shown == show_json(project, b)
    _plain(shown)
    with pytest.raises(pipetool.PipetoolError):
        pipetool.show("zzzzzz", cwd=str(project.root))
