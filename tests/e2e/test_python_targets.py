"""Python callable targets (`python: module:function`) through the real command."""
from __future__ import annotations

import json

from .support import assert_invalid, ok, status_json

PIPELINE = """
    params:
      train: {lr: 0.01, epochs: 3}
      other: {seed: 7}
    targets:
      prep:
        cmd: echo prep >> runs.log && cat in/a.txt > out/features.txt
        deps: [in/a.txt]
        outs: [out/features.txt]
      train:
        python: src.m:f
        params: [train.lr, train.epochs]
        deps: [out/features.txt]
        outs: [out/model.json, out/extra.txt]
"""

MODULE = '''
import json
import os
import pathlib


def helper(x):
    return x * 2


def f(lr, epochs, deps, outs, params):
    with open("runs.log", "a") as log:
        log.write("train\\n")
    assert all(isinstance(p, pathlib.Path) for p in deps + outs), (deps, outs)
    assert not any(p.is_absolute() for p in deps + outs)
    data = {
        "lr": lr, "epochs": epochs, "params": params,
        "deps": [str(p) for p in deps], "outs": [str(p) for p in outs],
        "features": deps[0].read_text(), "cwd": os.getcwd(), "double": helper(epochs),
        "env_target": os.environ.get("PIPETOOL_TARGET"),
        "env_params": json.load(open(os.environ["PIPETOOL_PARAMS"])),
    }
    outs[0].write_text(json.dumps(data))
    outs[1].write_text("extra\\n")
'''


def _setup(project):
    project.write("in/a.txt", "alpha\n")
    project.write("src/__init__.py", "")
    project.write("src/m.py", MODULE, dedent=False)
    project.pipeline(PIPELINE)


def test_python_callable_gets_kwargs_by_signature(project, pt):
    _setup(project)
    ok(pt("run"))
    assert project.runs() == ["prep", "train"]
    data = json.loads(project.read("out/model.json"))
    assert data["lr"] == 0.01 and data["epochs"] == 3
    assert data["params"] == {"train": {"lr": 0.01, "epochs": 3}}
    assert data["deps"] == ["out/features.txt"]
    assert data["outs"] == ["out/model.json", "out/extra.txt"]
    assert data["features"] == "alpha\n"
    assert data["double"] == 6
    assert data["env_target"] == "train"
    assert data["env_params"] == {"train": {"lr": 0.01, "epochs": 3}, "other": {"seed": 7}}
    import os
    assert os.path.realpath(data["cwd"]) == os.path.realpath(project.root)


def test_python_callable_second_run_does_nothing(project, pt):
    _setup(project)
    ok(pt("run"))
    ok(pt("run"))
    assert project.runs() == ["prep", "train"]
    ok(pt("status", "--check"))


def test_python_callable_override_reaches_kwargs(project, pt):
    _setup(project)
    ok(pt("run"))
    ok(pt("run", "-S", "train.lr=0.5"))
    assert project.runs() == ["prep", "train", "train"]
    assert json.loads(project.read("out/model.json"))["lr"] == 0.5


def test_editing_callable_module_reruns_it(project, pt):
    _setup(project)
    ok(pt("run"))
    project.clear_runs()
    project.write("src/m.py", MODULE.replace('"extra\\n"', '"extra 2\\n"'), dedent=False)
    data = status_json(project)["targets"]
    assert data["train"]["state"] == "stale"
    assert any(r.startswith("code changed") and "src.m:f" in r for r in data["train"]["reasons"]), data
    assert data["prep"]["state"] == "fresh"
    ok(pt("run"))
    assert project.runs() == ["train"]
    assert project.read("out/extra.txt") == "extra 2\n"


def test_editing_helper_the_callable_uses_reruns_it(project, pt):
    _setup(project)
    ok(pt("run"))
    project.clear_runs()
    project.write("src/m.py", MODULE.replace("return x * 2", "return x * 3"), dedent=False)
    ok(pt("run"))
    assert project.runs() == ["train"]
    assert json.loads(project.read("out/model.json"))["double"] == 9


def test_comment_only_edit_of_callable_does_not_rerun(project, pt):
    _setup(project)
    ok(pt("run"))
    project.clear_runs()
    project.write("src/m.py", "# a new comment\n" + MODULE.replace(
        "def f(lr, epochs, deps, outs, params):", "def f(lr, epochs, deps, outs, params):  # trailing\n    \"\"\"Doc.\"\"\""),
        dedent=False)
    ok(pt("run"))
    assert project.runs() == []


def test_unmatched_required_parameter_exit_2_before_anything_runs(project, pt):
    _setup(project)
    project.write("src/m.py", MODULE.replace("def f(lr, epochs, deps, outs, params):",
                                             "def f(lr, epochs, deps, outs, params, momentum):"), dedent=False)
    assert_invalid(pt("run"), "momentum", "src.m:f", project=project)
    assert not project.exists("out/features.txt")


def test_optional_unmatched_parameter_uses_its_default(project, pt):
    _setup(project)
    project.write("src/m.py", MODULE.replace("def f(lr, epochs, deps, outs, params):",
                                             "def f(lr, epochs, deps, outs, params, momentum=0.9):"), dedent=False)
    ok(pt("run"))
    assert project.runs() == ["prep", "train"]


def test_missing_callable_exit_2(project, pt):
    _setup(project)
    project.pipeline(PIPELINE.replace("src.m:f", "src.m:nope"))
    assert_invalid(pt("run"), "src.m:nope", project=project)


def test_callable_exception_exit_1_traceback_tail_shown(project, pt):
    _setup(project)
    project.write("src/m.py", MODULE.replace('    outs[0].write_text(json.dumps(data))',
                                             '    raise ValueError("boom-xyz-42")'), dedent=False)
    res = pt("run")
    assert res.returncode == 1, res.stderr
    assert "ValueError" in res.stderr and "boom-xyz-42" in res.stderr, res.stderr
    assert project.runs() == ["prep", "train"]
    data = status_json(project)["targets"]
    assert data["prep"]["state"] == "fresh"
    assert data["train"]["state"] == "stale"  # not recorded as built


def test_callable_exception_then_fix_reruns_only_it(project, pt):
    _setup(project)
    project.write("src/m.py", MODULE.replace('    outs[0].write_text(json.dumps(data))',
                                             '    raise ValueError("boom")'), dedent=False)
    ok(pt("run"), 1)
    project.write("src/m.py", MODULE, dedent=False)
    ok(pt("run"))
    assert project.runs() == ["prep", "train", "train"]


def test_python_target_ctx_argument(project, pt):
    project.write("src/__init__.py", "")
    project.write("src/c.py", '''
        def g(ctx, outs):
            outs[0].write_text(f"{ctx.target}\\n{ctx.run_id}\\n")
            ctx.logger.info("hello from ctx")
    ''')
    project.pipeline("""
        targets:
          withctx:
            python: src.c:g
            outs: [out/ctx.txt]
    """)
    res = ok(pt("run"))
    target, run_id = project.read("out/ctx.txt").splitlines()
    assert target == "withctx"
    assert run_id and run_id in res.stderr


def test_editing_helper_in_another_project_module_reruns_callable(project, pt):
    project.write("src/__init__.py", "")
    project.write("src/util.py", "def scale(x):\n    return x * 2\n", dedent=False)
    project.write("src/job.py", '''
        from src.util import scale


        def go(outs):
            with open("runs.log", "a") as log:
                log.write("go\\n")
            outs[0].write_text(str(scale(21)))
    ''')
    project.pipeline("""
        targets:
          go:
            python: src.job:go
            outs: [out/go.txt]
    """)
    ok(pt("run"))
    assert project.read("out/go.txt") == "42"
    project.write("src/util.py", "def scale(x):\n    return x * 3\n", dedent=False)
    data = status_json(project)["targets"]
    assert data["go"]["state"] == "stale", data
    ok(pt("run"))
    assert project.runs() == ["go", "go"]
    assert project.read("out/go.txt") == "63"
