"""What counts as a code change, hardened (SPEC §9): imports inside a function body are
followed as module-level ones are, and what a module does to its constants at import time
(`CFG["lr"] = 0.1`, `CFG.update(...)`, a `global` set by a function called at module level)
counts toward them. Each edit below changes the target's output; `status` must say stale,
name what changed, and `run` must rerun exactly that target."""
from __future__ import annotations

from .support import ok, status_json

PIPELINE = """
    targets:
      train:
        python: src.train:train
        outs: [out/train.txt]
      other:
        python: src.other:go
        outs: [out/other.txt]
"""

UTIL = '''
def helper(x):
    return x * 2


def unrelated():
    return 0
'''

OTHER = '''
def go(outs):
    with open("runs.log", "a") as log:
        log.write("other\\n")
    outs[0].write_text("other")
'''


def _train(body: str, top: str = "") -> str:
    """src/train.py: `top` at module level, then `train` whose body computes `value`."""
    lines = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return f'''{top}

def train(outs):
    with open("runs.log", "a") as log:
        log.write("train\\n")
{lines}
    outs[0].write_text(str(value))
'''


def _setup(project, pt, train: str, expect: str, **files: str) -> None:
    project.write("src/__init__.py", "")
    project.write("src/util.py", UTIL, dedent=False)
    project.write("src/other.py", OTHER, dedent=False)
    for rel, text in files.items():
        project.write(f"src/{rel}.py", text, dedent=False)
    project.write("src/train.py", train, dedent=False)
    project.pipeline(PIPELINE)
    ok(pt("run"))
    assert sorted(project.runs()) == ["other", "train"]
    assert project.read("out/train.txt") == expect
    ok(pt("status", "--check"))
    project.clear_runs()


def _stale_then_rerun(project, pt, reason: str, expect: str) -> None:
    """The one stale verdict with its reason; `run` reruns exactly `train`."""
    targets = status_json(project)["targets"]
    got = {n: (v["state"], v["reasons"]) for n, v in targets.items()}
    assert got == {"train": ("stale", [f"code changed: {reason}"]), "other": ("fresh", [])}, got
    ok(pt("run"))
    assert project.runs() == ["train"]
    assert project.read("out/train.txt") == expect
    ok(pt("status", "--check"))


def _edit_helper(project) -> None:
    project.write("src/util.py", UTIL.replace("return x * 2", "return x * 3"), dedent=False)


def test_a_helper_imported_inside_the_function_body(project, pt):
    _setup(project, pt, _train("from src.util import helper\nvalue = helper(5)"), "10")
    _edit_helper(project)
    _stale_then_rerun(project, pt, "src.train:train via src.util:helper", "15")


def test_a_module_imported_as_an_alias_inside_the_function_body(project, pt):
    _setup(project, pt, _train("import src.util as u\nvalue = u.helper(5)"), "10")
    _edit_helper(project)
    _stale_then_rerun(project, pt, "src.train:train via src.util:helper", "15")


def test_a_dotted_import_inside_a_nested_block_of_the_body(project, pt):
    body = "if outs:\n    import src.util\nvalue = src.util.helper(5)"
    _setup(project, pt, _train(body), "10")
    _edit_helper(project)
    _stale_then_rerun(project, pt, "src.train:train via src.util:helper", "15")


def test_a_relative_import_inside_the_body_of_a_package_module(project, pt):
    _setup(project, pt, _train("from .util import helper as h\nvalue = h(5)"), "10")
    _edit_helper(project)
    _stale_then_rerun(project, pt, "src.train:train via src.util:helper", "15")


def test_an_import_inside_a_helper_that_the_target_calls(project, pt):
    steps = "def step(x):\n    from src.util import helper\n    return helper(x) + 1\n"
    _setup(project, pt, _train("value = step(5)", "from src.steps import step\n"), "11", steps=steps)
    _edit_helper(project)
    _stale_then_rerun(project, pt, "src.train:train via src.util:helper", "16")


def test_a_constant_reached_through_a_local_import(project, pt):
    _setup(project, pt, _train("from src.settings import LR\nvalue = LR"), "0.1",
           settings="LR = 0.1\n")
    project.write("src/settings.py", "LR = 0.2\n", dedent=False)
    _stale_then_rerun(project, pt, "src.train:train via src.settings:LR", "0.2")


def test_a_module_level_item_assignment_to_a_constant(project, pt):
    top = 'CFG = {"lr": 0.01}\nCFG["lr"] = 0.1\n'
    _setup(project, pt, _train('value = CFG["lr"]', top), "0.1")
    project.write("src/train.py", _train('value = CFG["lr"]', top.replace("= 0.1", "= 0.2")), dedent=False)
    _stale_then_rerun(project, pt, "src.train:train via src.train:CFG", "0.2")


def test_a_module_level_method_call_on_a_constant(project, pt):
    top = 'CFG = {"lr": 0.01}\nCFG.update(lr=0.1)\n'
    _setup(project, pt, _train('value = CFG["lr"]', top), "0.1")
    project.write("src/train.py", _train('value = CFG["lr"]', top.replace("lr=0.1", "lr=0.3")), dedent=False)
    _stale_then_rerun(project, pt, "src.train:train via src.train:CFG", "0.3")


def test_a_global_set_by_a_function_called_at_import_time(project, pt):
    top = "LR = 0.0\n\n\ndef _init():\n    global LR\n    LR = 0.1\n\n\n_init()\n"
    _setup(project, pt, _train("value = LR", top), "0.1")
    project.write("src/train.py", _train("value = LR", top.replace("LR = 0.1", "LR = 0.4")), dedent=False)
    _stale_then_rerun(project, pt, "src.train:train via src.train:LR", "0.4")


def test_editing_a_module_the_target_does_not_reach_leaves_it_fresh(project, pt):
    # `other_use` imports src.extra locally; `train` does not call it, and a local import
    # binds its name in that one function only.
    top = "def other_use():\n    from src.extra import thing\n    return thing()\n"
    body = "from src.util import helper\nvalue = helper(5)"
    _setup(project, pt, _train(body, top), "10", extra="def thing():\n    return 1\n")
    project.write("src/extra.py", "def thing():\n    return 2\n", dedent=False)
    project.write("src/util.py", UTIL.replace("return 0", "return 1"), dedent=False)
    ok(pt("status", "--check"))
    ok(pt("run"))
    assert project.runs() == []
