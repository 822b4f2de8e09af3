"""`pipetool check`: validate without running; errors exit 2, warnings and notes exit 0."""
from __future__ import annotations

import json


def test_check_of_a_sound_pipeline_exits_0_and_runs_nothing(project, pt):
    project.write("in/a.txt", "a\n")
    project.pipeline("""
        targets:
          a:
            cmd: cat in/a.txt > out/a.txt && echo a >> runs.log
            deps: [in/a.txt]
            outs: [out/a.txt]
          b:
            cmd: cat out/a.txt > out/b.txt && echo b >> runs.log
            deps: [out/a.txt]
            outs: [out/b.txt]
    """)
    res = pt("check")
    assert res.returncode == 0, res.stderr
    assert "0 error(s), 0 warning(s)" in res.stdout
    assert project.runs() == [] and not project.exists("out/a.txt")


def test_check_lists_every_callable_problem_and_exits_2(project, pt):
    project.write("src/__init__.py", "")
    project.write("src/m.py", """
        def fit(lr, outs):
            pass
    """)
    project.pipeline("""
        params: {train: {epochs: 3}}
        targets:
          fit:
            python: src.m:fit
            outs: [model.bin]
          gone:
            python: src.m:missing
            outs: [other.bin]
    """)
    res = pt("check", "--json")
    assert res.returncode == 2
    report = json.loads(res.stdout)
    errors = [f["message"] for f in report["findings"] if f["level"] == "error"]
    assert any("requires parameter 'lr'" in m for m in errors), errors
    assert any("missing" in m for m in errors), errors
    assert report["ok"] is False
    assert "Traceback" not in res.stderr


def test_check_warns_about_a_project_file_a_command_reads_without_declaring(project, pt):
    project.write("src/prep.py", "print(1)\n")
    project.write("src/other.py", "print(2)\n")
    project.pipeline("""
        targets:
          prep:
            cmd: python src/prep.py --helper src/other.py > out.txt
            deps: [src/prep.py]
            outs: [out.txt]
    """)
    res = pt("check")
    assert res.returncode == 0, res.stderr
    assert "src/other.py, which is not a declared dep" in res.stdout
    assert "src/prep.py, which is not" not in res.stdout  # declared: no warning
    assert "1 warning(s)" in res.stdout


def test_check_of_an_invalid_file_is_exit_2_naming_the_place(project, pt):
    project.pipeline("""
        targets:
          a:
            cmd: echo hi
            depz: [x]
    """)
    res = pt("check")
    assert res.returncode == 2
    assert "pipeline.yaml:" in res.stderr and "depz" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_file_a_command_writes_through_a_redirect_is_never_called_an_undeclared_dep(project, pt):
    project.write("src/prep.py", "print(1)\n")
    project.write("in.csv", "x\n")
    for existing in ("log.txt", "logs/x.log", "err.txt", "all.txt", "app.log"):
        project.write(existing, "from an earlier run\n")  # they exist: the case that misled
    project.pipeline("""
        targets:
          prep:
            cmd: python src/prep.py < in.csv > log.txt 2> logs/x.log 2>>err.txt &>all.txt >>app.log 2>&1
            deps: [src/prep.py]
            outs: [out.txt]
    """)
    res = pt("check")
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stdout.splitlines() if line.startswith("warning:")]
    # the input redirect is a read: the only warning
    assert warnings == [("warning: target 'prep': its command mentions in.csv, which is not a declared dep: "
                        "editing it would not rerun the target")]
