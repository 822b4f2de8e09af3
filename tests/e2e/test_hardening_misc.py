"""Smaller hard edges: an out that lost its execute bit, a name that is both a target and
an out, read commands on 10,000 targets."""
from __future__ import annotations

import os
import stat

from .support import ok, status_json


def test_an_out_that_lost_its_execute_bit_is_stale_and_restored_with_it(project):
    project.write("in/src.sh", "echo hi\n")
    project.pipeline("""
        targets:
          tool:
            cmd: echo tool >> runs.log && mkdir -p bin kit && cp in/src.sh bin/tool && chmod +x bin/tool && cp in/src.sh kit/run && chmod +x kit/run
            deps: [in/src.sh]
            outs: [bin/tool, kit/]
    """)
    ok(project.pt("run"))
    for rel, out in (("bin/tool", "bin/tool"), ("kit/run", "kit/")):
        path = project.root / rel
        path.chmod(path.stat().st_mode & ~0o111)
        assert status_json(project)["targets"]["tool"] == {"state": "stale", "reasons": [f"out modified: {out}"]}
        res = ok(project.pt("run", "--json"))
        assert '"action": "restored"' in res.stdout
        assert os.stat(path).st_mode & stat.S_IXUSR
        ok(project.pt("status", "--check"))
    assert project.runs() == ["tool"]


def test_a_name_that_is_a_target_and_another_targets_out_means_the_target_and_says_so(project):
    project.write("in/a.txt", "a\n")
    project.pipeline("""
        targets:
          report:
            cmd: echo report >> runs.log && cat in/a.txt > out.txt
            deps: [in/a.txt]
            outs: [out.txt]
          make:
            cmd: echo make >> runs.log && cat in/a.txt > report
            deps: [in/a.txt]
            outs: [report]
    """)
    res = ok(project.pt("run", "report"))
    assert ("pipetool: warning: 'report' names target 'report', not the file report (an out of target "
            "'make'); write ./report for the file") in res.stderr
    assert project.runs() == ["report"]
    res = ok(project.pt("run", "./report"))
    assert "warning" not in res.stderr
    assert project.runs() == ["report", "make"]


def test_a_callable_gets_a_param_whose_key_is_spelled_with_a_dot_under_its_last_segment(project):
    project.write("src/__init__.py", "")
    project.write("src/job.py", '''
        def go(lr, params, outs):
            outs[0].write_text(f"{lr} {params}")
    ''')
    project.pipeline("""
        params:
          "opt.lr": 0.5
        targets:
          go:
            python: src.job:go
            params: [opt.lr]
            outs: [out.txt]
    """)
    ok(project.pt("run", "-S", "opt.lr=0.25"))
    assert project.read("out.txt") == "0.25 {'opt.lr': 0.25}"


def test_a_set_value_that_is_not_utf8_is_a_clear_error(project):
    import subprocess

    from .support import PIPETOOL, assert_invalid

    project.pipeline("""
        params: {a: 1}
        targets:
          t:
            cmd: echo ${a} >> runs.log
            outs: []
    """)
    for value in (b"a='\xff'", b"a=\xff"):
        res = subprocess.run([*map(str.encode, PIPETOOL), b"run", b"-S", value], cwd=project.root,
                             capture_output=True, text=True, timeout=60)
        assert_invalid(res, "is not UTF-8 text", project=project)
