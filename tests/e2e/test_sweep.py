"""`pipetool sweep` (SPEC §10) through the real command: every point a run of its own in an
isolated workspace, all points under one -j, work they share done once, the project's
files and pipetool.lock untouched; resume, show, runs, checkout, --from, partitions.

Commands append to the project's runs.log (written before each sweep, so every point's
workspace links it), which says exactly what executed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from pipetool.sweeps.space import point_id

from .support import assert_invalid, ok, runs_json, show_json

SHARED = """
    params:
      prep: {n: 1}
      train: {lr: 0.1, epochs: 3}
    targets:
      prep:
        cmd: echo prep >> runs.log && echo n=${prep.n} > out/prep.txt
        outs: [out/prep.txt]
      train:
        cmd: |-
          echo "train ${train.lr}" >> runs.log && test ${train.lr} != 0.25 && cat out/prep.txt > out/model.txt && echo lr=${train.lr} >> out/model.txt && echo '{"acc": ${train.lr}, "val": {"loss": ${train.epochs}}}' > metrics/train.json
        deps: [out/prep.txt]
        outs: [out/model.txt]
        metrics: [metrics/train.json]
"""


def shared_project(project, text: str = SHARED) -> None:
    project.pipeline(text)
    project.write("runs.log", "")


def sweep_json(project, *args: str, code: int = 0) -> dict:
    res = ok(project.pt("sweep", *args, "--json"), code)
    return json.loads(res.stdout)


def point_dir(project, table: dict, run: str) -> Path:
    """The workspace of the point whose run is `run`: named by the point's id."""
    values = show_json(project, run)["overrides"]
    return project.root / ".pipetool" / "sweeps" / table["id"] / point_id({k: values[k] for k in table["keys"]})


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the project outside .pipetool/, by content."""
    out = {}
    for base, dirs, files in os.walk(root):
        if ".pipetool" in Path(base).relative_to(root).parts[:1]:
            continue
        dirs[:] = [d for d in dirs if d != ".pipetool"]
        for f in files:
            p = Path(base) / f
            if p.name != "runs.log":
                out[str(p.relative_to(root))] = p.read_bytes()
    return out


# -- a grid with a shared upstream ---------------------------------------------------------------

def test_a_grid_runs_its_shared_upstream_once_and_links_its_outputs_into_the_other_points(project):
    shared_project(project)
    table = sweep_json(project, "-S", "train.lr=0.1,0.2,0.3", "-j", "3")
    assert sorted(project.runs()) == ["prep", "train 0.1", "train 0.2", "train 0.3"]
    assert table["keys"] == ["train.lr"] and table["fixed"] == {} and table["status"] == "succeeded"
    assert [p["params"] for p in table["points"]] == [{"train.lr": 0.1}, {"train.lr": 0.2}, {"train.lr": 0.3}]
    assert [p["metrics"] for p in table["points"]] == [
        {"metrics/train.json": {"acc": v, "val.loss": 3}} for v in (0.1, 0.2, 0.3)]
    prep_actions = []
    for p in table["points"]:
        m = show_json(project, p["run"])
        assert (m["sweep"], m["parent"], m["status"]) == (table["id"], None, "succeeded")
        assert m["overrides"] == p["params"] and m["params"]["train"]["lr"] == p["params"]["train.lr"]
        prep_actions.append(m["targets"]["prep"]["action"])
        ws = point_dir(project, table, p["run"])
        assert (ws / "out" / "model.txt").read_text() == f"n=1\nlr={p['params']['train.lr']}\n"
        if m["targets"]["prep"]["action"] == "restored":  # linked from the cache, not copied
            target = os.readlink(ws / "out" / "prep.txt")
            assert target.startswith(str(project.root / ".pipetool" / "cache" / "objects")), target
    assert sorted(prep_actions) == ["built", "restored", "restored"]
    assert sorted(os.listdir(project.root)) == [".pipetool", "pipeline.yaml", "runs.log"]  # the project untouched


def test_points_are_isolated_and_the_projects_outputs_and_lock_stay_byte_identical(project):
    shared_project(project)
    ok(project.pt("run"))
    base = runs_json(project)[-1]["id"]
    before = snapshot(project.root)
    assert "pipetool.lock" in before and "out/model.txt" in before
    project.clear_runs()
    project.write("runs.log", "")
    table = sweep_json(project, "-S", "train.lr=0.2,0.3")
    assert sorted(project.runs()) == ["train 0.2", "train 0.3"]  # prep: the project's, up to date
    assert snapshot(project.root) == before
    for p in table["points"]:
        ws = point_dir(project, table, p["run"])
        assert (ws / "out" / "model.txt").read_text() == f"n=1\nlr={p['params']['train.lr']}\n"
        assert os.readlink(ws / "out" / "prep.txt") == str(project.root / "out" / "prep.txt")
        m = show_json(project, p["run"])
        assert m["parent"] == base and m["targets"]["prep"]["action"] == "skipped"
    assert runs_json(project)[0]["id"] == base
    ok(project.pt("status", "--check"))  # the project's workspace is still its last run's
    assert json.loads(project.pt("runs", "--json").stdout)[0]["sweep"] is None


def test_a_failing_point_does_not_stop_the_others_and_the_sweep_exits_1(project):
    shared_project(project)
    table = sweep_json(project, "-S", "train.lr=0.1,0.25,0.3", code=1)
    assert [p["status"] for p in table["points"]] == ["succeeded", "failed", "succeeded"]
    assert table["status"] == "failed"
    assert sorted(project.runs()) == ["prep", "train 0.1", "train 0.25", "train 0.3"]
    assert show_json(project, table["points"][1]["run"])["targets"]["train"]["action"] == "failed"


def test_a_param_that_breaks_the_schema_in_one_point_stops_the_sweep_before_anything_runs(project):
    shared_project(project, SHARED + """
    params_schema:
      type: object
      properties:
        train:
          type: object
          properties: {lr: {type: number, exclusiveMinimum: 0}}
""")
    res = project.pt("sweep", "-S", "train.lr=0.1,-1,0.3")
    assert_invalid(res, "point 2 (train.lr=-1):", "train.lr", project=None)
    assert project.runs() == []
    assert runs_json(project) == []
    assert "no recorded sweeps" in project.pt("sweep", "show").stderr


def test_the_same_sweep_again_is_a_new_sweep_that_restores_every_point(project):
    shared_project(project)
    first = sweep_json(project, "-S", "train.lr=0.1,0.2")
    project.write("runs.log", "")
    again = sweep_json(project, "-S", "train.lr=0.1,0.2")
    assert project.runs() == []
    assert again["id"] != first["id"] and again["status"] == "succeeded"
    for p in again["points"]:
        assert {t["action"] for t in show_json(project, p["run"])["targets"].values()} == {"restored"}


# -- show, runs, checkout, --from --------------------------------------------------------------

def test_sweep_show_lists_points_in_grid_order_or_sorted_by_a_metric(project):
    shared_project(project)
    table = sweep_json(project, "-S", "train.lr=0.2,0.1,0.3", "-S", "train.epochs=5")
    assert table["fixed"] == {"train.epochs": 5}
    runs = {p["params"]["train.lr"]: p["run"] for p in table["points"]}
    shown = json.loads(ok(project.pt("sweep", "show", "--json")).stdout)
    assert shown == table
    assert set(shown) == {"id", "base", "status", "keys", "fixed", "points"}
    assert all(set(p) == {"run", "status", "params", "metrics"} for p in shown["points"])
    best = json.loads(ok(project.pt("sweep", "show", table["id"][:6], "--sort", "metrics/train.json:acc",
                                    "--json")).stdout)
    assert [p["run"] for p in best["points"]] == [runs[0.3], runs[0.2], runs[0.1]]
    low = json.loads(ok(project.pt("sweep", "show", "--sort", "-metrics/train.json:acc", "--json")).stdout)
    assert [p["run"] for p in low["points"]] == [runs[0.1], runs[0.2], runs[0.3]]
    text = ok(project.pt("sweep", "show", "--sort", "metrics/train.json:acc")).stdout.splitlines()
    assert text[0].startswith(f"sweep {table['id']}  succeeded  3 point(s)")
    assert text[1].split() == ["#", "run", "status", "train.lr", "acc", "val.loss"]
    assert [line.split()[0] for line in text[2:]] == ["3", "1", "2"]  # the points' places in the grid
    assert_invalid(project.pt("sweep", "show", "--sort", "metrics/train.json:nope"), "no point has that metric",
                   "metrics/train.json:acc")


def test_runs_shows_a_sweep_as_one_node_with_its_points_below_it(project):
    shared_project(project)
    ok(project.pt("run"))
    base = runs_json(project)[-1]["id"]
    table = sweep_json(project, "-S", "train.lr=0.2,0.3")
    lines = ok(project.pt("runs")).stdout.splitlines()
    assert lines[0].startswith(base)
    assert lines[1].startswith(f"└─ sweep {table['id']}") and "2 points  2 succeeded" in lines[1]
    assert [line.split()[1] for line in lines[2:]] == [p["run"] for p in table["points"]]
    assert "train.lr: 0.1 -> 0.2" in lines[2]
    assert [r["sweep"] for r in runs_json(project)] == [None, table["id"], table["id"]]


def test_checkout_adopts_the_best_point_of_a_sweep(project):
    shared_project(project)
    ok(project.pt("run"))
    table = sweep_json(project, "-S", "train.lr=0.2,0.3,0.15")
    best = json.loads(ok(project.pt("sweep", "show", "--sort", "metrics/train.json:acc", "--json")).stdout)
    run = best["points"][0]["run"]
    assert best["points"][0]["params"] == {"train.lr": 0.3}
    ok(project.pt("checkout", run))
    assert project.read("out/model.txt") == "n=1\nlr=0.3\n"  # built by the point
    assert project.read("out/prep.txt") == "n=1\n"  # linked from the project's own, by the point
    assert json.loads(project.read("metrics/train.json"))["acc"] == 0.3
    ok(project.pt("status", "--check", "-S", "train.lr=0.3"))
    assert table["status"] == "succeeded"


def test_from_run_starts_every_point_from_that_runs_params_and_outputs(project):
    shared_project(project)
    ok(project.pt("run", "-S", "prep.n=7"))
    base = runs_json(project)[-1]["id"]
    ok(project.pt("run"))  # the workspace moves on (prep.n=1)
    project.write("runs.log", "")
    table = sweep_json(project, "--from", base, "-S", "train.lr=0.2,0.3")
    assert sorted(project.runs()) == ["train 0.2", "train 0.3"]  # prep: the base run's, linked in
    assert table["base"] == base
    for p in table["points"]:
        m = show_json(project, p["run"])
        assert m["parent"] == base and m["params"]["prep"]["n"] == 7
        ws = point_dir(project, table, p["run"])
        assert (ws / "out" / "model.txt").read_text() == f"n=7\nlr={p['params']['train.lr']}\n"
        assert os.readlink(ws / "out" / "prep.txt").startswith(str(project.root / ".pipetool" / "cache"))
    assert project.read("out/prep.txt") == "n=1\n"


# -- interrupted and resumed -----------------------------------------------------------------------

# The point with lr 0.3 waits (until a `release` file exists) after writing its PID to
# `handshake`, a file of the project's (made empty first) that its workspace links.
SLOW_POINT = SHARED.replace("test ${train.lr} != 0.25", "{ test ${train.lr} != 0.3 || test -e release || "
                            "{ echo $$ > handshake; sleep 60; }; }")


def test_a_killed_sweep_keeps_its_finished_points_and_resume_runs_only_the_others(project):
    shared_project(project, SLOW_POINT)
    project.write("handshake", "")
    proc = project.popen("sweep", "-S", "train.lr=0.1,0.2,0.3", "-j", "3")
    project.wait_file("handshake")

    def two_done() -> bool:
        return sum(r["status"] == "succeeded" for r in runs_json(project)) == 2

    project.wait_for(two_done, 30, "two points to succeed")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    table = json.loads(ok(project.pt("sweep", "show", "--json")).stdout)
    assert [p["status"] for p in table["points"]] == ["succeeded", "succeeded", "interrupted"]
    assert table["status"] == "interrupted"
    project.write("release", "")
    project.write("runs.log", "")
    resumed = sweep_json(project, "--resume")
    assert project.runs() == ["train 0.3"]  # no finished point ran again; prep restored
    assert resumed["id"] == table["id"] and resumed["status"] == "succeeded"
    assert resumed["points"][:2] == table["points"][:2]
    assert resumed["points"][2]["run"] != table["points"][2]["run"]
    assert show_json(project, resumed["points"][2]["run"])["sweep"] == table["id"]
    project.write("runs.log", "")
    assert "nothing to resume" in ok(project.pt("sweep", "--resume", table["id"][:6])).stderr
    assert project.runs() == []


def test_resume_takes_the_sweep_as_recorded(project):
    shared_project(project)
    sweep_json(project, "-S", "train.lr=0.1,0.2")
    assert_invalid(project.pt("sweep", "--resume", "-S", "train.lr=0.2"), "--resume", "leave out -S")
    assert_invalid(project.pt("sweep", "--resume", "nope"), "no sweep matches 'nope'")


def test_sigterm_stops_a_sweep_records_its_points_and_exits_143(project):
    shared_project(project, SLOW_POINT)
    project.write("handshake", "")
    proc = project.popen("sweep", "-S", "train.lr=0.1,0.3", "-j", "2")
    pid = int(project.wait_file("handshake"))
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    table = json.loads(ok(project.pt("sweep", "show", "--json")).stdout)
    assert table["status"] == "interrupted"
    statuses = {p["params"]["train.lr"]: p["status"] for p in table["points"]}
    assert statuses[0.3] == "interrupted"
    assert show_json(project, table["points"][1]["run"])["targets"]["train"]["reason"] == "interrupted"
    try:
        os.kill(pid, 0)
        alive = Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
    except ProcessLookupError:
        alive = False
    assert not alive, "the point's command was left running"


# -- partitions, disk, names -----------------------------------------------------------------------

PARTITIONED = """
    params:
      report: {scale: 1}
    targets:
      clean:
        foreach: data/*.csv
        cmd: echo "clean ${item.name}" >> runs.log && mkdir -p out/clean && tr a-z A-Z < ${item} > out/clean/${item.stem}.txt
        deps: ["${item}"]
        outs: ["out/clean/${item.stem}.txt"]
      summary:
        cmd: echo "summary ${report.scale}" >> runs.log && (cat out/clean/*.txt; echo x${report.scale}) > summary.txt
        deps: [out/clean/]
        outs: [summary.txt]
"""


def test_a_sweep_over_a_partitioned_pipeline_builds_each_partition_once(project):
    for name in ("a", "b", "c"):
        project.write(f"data/{name}.csv", f"{name} rows\n")
    shared_project(project, PARTITIONED)
    table = sweep_json(project, "-S", "report.scale=1,2", "-j", "2")
    assert sorted(project.runs()) == ["clean a.csv", "clean b.csv", "clean c.csv", "summary 1", "summary 2"]
    for p in table["points"]:
        ws = point_dir(project, table, p["run"])
        scale = p["params"]["report.scale"]
        assert (ws / "summary.txt").read_text() == f"A ROWS\nB ROWS\nC ROWS\nx{scale}\n"
        assert set(show_json(project, p["run"])["targets"]) == {
            "clean[data/a.csv]", "clean[data/b.csv]", "clean[data/c.csv]", "summary"}
    assert not project.exists("summary.txt") and not project.exists("out")


def test_inputs_are_shared_by_reference_not_copied_into_each_point(project):
    blob = os.urandom(1 << 20)
    for i in range(8):
        project.write(f"data/big/part{i}.bin", "")
        (project.root / f"data/big/part{i}.bin").write_bytes(blob[i:] + blob[:i])
    shared_project(project, """
        params:
          train: {lr: 0.1}
        targets:
          train:
            cmd: echo "train ${train.lr}" >> runs.log && cat data/big/*.bin | wc -c > out/n.txt
            deps: [data/big/]
            outs: [out/n.txt]
    """)
    sweep_json(project, "-S", "train.lr=0.1,0.2,0.3,0.4")
    assert len(project.runs()) == 4
    du = subprocess.run(["du", "-sk", str(project.root / ".pipetool" / "sweeps")], capture_output=True, text=True)
    kib = int(du.stdout.split()[0])
    assert kib < 512, f"{kib} KiB for 4 points over an 8 MiB input"


def test_sweep_show_without_any_sweep_and_a_target_named_show(project):
    shared_project(project)
    assert_invalid(project.pt("sweep", "show"), "this project has no recorded sweeps")
    project.pipeline(SHARED.replace("  train:\n", "  show:\n").replace("prep:\n        cmd", "prep:\n        cmd"))
    table = sweep_json(project, "out/model.txt", "-S", "train.lr=0.1,0.2")
    assert set(show_json(project, table["points"][0]["run"])["targets"]) == {"prep", "show"}


# -- callables, the remote cache, Dask, the lock, the API ------------------------------------------

CALLABLES = """
    params:
      train: {lr: 0.1}
    targets:
      prep:
        python: src.steps:prep
        outs: [out/prep.txt]
      train:
        python: src.steps:train
        params: [train]
        deps: [out/prep.txt]
        outs: [out/model.txt]
"""
STEPS = """
from pathlib import Path

from src.helper import scaled


def prep(outs):
    with open("runs.log", "a") as f:
        f.write("prep\\n")
    Path(outs[0]).write_text("p\\n")


def train(lr, deps, outs):
    with open("runs.log", "a") as f:
        f.write(f"train {lr}\\n")
    Path(outs[0]).write_text(Path(deps[0]).read_text() + f"{scaled(lr)}\\n")
"""


def test_callables_import_the_projects_modules_and_hash_as_in_the_project(project):
    project.write("src/__init__.py", "")
    project.write("src/helper.py", "def scaled(x):\n    return x * 10\n")
    project.write("src/steps.py", STEPS)
    shared_project(project, CALLABLES)
    ok(project.pt("run"))
    project.write("runs.log", "")
    table = sweep_json(project, "-S", "train.lr=0.2,0.3")
    assert sorted(project.runs()) == ["train 0.2", "train 0.3"]  # prep's fingerprint is the project's
    for p in table["points"]:
        ws = point_dir(project, table, p["run"])
        assert (ws / "out" / "model.txt").read_text() == f"p\n{p['params']['train.lr'] * 10}\n"
    assert project.read("out/model.txt") == "p\n1.0\n"


def test_points_restore_from_and_upload_to_the_remote_cache(project, tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    shared_project(project)
    first = sweep_json(project, "-S", "train.lr=0.1,0.2", "--remote", str(remote))
    assert sorted(project.runs()) == ["prep", "train 0.1", "train 0.2"]
    assert len(list((remote / "runcache").iterdir())) == 3  # prep once, each train
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("pipeline.yaml", "runs.log"):
        (clone / name).write_text((project.root / name).read_text())
    (clone / "runs.log").write_text("")
    res = ok(project.pt("sweep", "-S", "train.lr=0.1,0.2", "--remote", str(remote), "--json", cwd=clone))
    table = json.loads(res.stdout)
    assert (clone / "runs.log").read_text() == ""  # nothing ran: everything came from the remote
    for p in table["points"]:
        m = json.loads(ok(project.pt("show", p["run"], "--json", cwd=clone)).stdout)
        assert {t["action"] for t in m["targets"].values()} == {"restored"}
        ws = clone / ".pipetool" / "sweeps" / table["id"] / point_id(p["params"])
        assert (ws / "out" / "model.txt").read_text() == f"n=1\nlr={p['params']['train.lr']}\n"
    assert [p["params"] for p in table["points"]] == [p["params"] for p in first["points"]]


def test_a_sweep_waits_for_the_project_or_with_no_wait_exits_3(project):
    shared_project(project, SLOW_POINT)
    project.write("handshake", "")
    proc = project.popen("sweep", "-S", "train.lr=0.3,0.4")
    project.wait_file("handshake")
    res = project.pt("sweep", "-S", "train.lr=0.1,0.2", "--no-wait")
    assert res.returncode == 3, res.stderr
    assert "the project is busy: sweep " in res.stderr
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert json.loads(ok(project.pt("sweep", "show", "--json")).stdout)["status"] == "interrupted"


def test_the_python_api_sweeps_a_mapping_of_choices_and_shows_it(project):
    import pipetool

    shared_project(project)
    result = pipetool.sweep(set={"train.lr": [0.1, 0.3], "train.epochs": 4}, cwd=str(project.root), jobs=2)
    assert (result.status, result.exit_code) == ("succeeded", 0)
    assert [o.status for o in result.points] == ["succeeded", "succeeded"]
    shown = pipetool.sweep_show(cwd=str(project.root), sort="metrics/train.json:acc")
    assert shown["id"] == result.sweep_id and shown["fixed"] == {"train.epochs": 4}
    assert [p["params"] for p in shown["points"]] == [{"train.lr": 0.3}, {"train.lr": 0.1}]
    assert shown["points"][0]["metrics"] == {"metrics/train.json": {"acc": 0.3, "val.loss": 4}}
    again = pipetool.sweep(resume=True, cwd=str(project.root))
    assert again.resumed and again.points == [] and again.exit_code == 0


def test_a_sweep_runs_its_points_on_a_dask_cluster_with_the_shared_work_once(project):
    import logging

    distributed = __import__("pytest").importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    try:
        shared_project(project)
        table = sweep_json(project, "-S", "train.lr=0.1,0.2,0.3", "--executor", "dask", "--scheduler",
                           cluster.scheduler_address)
        assert sorted(project.runs()) == ["prep", "train 0.1", "train 0.2", "train 0.3"]
        for p in table["points"]:
            ws = point_dir(project, table, p["run"])
            assert (ws / "out" / "model.txt").read_text() == f"n=1\nlr={p['params']['train.lr']}\n"
        assert not project.exists("out")
    finally:
        cluster.close()
