"""checks: run after a target succeeds; a failing one fails the target and blocks downstream."""
from __future__ import annotations

import json

from .support import ok

PIPELINE = """
    params: {n: 3}
    targets:
      data:
        cmd: seq ${n} > data.txt && echo data >> runs.log
        outs: [data.txt]
        checks:
          - 'test $(wc -l < data.txt) -ge 3 || { echo "too few rows: $(wc -l < data.txt)"; exit 1; }'
          - {python: src.chk:no_nulls}
      report:
        cmd: cat data.txt > report.txt && echo report >> runs.log
        deps: [data.txt]
        outs: [report.txt]
"""

CHECKS = """
    def no_nulls(outs, n):
        text = outs[0].read_text()
        if "null" in text:
            raise ValueError(f"nulls in {outs[0]} (n={n})")
"""


def setup(project):
    project.write("src/__init__.py", "")
    project.write("src/chk.py", CHECKS)
    project.pipeline(PIPELINE)


def last_manifest(project) -> dict:
    return json.loads(ok(project.pt("runs", "--json")).stdout)[-1]


def test_passing_checks_let_the_target_count_as_built_and_appear_in_the_manifest(project, pt):
    setup(project)
    ok(pt("run"))
    assert project.runs() == ["data", "report"]
    data = last_manifest(project)["targets"]["data"]
    assert data["action"] == "built"
    assert [(c["name"], c["ok"]) for c in data["checks"]] == [
        ('test $(wc -l < data.txt) -ge 3 || { echo "too few rows: $(wc -l < data.txt)"; exit 1; }', True),
        ("src.chk:no_nulls", True)]


def test_a_failing_check_fails_the_target_blocks_downstream_and_shows_its_message(project, pt):
    setup(project)
    res = pt("run", "-S", "n=2")
    assert res.returncode == 1
    assert "too few rows: 2" in res.stderr
    assert project.runs() == ["data"]  # report never ran
    m = last_manifest(project)
    assert m["targets"]["data"]["action"] == "failed"
    assert m["targets"]["report"]["action"] == "not-run"
    failing = [c for c in m["targets"]["data"]["checks"] if not c["ok"]]
    assert len(failing) == 1 and "too few rows: 2" in failing[0]["message"]


def test_a_target_whose_check_failed_is_rerun_next_time_and_not_restored_from_the_cache(project, pt):
    setup(project)
    assert pt("run", "-S", "n=2").returncode == 1
    assert pt("run", "-S", "n=2").returncode == 1  # not recorded as built: it runs again
    assert project.runs() == ["data", "data"]
    assert "stale" in ok(pt("status", "-S", "n=2")).stdout


def test_a_python_check_gets_the_targets_arguments_and_fails_by_raising(project, pt):
    setup(project)
    project.pipeline(PIPELINE.replace("seq ${n} > data.txt", "(seq ${n}; echo null) > data.txt"))
    res = pt("run")
    assert res.returncode == 1
    assert "nulls in data.txt (n=3)" in res.stderr


def test_editing_a_check_reruns_its_target(project, pt):
    setup(project)
    ok(pt("run"))
    project.clear_runs()
    project.write("src/chk.py", CHECKS.replace('"null"', '"NULL"'))
    status = json.loads(ok(pt("status", "--json")).stdout)["targets"]["data"]
    assert status["state"] == "stale" and status["reasons"] == ["checks changed"]
    ok(pt("run"))
    assert project.runs() == ["data"]  # same bytes out: report is cut off early
