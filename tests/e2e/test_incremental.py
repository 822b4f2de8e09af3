"""Building, staleness and status through the real command (SPEC §3, §4)."""
from __future__ import annotations

import os
import time

from .support import chain, ok, status_json


def test_run_builds_all_in_dependency_order(project, pt):
    chain(project)
    res = ok(pt("run", "-j", "1"))
    runs = project.runs()
    assert sorted(runs) == ["a", "b", "c", "x"]
    assert runs.index("a") < runs.index("b") < runs.index("c")
    assert project.read("out/c.txt") == "alpha\nb\nc\n"
    assert project.read("out/x.txt") == "xray\n"
    assert "4 built" in res.stderr


def test_run_builds_diamond_in_dependency_order_in_parallel(project, pt):
    project.write("in/seed.txt", "s\n")
    project.pipeline("""
        targets:
          join:
            cmd: echo join >> runs.log && cat out/l.txt out/r.txt > out/join.txt
            deps: [out/l.txt, out/r.txt]
            outs: [out/join.txt]
          left:
            cmd: echo left >> runs.log && cat out/prep.txt > out/l.txt
            deps: [out/prep.txt]
            outs: [out/l.txt]
          right:
            cmd: echo right >> runs.log && cat out/prep.txt > out/r.txt
            deps: [out/prep.txt]
            outs: [out/r.txt]
          prep:
            cmd: echo prep >> runs.log && cat in/seed.txt > out/prep.txt
            deps: [in/seed.txt]
            outs: [out/prep.txt]
    """)
    ok(pt("run", "-j", "4"))
    runs = project.runs()
    assert sorted(runs) == ["join", "left", "prep", "right"]
    assert runs[0] == "prep" and runs[-1] == "join"
    assert project.read("out/join.txt") == "s\ns\n"


def test_second_run_executes_nothing(project, pt):
    chain(project)
    ok(pt("run"))
    project.clear_runs()
    res = ok(pt("run"))
    assert project.runs() == []
    assert "nothing to do" in res.stderr


def test_status_says_all_up_to_date_after_run(project, pt):
    chain(project)
    ok(pt("run"))
    res = ok(pt("status"))
    assert "up to date" in res.stdout
    assert project.runs().count("a") == 1  # status ran nothing


def test_status_check_exit_0_when_fresh_and_1_after_input_change(project, pt):
    chain(project)
    ok(pt("status", "--check"), 1)  # never built
    ok(pt("run"))
    ok(pt("status", "--check"), 0)
    project.write("in/a.txt", "changed\n")
    res = ok(pt("status", "--check"), 1)
    assert "a" in res.stdout and "dep changed: in/a.txt" in res.stdout


def test_status_json_shape_when_fresh(project, pt):
    chain(project)
    ok(pt("run"))
    data = status_json(project)
    assert set(data) == {"targets"}
    assert set(data["targets"]) == {"a", "b", "c", "x"}
    for name, v in data["targets"].items():
        assert set(v) == {"state", "reasons"}, name
        assert v["state"] == "fresh"
        assert v["reasons"] == []


def test_status_json_never_built(project, pt):
    chain(project)
    data = status_json(project)["targets"]
    assert data["a"]["state"] == "stale"
    assert "never built" in data["a"]["reasons"]
    assert data["x"]["state"] == "stale"
    # b and c are downstream of a stale target, but never built themselves: a reason of
    # their own makes them stale, not pending (SPEC §3)
    for n in ("b", "c"):
        assert data[n] == {"state": "stale", "reasons": ["never built"]}, data[n]


def test_status_json_dep_changed_and_upstream_pending(project, pt):
    chain(project)
    ok(pt("run"))
    project.write("in/a.txt", "changed\n")
    data = status_json(project)["targets"]
    assert data["a"] == {"state": "stale", "reasons": ["dep changed: in/a.txt"]}
    assert data["b"] == {"state": "pending", "reasons": ["upstream stale: a"]}
    assert data["c"] == {"state": "pending", "reasons": ["upstream stale: b"]}
    assert data["x"] == {"state": "fresh", "reasons": []}


def test_status_json_param_changed(project, pt):
    project.write("in/a.txt", "alpha\n")
    project.pipeline("""
        params:
          train: {lr: 0.01, epochs: 2}
        targets:
          train:
            cmd: echo train >> runs.log && echo ${train.lr} > out/model.txt
            outs: [out/model.txt]
          other:
            cmd: echo other >> runs.log && cat in/a.txt > out/other.txt
            deps: [in/a.txt]
            outs: [out/other.txt]
    """)
    ok(pt("run"))
    data = status_json(project, "-S", "train.lr=0.1")["targets"]
    assert data["train"] == {"state": "stale", "reasons": ["param changed: train.lr 0.01 -> 0.1"]}
    assert data["other"]["state"] == "fresh"


def test_status_json_out_missing(project, pt):
    chain(project)
    ok(pt("run"))
    os.unlink(project.root / "out/c.txt")
    data = status_json(project)["targets"]
    assert data["c"]["state"] == "stale"
    assert "out missing: out/c.txt" in data["c"]["reasons"]
    assert data["a"]["state"] == data["b"]["state"] == "fresh"


def test_status_json_out_modified(project, pt):
    chain(project)
    ok(pt("run"))
    project.write("out/c.txt", "tampered\n")
    data = status_json(project)["targets"]
    assert data["c"]["state"] == "stale"
    assert any("out/c.txt" in r for r in data["c"]["reasons"]), data["c"]


def test_status_json_for_selected_targets_only(project, pt):
    chain(project)
    ok(pt("run"))
    data = status_json(project, "x")
    assert set(data["targets"]) == {"x"}


def test_changing_input_reruns_only_its_downstream(project, pt):
    chain(project)
    ok(pt("run"))
    project.clear_runs()
    project.write("in/x.txt", "new x\n")
    ok(pt("run"))
    assert project.runs() == ["x"]
    project.write("in/a.txt", "new a\n")
    ok(pt("run"))
    assert project.runs() == ["x", "a", "b", "c"]
    assert project.read("out/c.txt") == "new a\nb\nc\n"


def test_touching_input_same_content_reruns_nothing(project, pt):
    chain(project)
    ok(pt("run"))
    project.clear_runs()
    later = time.time() + 5
    for rel in ("in/a.txt", "in/x.txt", "out/a.txt"):
        os.utime(project.root / rel, (later, later))
    res = ok(pt("run"))
    assert project.runs() == []
    assert "nothing to do" in res.stderr


def test_rewrite_same_size_right_after_run_is_seen(project, pt):
    # "racily clean": same size, same second; the mtime must not be trusted
    chain(project)
    ok(pt("run"))
    project.clear_runs()
    st = os.stat(project.root / "in/a.txt")
    project.write("in/a.txt", "ALPHA\n")
    os.utime(project.root / "in/a.txt", ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime too
    ok(pt("run"))
    assert project.runs() == ["a", "b", "c"]
    assert project.read("out/c.txt") == "ALPHA\nb\nc\n"


def test_early_cutoff_identical_upstream_output_does_not_rerun_downstream(project, pt):
    project.write("in/a.txt", "alpha\n")
    project.pipeline("""
        params:
          up: {verbosity: 1}
        targets:
          up:
            cmd: echo up >> runs.log && echo "verbosity ${up.verbosity}" >&2 && cat in/a.txt > out/up.txt
            deps: [in/a.txt]
            outs: [out/up.txt]
          down:
            cmd: echo down >> runs.log && cat out/up.txt > out/down.txt
            deps: [out/up.txt]
            outs: [out/down.txt]
    """)
    ok(pt("run"))
    project.clear_runs()
    project.write("pipeline.yaml", project.read("pipeline.yaml").replace("verbosity: 1", "verbosity: 2"), dedent=False)
    data = status_json(project)["targets"]
    assert data["up"]["state"] == "stale"
    assert data["down"]["state"] == "pending"
    ok(pt("run"))
    assert project.runs() == ["up"]
    ok(pt("status", "--check"))


def test_run_named_target_builds_it_and_upstream_only(project, pt):
    chain(project)
    ok(pt("run", "b"))
    assert sorted(project.runs()) == ["a", "b"]
    assert not project.exists("out/c.txt") and not project.exists("out/x.txt")
    data = status_json(project)["targets"]
    assert data["a"]["state"] == data["b"]["state"] == "fresh"
    assert data["c"]["state"] == "stale" and data["x"]["state"] == "stale"


def test_run_target_named_by_out_path(project, pt):
    chain(project)
    ok(pt("run", "out/b.txt"))
    assert sorted(project.runs()) == ["a", "b"]
    assert not project.exists("out/c.txt")


def test_run_several_named_targets(project, pt):
    chain(project)
    ok(pt("run", "a", "x"))
    assert sorted(project.runs()) == ["a", "x"]


def test_dry_run_prints_what_would_run_and_runs_nothing(project, pt):
    chain(project)
    res = ok(pt("run", "-n"))
    text = res.stdout + res.stderr
    for n in ("a", "b", "c", "x"):
        assert f"would run {n}" in text, text
    assert "never built" in text
    assert project.runs() == []
    assert not project.exists("out")
    assert not project.exists("pipetool.lock")
    ok(pt("status", "--check"), 1)  # still stale: nothing recorded


def test_dry_run_after_change_names_only_stale(project, pt):
    chain(project)
    ok(pt("run"))
    project.clear_runs()
    project.write("in/x.txt", "new\n")
    res = ok(pt("run", "-n"))
    text = res.stdout + res.stderr
    assert "would run x" in text and "dep changed: in/x.txt" in text
    assert "would run a" not in text
    assert project.runs() == []


def test_force_rebuilds_fresh_targets(project, pt):
    chain(project)
    ok(pt("run"))
    project.clear_runs()
    ok(pt("run", "--force", "-j", "1"))
    runs = project.runs()
    assert sorted(runs) == ["a", "b", "c", "x"]
    assert runs.index("a") < runs.index("b") < runs.index("c")


def test_force_named_target_rebuilds_only_it(project, pt):
    chain(project)
    ok(pt("run"))
    project.clear_runs()
    ok(pt("run", "--force", "b"))
    # b's output came out identical, so c stays fresh (and was not selected anyway)
    assert project.runs() == ["b"]
    ok(pt("status", "--check"))


def test_deleted_out_is_rebuilt_or_restored(project, pt):
    chain(project)
    ok(pt("run"))
    os.unlink(project.root / "out/b.txt")
    ok(pt("run"))
    assert project.read("out/b.txt") == "alpha\nb\n"
    ok(pt("status", "--check"))


def test_glob_dep_sees_new_matching_file(project, pt):
    project.write("data/1.csv", "1\n")
    project.pipeline("""
        targets:
          cat:
            cmd: echo cat >> runs.log && cat data/*.csv > out/all.txt
            deps: ["data/*.csv"]
            outs: [out/all.txt]
    """)
    ok(pt("run"))
    project.write("data/2.csv", "2\n")
    ok(pt("run"))
    assert project.runs() == ["cat", "cat"]
    assert project.read("out/all.txt") == "1\n2\n"


def test_directory_dep_sees_file_change_inside(project, pt):
    project.write("data/raw/a.txt", "1\n")
    project.write("data/raw/sub/b.txt", "2\n")
    project.pipeline("""
        targets:
          count:
            cmd: echo count >> runs.log && find data/raw -type f | sort > out/list.txt
            deps: [data/raw/]
            outs: [out/list.txt]
    """)
    ok(pt("run"))
    ok(pt("run"))
    project.write("data/raw/sub/b.txt", "22\n")
    ok(pt("run"))
    assert project.runs() == ["count", "count"]


def test_directory_out_feeds_downstream(project, pt):
    project.write("in/a.txt", "alpha\n")
    project.pipeline("""
        targets:
          split:
            cmd: echo split >> runs.log && mkdir -p out/parts && cp in/a.txt out/parts/1.txt && cp in/a.txt out/parts/2.txt
            deps: [in/a.txt]
            outs: [out/parts/]
          merge:
            cmd: echo merge >> runs.log && cat out/parts/1.txt out/parts/2.txt > out/merged.txt
            deps: [out/parts/2.txt]
            outs: [out/merged.txt]
    """)
    ok(pt("run", "-j", "1"))
    assert project.runs() == ["split", "merge"]
    assert project.read("out/merged.txt") == "alpha\nalpha\n"


def test_needs_orders_without_data(project, pt):
    project.pipeline("""
        targets:
          second:
            cmd: echo second >> runs.log && echo 2 > out/2.txt
            outs: [out/2.txt]
            needs: [first]
          first:
            cmd: sleep 0.2 && echo first >> runs.log && echo 1 > out/1.txt
            outs: [out/1.txt]
    """)
    ok(pt("run", "-j", "4"))
    assert project.runs() == ["first", "second"]


def test_always_target_runs_every_time(project, pt):
    project.pipeline("""
        targets:
          stamp:
            cmd: echo stamp >> runs.log && echo same > out/stamp.txt
            outs: [out/stamp.txt]
            always: true
    """)
    ok(pt("run"))
    ok(pt("run"))
    assert project.runs() == ["stamp", "stamp"]
