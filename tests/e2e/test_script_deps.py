"""A `.py` file among a command's deps counts by its normalized AST (SPEC §9);
`{path: x.py, hash: bytes}` keeps byte hashing."""
from __future__ import annotations

import json

from .support import ok, status_json

SCRIPT = '''import sys


def main(path):
    with open(path) as f:
        return f.read().upper()


print(main(sys.argv[1]))
'''

SCRIPT_RESTYLED = '''"""Upper-case a file."""
import sys  # for argv


def main( path ):
    """Read it."""

    with open(path) as f:   # text
        return (f.read()
                .upper())


print(main(sys.argv[1]))
'''


def _pipeline(project, dep: str = "scripts/prep.py") -> None:
    project.pipeline(f"""
        targets:
          prep:
            cmd: echo prep >> runs.log && cat in/a.txt > out/a.txt
            deps: [{dep}, in/a.txt]
            outs: [out/a.txt]
          after:
            cmd: echo after >> runs.log && cat out/a.txt > out/b.txt
            deps: [out/a.txt]
            outs: [out/b.txt]
        """)


def _setup(project, pt, dep: str = "scripts/prep.py") -> None:
    project.write("in/a.txt", "alpha\n")
    project.write("scripts/prep.py", SCRIPT, dedent=False)
    _pipeline(project, dep)
    ok(pt("run"))
    assert project.runs() == ["prep", "after"]
    project.clear_runs()


def test_comment_docstring_and_formatting_edits_of_a_script_dep_rerun_nothing(project, pt):
    _setup(project, pt)
    project.write("scripts/prep.py", SCRIPT_RESTYLED, dedent=False)
    ok(pt("status", "--check"))
    ok(pt("run"))
    assert project.runs() == []


def test_a_code_edit_of_a_script_dep_reruns(project, pt):
    _setup(project, pt)
    project.write("scripts/prep.py", SCRIPT.replace(".upper()", ".lower()"), dedent=False)
    data = status_json(project)["targets"]
    assert data["prep"] == {"state": "stale", "reasons": ["dep changed: scripts/prep.py"]}, data
    ok(pt("run"))
    assert project.runs() == ["prep"]  # its out came out the same: early cutoff


def test_hash_bytes_opts_a_script_out_of_ast_hashing(project, pt):
    _setup(project, pt, "{path: scripts/prep.py, hash: bytes}")
    project.write("scripts/prep.py", "# only a comment more\n" + SCRIPT, dedent=False)
    data = status_json(project)["targets"]
    assert data["prep"] == {"state": "stale", "reasons": ["dep changed: scripts/prep.py"]}, data
    ok(pt("run"))
    assert project.runs() == ["prep"]


def test_switching_a_script_between_bytes_and_ast_hashing_reruns_once(project, pt):
    _setup(project, pt)
    _pipeline(project, "{path: scripts/prep.py, hash: bytes}")
    ok(pt("run"))
    assert project.runs() == ["prep"]
    ok(pt("run"))
    assert project.runs() == ["prep"]


def test_a_script_dep_with_a_syntax_error_is_hashed_by_its_bytes(project, pt):
    project.write("in/a.txt", "alpha\n")
    project.write("scripts/prep.py", "def broken(:\n", dedent=False)
    _pipeline(project)
    ok(pt("run"))
    assert project.runs() == ["prep", "after"]
    project.write("scripts/prep.py", "def broken(:\n# a comment counts: the file has no AST\n", dedent=False)
    ok(pt("run"))
    assert project.runs() == ["prep", "after", "prep"]
    # Fixed: now it parses, so it is judged by its AST from here on.
    project.write("scripts/prep.py", SCRIPT, dedent=False)
    ok(pt("run"))
    project.write("scripts/prep.py", SCRIPT_RESTYLED, dedent=False)
    ok(pt("run"))
    assert project.runs() == ["prep", "after", "prep", "prep"]


def test_a_py_file_inside_a_folder_dep_counts_by_bytes(project, pt):
    project.write("in/a.txt", "alpha\n")
    project.write("scripts/prep.py", SCRIPT, dedent=False)
    _pipeline(project, "scripts/")
    ok(pt("run"))
    project.write("scripts/prep.py", SCRIPT_RESTYLED, dedent=False)
    ok(pt("run"))
    assert project.runs() == ["prep", "after", "prep"]


def test_the_lock_records_the_scripts_ast_digest(project, pt):
    _setup(project, pt)
    lock = json.loads(project.read("pipetool.lock"))
    deps = lock["targets"]["prep"]["deps"]
    assert deps["scripts/prep.py"].startswith("ast:")
    assert not deps["in/a.txt"].startswith("ast:")
