"""pipetool.lock, fresh clones, `dag`, `--version`, `--help`, -C and -f."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from .support import Project, chain, ok, status_json


def _mixed(project: Project) -> None:
    """Commands, a Python callable, params, a directory dep: what a lock has to cover."""
    project.write("data/raw/a.csv", "1,2\n")
    project.write("data/raw/b.csv", "3,4\n")
    project.write("src/__init__.py", "")
    project.write("src/train.py", '''
        def train(lr, deps, outs):
            with open("runs.log", "a") as log:
                log.write("train\\n")
            outs[0].write_text(f"lr={lr} rows={len(deps[0].read_text().splitlines())}\\n")
    ''')
    project.pipeline("""
        params:
          prepare: {seed: 42}
          train: {lr: 0.01}
        targets:
          prepare:
            cmd: echo prepare >> runs.log && cat data/raw/*.csv > out/prepared.csv && echo ${prepare.seed} >> out/prepared.csv
            deps: [data/raw/]
            outs: [out/prepared.csv]
          train:
            python: src.train:train
            params: [train.lr]
            deps: [out/prepared.csv]
            outs: [out/model.txt]
    """)


def test_lock_written_sorted_and_deterministic_across_folders(tmp_path):
    texts = []
    for name in ("one", "other-place"):
        proj = Project(tmp_path / name / "deeper")
        proj.root.mkdir(parents=True)
        _mixed(proj)
        ok(proj.pt("run", "-j", "1" if name == "one" else "4"))
        texts.append((proj.root / "pipetool.lock").read_bytes())
    assert texts[0] == texts[1]
    text = texts[0].decode()
    data = json.loads(text)
    assert sorted(data["targets"]) == ["prepare", "train"]
    assert list(data["targets"]) == sorted(data["targets"])
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"  # sorted keys all the way down
    assert str(tmp_path) not in text  # no absolute paths
    for entry in data["targets"].values():
        assert entry["fingerprint"] and entry["outs"]


def test_lock_unchanged_by_a_run_that_does_nothing(project, pt):
    _mixed(project)
    ok(pt("run"))
    before = (project.root / "pipetool.lock").read_bytes()
    mtime = (project.root / "pipetool.lock").stat().st_mtime_ns
    ok(pt("run"))
    assert (project.root / "pipetool.lock").read_bytes() == before
    assert (project.root / "pipetool.lock").stat().st_mtime_ns == mtime


def test_lock_follows_a_rebuild(project, pt):
    _mixed(project)
    ok(pt("run"))
    before = json.loads(project.read("pipetool.lock"))
    ok(pt("run", "-S", "train.lr=0.5"))
    after = json.loads(project.read("pipetool.lock"))
    assert after["targets"]["prepare"] == before["targets"]["prepare"]
    assert after["targets"]["train"]["fingerprint"] != before["targets"]["train"]["fingerprint"]
    assert after["targets"]["train"]["outs"] != before["targets"]["train"]["outs"]


def test_fresh_copy_with_lock_and_outputs_is_up_to_date(project, pt, tmp_path):
    _mixed(project)
    ok(pt("run"))
    clone = Project(tmp_path / "clone")
    shutil.copytree(project.root, clone.root, ignore=shutil.ignore_patterns(".pipetool", "runs.log"))
    assert not (clone.root / ".pipetool").exists()
    res = ok(clone.pt("status", "--check"))
    assert "up to date" in res.stdout
    res = ok(clone.pt("run"))
    assert clone.runs() == []
    assert "nothing to do" in res.stderr


def test_fresh_copy_sees_an_input_change(project, pt, tmp_path):
    _mixed(project)
    ok(pt("run"))
    clone = Project(tmp_path / "clone")
    shutil.copytree(project.root, clone.root, ignore=shutil.ignore_patterns(".pipetool", "runs.log"))
    clone.write("data/raw/b.csv", "3,5\n")
    data = status_json(clone)["targets"]
    assert data["prepare"] == {"state": "stale", "reasons": ["dep changed: data/raw/"]}, data
    assert data["train"]["state"] == "pending"


def test_fresh_copy_without_outputs_rebuilds(project, pt, tmp_path):
    _mixed(project)
    ok(pt("run"))
    clone = Project(tmp_path / "clone")
    shutil.copytree(project.root, clone.root, ignore=shutil.ignore_patterns(".pipetool", "runs.log", "out"))
    data = status_json(clone)["targets"]
    assert "out missing: out/prepared.csv" in data["prepare"]["reasons"]
    ok(clone.pt("run"))
    assert sorted(clone.runs()) == ["prepare", "train"]
    assert clone.read("out/model.txt") == project.read("out/model.txt")


def test_corrupt_lock_in_a_fresh_clone_exit_2_names_it(project, pt):
    chain(project)
    ok(pt("run"))
    shutil.rmtree(project.root / ".pipetool")
    project.write("pipetool.lock", "{not json")
    project.clear_runs()
    for args in (("status",), ("run",)):
        res = pt(*args)
        assert res.returncode == 2, res.stderr
        assert "pipetool.lock" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert project.runs() == []


def test_lock_restored_from_an_older_commit_is_rewritten_by_the_next_run(project, pt):
    # e.g. `git checkout HEAD~ -- pipetool.lock`, a merge, or a stash: the workspace and
    # .pipetool say everything is fresh, so the lock must be brought back in line with them
    chain(project)
    ok(pt("run"))
    old = project.read("pipetool.lock")
    project.write("in/a.txt", "new\n")
    ok(pt("run"))
    current = project.read("pipetool.lock")
    assert current != old
    project.write("pipetool.lock", old, dedent=False)  # newer mtime, older content
    ok(pt("run"))
    assert project.read("pipetool.lock") == current


def test_corrupt_lock_is_rewritten_by_the_next_run(project, pt):
    chain(project)
    ok(pt("run"))
    good = project.read("pipetool.lock")
    project.write("pipetool.lock", "{not json")
    ok(pt("run"))
    assert project.read("pipetool.lock") == good


# -- dag ----------------------------------------------------------------------------------

def test_dag_ascii(project, pt):
    chain(project)
    res = ok(pt("dag"))
    lines = res.stdout.splitlines()
    assert any(re.match(r"^b\s+<- a$", ln) for ln in lines), res.stdout
    assert any(re.match(r"^c\s+<- b$", ln) for ln in lines), res.stdout
    assert any(ln.strip() == "x" for ln in lines), res.stdout
    assert ok(pt("dag", "--format", "ascii")).stdout == res.stdout
    assert project.runs() == [] and not (project.root / "pipetool.lock").exists()


def test_dag_mermaid(project, pt):
    chain(project)
    out = ok(pt("dag", "--format", "mermaid")).stdout
    assert out.splitlines()[0].startswith(("graph", "flowchart"))
    ids = dict(re.findall(r'(\w+)\["([^"]+)"\]', out))
    by_name = {v: k for k, v in ids.items()}
    assert set(by_name) == {"a", "b", "c", "x"}, out
    assert f"{by_name['a']} --> {by_name['b']}" in out
    assert f"{by_name['b']} --> {by_name['c']}" in out
    assert out.count("-->") == 2


def test_dag_dot(project, pt):
    chain(project)
    out = ok(pt("dag", "--format", "dot")).stdout
    assert out.startswith("digraph")
    assert '"a" -> "b"' in out and '"b" -> "c"' in out
    assert out.count("->") == 2
    assert out.rstrip().endswith("}")


def test_dag_unknown_format_exit_2(project, pt):
    chain(project)
    res = pt("dag", "--format", "svg")
    assert res.returncode == 2 and "svg" in res.stderr and "Traceback" not in res.stderr


def test_dag_of_invalid_pipeline_exit_2(project, pt):
    project.pipeline("targets: [")
    res = pt("dag")
    assert res.returncode == 2 and "pipeline.yaml" in res.stderr and "Traceback" not in res.stderr


# -- --version, --help, -C, -f -----------------------------------------------------------

def test_version(pt):
    res = ok(pt("--version"))
    assert re.fullmatch(r"pipetool \d+\.\d+\.\d+\S*\n", res.stdout), res.stdout


def test_version_matches_package_metadata(pt):
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("pipetool")
    except PackageNotFoundError:
        pytest.skip("pipetool not installed in this interpreter")
    assert ok(pt("--version")).stdout.strip() == f"pipetool {v}"


def test_help_top_level(pt):
    res = ok(pt("--help"))
    for cmd in ("run", "status", "dag"):
        assert cmd in res.stdout


def test_no_arguments_shows_help(pt):
    res = pt()
    assert res.returncode in (0, 2)
    assert "run" in res.stdout + res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("command", ["run", "status", "dag"])
def test_help_of_every_command_shows_an_example(pt, command):
    res = ok(pt(command, "--help"))
    assert "Example" in res.stdout, res.stdout
    assert f"pipetool {command}" in res.stdout
    assert ok(pt(command, "-h")).stdout == res.stdout


def test_help_run_lists_its_options(pt):
    out = ok(pt("run", "--help")).stdout
    for opt in ("-j", "--jobs", "-S", "--set", "-n", "--dry-run", "--force", "-k", "--keep-going",
                "--no-wait", "--json"):
        assert opt in out, opt


def test_dash_C_runs_as_if_started_there(project, pt, tmp_path):
    chain(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok(pt("-C", str(project.root), "run", cwd=elsewhere))
    assert sorted(project.runs()) == ["a", "b", "c", "x"]
    assert not (elsewhere / "runs.log").exists()
    res = ok(pt("-C", str(project.root), "status", "--check", cwd=elsewhere))
    assert "up to date" in res.stdout


def test_pipeline_found_from_a_subfolder(project, pt):
    chain(project)
    sub = project.root / "in"
    ok(pt("run", "b", cwd=sub))
    assert sorted(project.runs()) == ["a", "b"]
    assert project.exists("out/b.txt") and not (sub / "out").exists()


def test_dash_f_other_pipeline_file(project, pt):
    chain(project)
    (project.root / "pipeline.yaml").rename(project.root / "other.yaml")
    ok(pt("-f", "other.yaml", "run", "a"))
    assert project.runs() == ["a"]


def test_run_json_output(project, pt):
    chain(project)
    res = ok(pt("run", "--json"))
    data = json.loads(res.stdout)
    assert data["status"] == "succeeded" and data["run_id"]
    assert {n: t["action"] for n, t in data["targets"].items()} == {
        "a": "built", "b": "built", "c": "built", "x": "built"}
    res = ok(pt("run", "--json"))
    data = json.loads(res.stdout)
    assert {t["action"] for t in data["targets"].values()} == {"skipped"}


def test_run_json_failed_target(project, pt):
    project.pipeline("""
        targets:
          bad:
            cmd: exit 4
            outs: [out/bad.txt]
          after:
            cmd: cat out/bad.txt > out/after.txt
            deps: [out/bad.txt]
            outs: [out/after.txt]
    """)
    res = pt("run", "--json")
    assert res.returncode == 1
    data = json.loads(res.stdout)
    assert data["status"] == "failed"
    assert data["targets"]["bad"]["action"] == "failed"
    assert data["targets"]["after"]["action"] == "not-run"


def test_paths_with_spaces(project, pt):
    project.write("in dir/my file.txt", "spaced\n")
    project.pipeline("""
        targets:
          sp:
            cmd: echo sp >> runs.log && cat "in dir/my file.txt" > "out dir/res ult.txt"
            deps: ["in dir/my file.txt"]
            outs: ["out dir/res ult.txt"]
    """)
    ok(pt("run"))
    ok(pt("run"))
    assert project.runs() == ["sp"]
    assert (project.root / "out dir/res ult.txt").read_text() == "spaced\n"


def test_unicode_paths_and_output(project, pt):
    project.write("in/données.txt", "é\n")
    project.pipeline("""
        params:
          label: "café ☕"
        targets:
          prep:
            cmd: echo prep >> runs.log && cat in/données.txt > out/résultat.txt && echo ${label} >> out/résultat.txt && echo "✓ done"
            deps: [in/données.txt]
            outs: [out/résultat.txt]
    """)
    ok(pt("run"))
    ok(pt("run", "out/résultat.txt"))
    assert project.runs() == ["prep"]
    assert project.read("out/résultat.txt") == "é\ncafé ☕\n"
    project.write("in/données.txt", "è\n")
    data = status_json(project)
    assert data["targets"]["prep"] == {"state": "stale", "reasons": ["dep changed: in/données.txt"]}


def test_json_outputs_have_no_progress_on_stdout(project, pt):
    chain(project)
    res = ok(pt("run", "--json"))
    json.loads(res.stdout)  # nothing but JSON on stdout
    res = ok(pt("status", "--json"))
    json.loads(res.stdout)
