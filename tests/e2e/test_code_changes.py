"""What counts as a code change of a `python:` target (SPEC §9), through the real command:
the function's normalized AST, the project helpers and constants it reaches, installed
packages by version; comments, docstrings, formatting and unrelated functions do not."""
from __future__ import annotations

import json

import pytest

from .support import ok, status_json

UTIL = '''
FACTOR = 2


def scale(x):
    return x * FACTOR


def unrelated():
    return "unrelated"
'''

JOB = '''
from src.util import scale

EPOCHS = 10
OTHER = 1


def go(outs):
    with open("runs.log", "a") as log:
        log.write("go\\n")
    outs[0].write_text(str(scale(EPOCHS)))


def other():
    return OTHER
'''

# The same code, reformatted, with comments and docstrings.
JOB_RESTYLED = '''
"""The job module."""
# imports
from src.util import (
    scale,
)

EPOCHS = 10    # how many
OTHER = 1


def go(
    outs,
):
    """Write the scaled number of epochs."""
    with open("runs.log", "a") as log:  # count the run
        log.write("go\\n")

    outs[0].write_text(str(scale(EPOCHS)))  # done


def other():
    return OTHER
'''

PIPELINE = """
    targets:
      go:
        python: src.job:go
        outs: [out/go.txt]
      report:
        cmd: echo report >> runs.log && cat out/go.txt > out/report.txt
        deps: [out/go.txt]
        outs: [out/report.txt]
"""


def _setup(project, pt, pipeline: str = PIPELINE):
    project.write("src/__init__.py", "")
    project.write("src/util.py", UTIL, dedent=False)
    project.write("src/job.py", JOB, dedent=False)
    project.pipeline(pipeline)
    ok(pt("run"))
    assert project.runs() == ["go", "report"]
    assert project.read("out/report.txt") == "20"
    project.clear_runs()


def _reasons(project) -> dict[str, tuple[str, list[str]]]:
    return {n: (v["state"], v["reasons"]) for n, v in status_json(project)["targets"].items()}


def test_comment_docstring_and_formatting_edits_rerun_nothing(project, pt):
    _setup(project, pt)
    project.write("src/job.py", JOB_RESTYLED, dedent=False)
    project.write("src/util.py", '"""Helpers."""\n\n# the factor\nFACTOR = 2\n\n\ndef scale(x):\n'
                  '    """Scale x."""\n    return (x *\n            FACTOR)  # times\n\n\n'
                  'def unrelated():\n    return "unrelated"\n', dedent=False)
    ok(pt("status", "--check"))
    ok(pt("run"))
    assert project.runs() == []


def test_an_edit_to_a_helper_in_another_module_reruns_the_caller_and_downstream(project, pt):
    _setup(project, pt)
    project.write("src/util.py", UTIL.replace("return x * FACTOR", "return x * FACTOR + 1"), dedent=False)
    status = _reasons(project)
    assert status["go"] == ("stale", ["code changed: src.job:go via src.util:scale"]), status
    assert status["report"][0] == "pending", status
    import pipetool  # the Python API says the same

    assert pipetool.status(cwd=str(project.root)).targets["go"].reasons == \
        ("code changed: src.job:go via src.util:scale",)
    ok(pt("status", "--check"), 1)
    ok(pt("run"))
    assert project.runs() == ["go", "report"]
    assert project.read("out/report.txt") == "21"


def test_a_changed_module_constant_reruns(project, pt):
    _setup(project, pt)
    project.write("src/job.py", JOB.replace("EPOCHS = 10", "EPOCHS = 11"), dedent=False)
    assert _reasons(project)["go"] == ("stale", ["code changed: src.job:go via src.job:EPOCHS"])
    ok(pt("run"))
    assert project.runs() == ["go", "report"]
    assert project.read("out/report.txt") == "22"
    project.clear_runs()
    # A constant of the helper's module, read by the helper.
    project.write("src/util.py", UTIL.replace("FACTOR = 2", "FACTOR = 3"), dedent=False)
    assert _reasons(project)["go"] == ("stale", ["code changed: src.job:go via src.util:FACTOR"])
    ok(pt("run"))
    assert project.runs() == ["go", "report"]
    assert project.read("out/report.txt") == "33"


def test_a_constant_written_otherwise_with_the_same_value_reruns_nothing(project, pt):
    _setup(project, pt)
    project.write("src/job.py", JOB.replace("EPOCHS = 10", "EPOCHS = 0xA  # hex"), dedent=False)
    ok(pt("run"))
    assert project.runs() == []


def test_unrelated_function_and_constant_edits_rerun_nothing(project, pt):
    _setup(project, pt)
    project.write("src/job.py", JOB.replace("return OTHER", "return OTHER + 1").replace("OTHER = 1", "OTHER = 5"),
                  dedent=False)
    project.write("src/util.py", UTIL.replace('return "unrelated"', 'return "changed"'), dedent=False)
    ok(pt("status", "--check"))
    ok(pt("run"))
    assert project.runs() == []


def test_an_edit_of_the_function_itself_names_it(project, pt):
    _setup(project, pt)
    project.write("src/job.py", JOB.replace("str(scale(EPOCHS))", "str(scale(EPOCHS) * 10)"), dedent=False)
    assert _reasons(project)["go"] == ("stale", ["code changed: src.job:go"])
    ok(pt("run"))
    assert project.runs() == ["go", "report"]
    assert project.read("out/report.txt") == "200"


def test_a_new_helper_called_from_a_helper_reruns(project, pt):
    _setup(project, pt)
    project.write("src/extra.py", "def bump(x):\n    return x + 100\n", dedent=False)
    project.write("src/util.py", "from src.extra import bump\n" + UTIL.replace("return x * FACTOR",
                                                                             "return bump(x * FACTOR)"),
                  dedent=False)
    assert _reasons(project)["go"] == ("stale", ["code changed: src.job:go via src.util:scale"])
    ok(pt("run"))
    assert project.runs() == ["go", "report"]
    project.clear_runs()
    project.write("src/extra.py", "def bump(x):\n    return x + 200\n", dedent=False)
    assert _reasons(project)["go"] == ("stale", ["code changed: src.job:go via src.extra:bump"])
    ok(pt("run"))
    assert project.runs() == ["go", "report"]
    assert project.read("out/report.txt") == "220"


def test_code_version_pins_the_code_part(project, pt):
    _setup(project, pt, PIPELINE.replace("python: src.job:go", "python: src.job:go\n        code_version: '1'"))
    project.write("src/job.py", JOB.replace("str(scale(EPOCHS))", "str(scale(EPOCHS) * 10)"), dedent=False)
    ok(pt("run"))
    assert project.runs() == []
    project.pipeline(PIPELINE.replace("python: src.job:go", "python: src.job:go\n        code_version: '2'"))
    assert _reasons(project)["go"] == ("stale", ["code_version changed: 1 -> 2"])
    ok(pt("run"))
    assert project.runs() == ["go", "report"]
    assert project.read("out/report.txt") == "200"


def test_the_lock_names_each_function_constant_and_package_behind_the_code(project, pt):
    numpy = pytest.importorskip("numpy")
    project.write("src/__init__.py", "")
    project.write("src/util.py", UTIL, dedent=False)
    project.write("src/job.py", "import numpy as np\n" + JOB.replace("str(scale(EPOCHS))",
                                                                     "str(int(np.int64(scale(EPOCHS))))"),
                  dedent=False)
    project.pipeline(PIPELINE)
    ok(pt("run"))
    files = json.loads(project.read("pipetool.lock"))["targets"]["go"]["code_files"]
    assert set(files) == {"src.job:go", "src.util:scale", "const src.util:FACTOR", "const src.job:EPOCHS",
                          "pkg numpy"}, files
    assert files["pkg numpy"] == numpy.__version__

