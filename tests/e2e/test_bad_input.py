"""Bad input: exit 2, one paragraph naming the place or the key, no traceback, nothing run."""
from __future__ import annotations

import re

import pytest

from .support import assert_invalid, ok

GOOD = """
  good:
    cmd: echo good >> runs.log && echo ok > out/good.txt
    outs: [out/good.txt]
"""


def pipeline_with(project, targets_yaml: str, top: str = "") -> None:
    """A pipeline with a valid `good` target (which would write runs.log) plus `targets_yaml`."""
    project.write("in/a.txt", "alpha\n")
    text = top + "targets:\n" + GOOD.strip("\n") + "\n" + targets_yaml.strip("\n") + "\n"
    project.write("pipeline.yaml", text, dedent=False)


LOC = re.compile(r"pipeline\.yaml:(\d+):(\d+)")


def location(res) -> tuple[int, int]:
    m = LOC.search(res.stderr)
    assert m, f"no pipeline.yaml:LINE:COL in:\n{res.stderr}"
    return int(m.group(1)), int(m.group(2))


def test_malformed_yaml_exit_2_names_line_and_column(project, pt):
    pipeline_with(project, """
  bad:
    cmd: [unclosed
    outs: [out/bad.txt]
""")
    res = pt("run")
    assert_invalid(res, "pipeline.yaml", project=project)
    line, _ = location(res)
    assert 5 <= line <= 7, res.stderr


def test_malformed_yaml_tab_indentation_exit_2(project, pt):
    project.write("pipeline.yaml", "targets:\n\tgood:\n\t\tcmd: echo x >> runs.log\n", dedent=False)
    res = pt("status")
    assert_invalid(res, "pipeline.yaml", project=project)
    location(res)


def test_unknown_field_exit_2_names_key_and_place(project, pt):
    pipeline_with(project, """
  bad:
    cmd: echo bad >> runs.log && echo x > out/bad.txt
    outz: [out/bad.txt]
""")
    res = pt("run")
    assert_invalid(res, "outz", project=project)
    assert location(res)[0] == 7, res.stderr


def test_unknown_top_level_field_exit_2(project, pt):
    pipeline_with(project, "", top="parms:\n  a: 1\n")
    res = pt("run")
    assert_invalid(res, "parms", project=project)
    assert location(res)[0] == 1


def test_wrong_type_exit_2_names_key(project, pt):
    pipeline_with(project, """
  bad:
    cmd: echo bad >> runs.log && echo x > out/bad.txt
    outs: out/bad.txt
    always: "sometimes"
""")
    res = pt("run")
    assert_invalid(res, "targets.bad.outs must be a list", "targets.bad.always must be boolean",
                   project=project)  # every violation is listed
    location(res)


def test_deps_not_a_list_exit_2(project, pt):
    pipeline_with(project, """
  bad:
    cmd: echo bad >> runs.log && echo x > out/bad.txt
    deps: 5
    outs: [out/bad.txt]
""")
    res = pt("run")
    assert_invalid(res, "deps", project=project)
    assert location(res)[0] == 7, res.stderr


def test_both_cmd_and_python_exit_2(project, pt):
    pipeline_with(project, """
  bad:
    cmd: echo bad >> runs.log
    python: src.m:f
    outs: [out/bad.txt]
""")
    res = pt("run")
    assert_invalid(res, "bad", project=project)
    assert "cmd" in res.stderr and "python" in res.stderr, res.stderr
    location(res)


def test_neither_cmd_nor_python_exit_2(project, pt):
    pipeline_with(project, """
  bad:
    outs: [out/bad.txt]
""")
    res = pt("run")
    assert_invalid(res, "bad", project=project)
    assert "cmd" in res.stderr and "python" in res.stderr, res.stderr


@pytest.mark.parametrize("path", ["../outside.txt", "in/../../outside.txt", "/etc/hostname"])
def test_dep_path_escaping_root_exit_2(project, pt, path):
    pipeline_with(project, f"""
  bad:
    cmd: echo bad >> runs.log && echo x > out/bad.txt
    deps: ["{path}"]
    outs: [out/bad.txt]
""")
    res = pt("run")
    assert_invalid(res, path, project=project)
    location(res)


def test_out_path_escaping_root_exit_2(project, pt):
    pipeline_with(project, """
  bad:
    cmd: echo bad >> runs.log && echo x > ../escaped.txt
    outs: [../escaped.txt]
""")
    res = pt("run")
    assert_invalid(res, "../escaped.txt", project=project)
    assert not (project.root.parent / "escaped.txt").exists()


def test_duplicate_outs_exit_2_names_the_out(project, pt):
    pipeline_with(project, """
  one:
    cmd: echo one >> runs.log && echo 1 > out/same.txt
    outs: [out/same.txt]
  two:
    cmd: echo two >> runs.log && echo 2 > out/same.txt
    outs: [out/same.txt]
""")
    res = pt("run")
    assert_invalid(res, "out/same.txt", project=project)
    assert "one" in res.stderr and "two" in res.stderr, res.stderr


def test_nested_outs_of_two_targets_exit_2(project, pt):
    pipeline_with(project, """
  one:
    cmd: echo one >> runs.log && mkdir -p out/dir && echo 1 > out/dir/a.txt
    outs: [out/dir/]
  two:
    cmd: echo two >> runs.log && echo 2 > out/dir/b.txt
    outs: [out/dir/b.txt]
""")
    res = pt("run")
    assert_invalid(res, "out/dir", project=project)


def test_missing_dep_no_target_produces_exit_2(project, pt):
    pipeline_with(project, """
  bad:
    cmd: echo bad >> runs.log && cat data/nope.csv > out/bad.txt
    deps: [data/nope.csv]
    outs: [out/bad.txt]
""")
    res = pt("run")
    assert_invalid(res, "data/nope.csv", project=project)


def test_unknown_target_on_command_line_exit_2(project, pt):
    pipeline_with(project, "")
    res = pt("run", "goood")
    assert_invalid(res, "goood", project=project)
    assert "good" in res.stderr.replace("goood", "")  # suggests the close name


def test_unknown_target_in_status_exit_2(project, pt):
    pipeline_with(project, "")
    assert_invalid(pt("status", "out/nope.txt"), "out/nope.txt", project=project)


def test_cycle_names_every_target_on_it(project, pt):
    pipeline_with(project, """
  alpha:
    cmd: echo alpha >> runs.log && cat out/g.txt > out/a.txt
    deps: [out/g.txt]
    outs: [out/a.txt]
  beta:
    cmd: echo beta >> runs.log && cat out/a.txt > out/b.txt
    deps: [out/a.txt]
    outs: [out/b.txt]
  gamma:
    cmd: echo gamma >> runs.log && cat out/b.txt > out/g.txt
    deps: [out/b.txt]
    outs: [out/g.txt]
""")
    res = pt("run")
    assert_invalid(res, "alpha", "beta", "gamma", project=project)
    assert "cycle" in res.stderr.lower()
    assert "good" not in res.stderr.split("cycle", 1)[-1], res.stderr  # only the cycle's members


def test_cycle_through_needs_exit_2(project, pt):
    pipeline_with(project, """
  p:
    cmd: echo p >> runs.log && echo p > out/p.txt
    outs: [out/p.txt]
    needs: [q]
  q:
    cmd: echo q >> runs.log && echo q > out/q.txt
    outs: [out/q.txt]
    needs: [p]
""")
    assert_invalid(pt("run"), "p", "q", project=project)


def test_needs_unknown_target_exit_2(project, pt):
    pipeline_with(project, """
  p:
    cmd: echo p >> runs.log && echo p > out/p.txt
    outs: [out/p.txt]
    needs: [nosuch]
""")
    assert_invalid(pt("run"), "nosuch", project=project)


def test_dash_C_nonexistent_dir_exit_2(project, pt):
    res = pt("-C", str(project.root / "nope"), "run")
    assert_invalid(res, "nope", project=project)


def test_no_pipeline_file_exit_2(project, pt):
    res = pt("run")
    assert_invalid(res, "pipeline.yaml", project=project)


def test_dash_f_missing_file_exit_2(project, pt):
    pipeline_with(project, "")
    assert_invalid(pt("-f", "other.yaml", "run"), "other.yaml", project=project)


def test_unsupported_version_exit_2(project, pt):
    pipeline_with(project, "", top="version: 2\n")
    assert_invalid(pt("run"), "version", project=project)


def test_unknown_option_exit_2(project, pt):
    pipeline_with(project, "")
    res = pt("run", "--frobnicate")
    assert_invalid(res, "--frobnicate", project=project, one_paragraph=False)


def test_bad_jobs_value_exit_2(project, pt):
    pipeline_with(project, "")
    assert_invalid(pt("run", "-j", "0"), "--jobs", project=project, one_paragraph=False)


def test_valid_pipeline_beside_bad_one_still_works(project, pt):
    # sanity check for the fixture: the `good` target alone runs
    pipeline_with(project, "")
    ok(pt("run"))
    assert project.runs() == ["good"]
