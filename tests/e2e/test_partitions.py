"""`foreach` partitions (SPEC §10): one target NAME[KEY] per item, planned, recorded and
restored on its own; fan-in by data edges; items that vanish leave the workspace;
globs over an upstream's outs expanded when it is done, in the same run."""
from __future__ import annotations

import json

from .support import assert_invalid, ok, run_json, show_json, status_json

SOURCE_GLOB = """
    targets:
      clean:
        foreach: data/*.csv
        cmd: echo "clean ${item.name}" >> runs.log && mkdir -p out/clean && tr a-z A-Z < ${item} > out/clean/${item.stem}.txt
        deps: ["${item}"]
        outs: ["out/clean/${item.stem}.txt"]
      summary:
        cmd: echo summary >> runs.log && cat out/clean/*.txt > summary.txt
        deps: [out/clean/]
        outs: [summary.txt]
"""


def source_project(project) -> None:
    for name in ("a", "b", "c"):
        project.write(f"data/{name}.csv", f"{name} rows\n")
    project.pipeline(SOURCE_GLOB)


def test_each_file_of_a_glob_is_a_partition_and_the_fan_in_reads_them_all(project):
    source_project(project)
    out = run_json(project, "run", "-j", "2")
    assert sorted(out["targets"]) == ["clean[data/a.csv]", "clean[data/b.csv]", "clean[data/c.csv]", "summary"]
    assert sorted(project.runs()) == ["clean a.csv", "clean b.csv", "clean c.csv", "summary"]
    assert project.read("summary.txt") == "A ROWS\nB ROWS\nC ROWS\n"
    lock = json.loads(project.read("pipetool.lock"))["targets"]
    assert lock["clean[data/b.csv]"]["item"] == "data/b.csv"
    ok(project.pt("status", "--check"))


def test_a_new_file_runs_exactly_its_partition_and_the_fan_in(project):
    source_project(project)
    ok(project.pt("run"))
    project.clear_runs()
    project.write("data/d.csv", "d rows\n")
    assert status_json(project)["targets"]["clean[data/d.csv]"] == {"state": "stale", "reasons": ["never built"]}
    ok(project.pt("run"))
    assert project.runs() == ["clean d.csv", "summary"]
    assert project.read("summary.txt").endswith("D ROWS\n")


def test_a_changed_file_reruns_its_partition_only(project):
    source_project(project)
    ok(project.pt("run"))
    project.clear_runs()
    project.write("data/b.csv", "b changed\n")
    assert status_json(project)["targets"]["clean[data/b.csv]"] == {
        "state": "stale", "reasons": ["dep changed: data/b.csv"]}
    ok(project.pt("run"))
    assert project.runs() == ["clean b.csv", "summary"]


def test_a_vanished_file_takes_its_partitions_outs_out_of_the_workspace(project):
    source_project(project)
    first = run_json(project, "run")["run_id"]
    project.clear_runs()
    (project.root / "data/c.csv").unlink()
    assert status_json(project)["targets"]["clean[data/c.csv]"] == {
        "state": "stale", "reasons": ["item gone: data/c.csv"]}
    out = run_json(project, "run")
    assert out["targets"]["clean[data/c.csv]"]["action"] == "removed"
    assert out["targets"]["clean[data/c.csv]"]["reason"] == "item gone: data/c.csv"
    assert not project.exists("out/clean/c.txt")
    assert project.runs() == ["summary"]
    assert project.read("summary.txt") == "A ROWS\nB ROWS\n"
    assert "clean[data/c.csv]" not in json.loads(project.read("pipetool.lock"))["targets"]
    assert show_json(project, out["run_id"])["targets"]["clean[data/c.csv]"]["action"] == "removed"
    ok(project.pt("status", "--check"))
    # the cache kept it: with its file back, the partition is restored, not run
    project.write("data/c.csv", "c rows\n")
    out = run_json(project, "run")
    assert out["targets"]["clean[data/c.csv]"]["action"] == "restored"
    assert project.read("out/clean/c.txt") == "C ROWS\n"
    assert out["targets"]["summary"]["action"] == "restored"  # a, b, c again: as the first run built it
    assert project.runs() == ["summary"]
    assert show_json(project, first)["targets"]["clean[data/c.csv]"]["action"] == "built"


def test_one_partition_by_name_and_all_by_the_targets_name(project):
    source_project(project)
    ok(project.pt("run", "clean[data/b.csv]"))
    assert project.runs() == ["clean b.csv"]
    project.clear_runs()
    ok(project.pt("run", "clean"))
    assert sorted(project.runs()) == ["clean a.csv", "clean c.csv"]
    assert not project.exists("summary.txt")


RUNTIME = """
    params: {n: 3}
    targets:
      split:
        cmd: echo split >> runs.log && mkdir -p out/shards && for i in $(seq 1 ${n}); do echo "s$i" > out/shards/s$i.csv; done
        outs: [out/shards/]
      clean:
        foreach: out/shards/*.csv
        cmd: echo "clean ${item.stem}" >> runs.log && mkdir -p out/clean && tr a-z A-Z < ${item} > out/clean/${item.stem}.txt
        deps: ["${item}"]
        outs: ["out/clean/${item.stem}.txt"]
      summary:
        cmd: echo summary >> runs.log && cat out/clean/*.txt > summary.txt
        deps: [out/clean/]
        outs: [summary.txt]
"""


def test_shards_known_only_at_run_time_are_planned_in_the_same_run(project):
    project.pipeline(RUNTIME)
    data = status_json(project)["targets"]
    assert data["clean"] == {"state": "pending", "reasons": ["upstream stale: split"]}
    ok(project.pt("run", "-j", "2"))
    assert project.runs()[0] == "split" and project.runs()[-1] == "summary"
    assert sorted(project.runs()[1:-1]) == ["clean s1", "clean s2", "clean s3"]
    assert project.read("summary.txt") == "S1\nS2\nS3\n"
    ok(project.pt("status", "--check"))


def test_a_param_that_changes_the_shard_count_adds_and_removes_partitions(project):
    project.pipeline(RUNTIME)
    ok(project.pt("run"))
    project.clear_runs()
    out = run_json(project, "run", "-S", "n=2")
    # split reran; the two shards it wrote again are the same bytes: their partitions stay
    assert project.runs() == ["split", "summary"]
    assert out["targets"]["clean[out/shards/s3.csv]"]["action"] == "removed"
    assert out["targets"]["clean[out/shards/s1.csv]"]["action"] == "skipped"
    assert not project.exists("out/clean/s3.txt")
    project.clear_runs()
    out = run_json(project, "run", "-S", "n=4")
    # s3 is back with the bytes it had: its partition comes from the cache; s4 is new
    assert project.runs() == ["split", "clean s4", "summary"]
    assert out["targets"]["clean[out/shards/s3.csv]"]["action"] == "restored"
    assert project.read("summary.txt") == "S1\nS2\nS3\nS4\n"


PARAM_LIST = """
    params:
      grid: {seeds: [1, 2]}
    targets:
      fit:
        foreach: ${grid.seeds}
        python: src.fit:fit
        outs: ["models/seed-${item}.txt"]
      report:
        cmd: echo report >> runs.log && cat models/*.txt > report.txt
        deps: [models/]
        outs: [report.txt]
"""


def test_a_param_list_makes_one_partition_per_item_and_a_callable_gets_item_and_key(project):
    project.write("src/__init__.py", "")
    project.write("src/fit.py", '''
        def fit(item, key, outs):
            with open("runs.log", "a") as log:
                log.write(f"fit {item}\\n")
            outs[0].parent.mkdir(parents=True, exist_ok=True)
            outs[0].write_text(f"seed={item} key={key!r}\\n")
    ''')
    project.pipeline(PARAM_LIST)
    ok(project.pt("run", "-j", "1"))
    assert project.runs() == ["fit 1", "fit 2", "report"]
    assert project.read("models/seed-2.txt") == "seed=2 key='2'\n"
    project.clear_runs()
    ok(project.pt("run", "-S", "grid.seeds=[1, 2, 3]"))
    assert project.runs() == ["fit 3", "report"]
    project.clear_runs()
    out = run_json(project, "run", "-S", "grid.seeds=[2, 3]")
    assert out["targets"]["fit[1]"]["action"] == "removed"
    assert project.runs() == ["report"]
    assert not project.exists("models/seed-1.txt")


def test_a_mapping_gives_key_and_item_fields(project):
    project.pipeline("""
        params:
          models: {small: {width: 8}, large: {width: 64}}
        targets:
          train:
            foreach: ${models}
            cmd: echo "train ${key}" >> runs.log && mkdir -p out && echo ${item.width} > out/${key}.txt
            outs: ["out/${key}.txt"]
    """)
    ok(project.pt("run", "-j", "1"))
    assert project.runs() == ["train small", "train large"]
    assert project.read("out/large.txt") == "64\n"
    project.clear_runs()
    data = status_json(project, "-S", "models.small.width=16")["targets"]
    assert data["train[small]"] == {"state": "stale", "reasons": ["item changed: {\"width\":8} -> {\"width\":16}"]}
    assert data["train[large]"]["state"] == "fresh"


def test_duplicate_items_are_refused_before_anything_runs(project):
    project.pipeline("""
        targets:
          t:
            foreach: [1, 1]
            cmd: echo t >> runs.log
            outs: ["o${item}"]
    """)
    assert_invalid(project.pt("run"), "target 't': foreach has the item '1' twice", project=project)


def test_a_file_name_with_spaces_and_quotes_arrives_whole(project):
    project.write("data/it's a file.csv", "x\n")
    project.pipeline("""
        targets:
          copy:
            foreach: data/*.csv
            cmd: mkdir -p out && cp ${item} "out/${item.stem}.txt"
            deps: ["${item}"]
            outs: ["out/${item.stem}.txt"]
    """)
    ok(project.pt("run"))
    assert project.read("out/it's a file.txt") == "x\n"


def test_a_failing_partitions_log_is_one_file_named_after_it(project):
    project.write("data/a.csv", "x\n")
    project.pipeline("""
        targets:
          bad:
            foreach: data/*.csv
            cmd: echo "broken ${item}" && exit 3
            deps: ["${item}"]
            outs: ["out/${item.stem}.txt"]
    """)
    res = ok(project.pt("run"), code=1)
    assert "bad[data/a.csv] failed: exit status 3" in res.stderr
    assert "broken data/a.csv" in res.stderr
    logs = list((project.root / ".pipetool" / "logs").rglob("*.log"))
    assert [p.name for p in logs] == ["bad[data%2Fa.csv].log"]


def test_the_sensors_example_runs_one_partition_for_a_new_file(project):
    import shutil
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "sensors"
    for rel in ("pipeline.yaml", "src/__init__.py", "src/stats.py", "src/summary.py",
                "readings/north.csv", "readings/south.csv", "readings/east.csv"):
        (project.root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(example / rel, project.root / rel)
    first = run_json(project, "run")
    assert {n: t["action"] for n, t in first["targets"].items()} == {
        "stats[readings/east.csv]": "built", "stats[readings/north.csv]": "built",
        "stats[readings/south.csv]": "built", "summary": "built"}
    shutil.copy(project.root / "readings/north.csv", project.root / "readings/west.csv")
    second = run_json(project, "run")
    assert sorted(n for n, t in second["targets"].items() if t["action"] == "built") == [
        "stats[readings/west.csv]", "summary"]
    assert project.read("summary.csv").splitlines()[-1].startswith("west,24,")
