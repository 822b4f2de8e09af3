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
