"""`resources:` on targets and `--resources` on the machine, through the real command
(local executor). Overlap is shown by recorded timestamps and by handshakes (a target
that waits for another to have started), never by durations."""
from __future__ import annotations

import pytest

from .support import assert_invalid, ok

STAMP = 'echo "$PIPETOOL_TARGET {} $(date +%s.%N)" >> stamps.log'
# Wait (at most ~15 s) until target NAME has started, then go on; fail if it never did.
AWAIT = 'for i in $(seq 300); do [ -e started.{0} ] && break; sleep 0.05; done; [ -e started.{0} ]'


def stamps(project) -> dict[tuple[str, str], float]:
    t = {}
    for line in project.read("stamps.log").splitlines():
        name, what, when = line.split()
        t[(name, what)] = float(when)
    return t


def gpu_target(name: str, extra: str = "") -> str:
    return f"""
          {name}:
            cmd: {STAMP.format("start")} && touch started.{name} && sleep 0.3 && echo {name} > out/{name}.txt && {STAMP.format("end")}
            outs: [out/{name}.txt]
            resources: {{gpu: 1}}{extra}"""


def apart(t, a: str, b: str) -> bool:
    return t[(a, "end")] <= t[(b, "start")] or t[(b, "end")] <= t[(a, "start")]


def test_gpu_targets_take_turns_while_a_cpu_target_runs_beside_them(project, pt):
    # cpu comes last in the file, behind g2 waiting for the GPU: it must not wait with it.
    # It waits until g1 has started, and g1 until cpu has, so neither can finish alone.
    project.pipeline(f"""
        targets:
          g1:
            cmd: {STAMP.format("start")} && touch started.g1 && {AWAIT.format("cpu")} && echo g1 > out/g1.txt && {STAMP.format("end")}
            outs: [out/g1.txt]
            resources: {{gpu: 1}}
          {gpu_target("g2").strip()}
          cpu:
            cmd: touch started.cpu && {AWAIT.format("g1")} && echo c > out/cpu.txt
            outs: [out/cpu.txt]
    """)
    ok(pt("run", "-j", "3", "--resources", "gpu=1"))
    t = stamps(project)
    assert apart(t, "g1", "g2"), t


def test_a_freed_gpu_goes_to_the_gpu_target_waiting_not_to_a_cpu_target(project, pt):
    # -j 2, one GPU: g1 and c1 start; g2 waits for the GPU, c2 for a slot. c1 and c2 both
    # wait until g2 has started: if g1's slot went to c2, g2 could never start in time.
    project.pipeline(f"""
        targets:
          g1:
            cmd: echo > out/g1.txt
            outs: [out/g1.txt]
            resources: {{gpu: 1}}
          c1:
            cmd: {AWAIT.format("g2")} && echo > out/c1.txt
            outs: [out/c1.txt]
          g2:
            cmd: touch started.g2 && echo > out/g2.txt
            outs: [out/g2.txt]
            resources: {{gpu: 1}}
          c2:
            cmd: {AWAIT.format("g2")} && echo > out/c2.txt
            outs: [out/c2.txt]
    """)
    ok(pt("run", "-j", "2", "--resources", "gpu=1"))


@pytest.mark.parametrize("resource, flags", [
    ("gpu", ["--resources", "gpu=2"]),  # two GPUs let two GPU targets run together
    ("tpu", ["--resources", "gpu=1"]),  # a resource nobody declared does not constrain
    ("tpu", []),  # nor does one when nothing is declared at all
])
def test_targets_that_fit_together_run_together(project, pt, resource, flags):
    # Each waits for the other to start: the run finishes only if they overlap.
    project.pipeline(f"""
        targets:
          a:
            cmd: touch started.a && {AWAIT.format("b")} && echo a > out/a.txt
            outs: [out/a.txt]
            resources: {{{resource}: 1}}
          b:
            cmd: touch started.b && {AWAIT.format("a")} && echo b > out/b.txt
            outs: [out/b.txt]
            resources: {{{resource}: 1}}
    """)
    ok(pt("run", "-j", "2", *flags))


def test_a_target_holds_its_resources_through_its_checks(project, pt):
    check = f"{STAMP.format('checked')} && sleep 0.2 && {STAMP.format('check-end')}"
    project.pipeline(f"""
        targets:{gpu_target("g1", chr(10) + "            checks: ['" + check + "']")}{gpu_target("g2")}
    """)
    ok(pt("run", "-j", "2", "--resources", "gpu=1"))
    t = stamps(project)
    assert t[("g1", "start")] < t[("g2", "start")], t  # g1 comes first in the file
    assert t[("g1", "check-end")] <= t[("g2", "start")], t


def test_a_target_needing_more_than_declared_is_refused_before_anything_runs(project, pt):
    project.pipeline("""
        targets:
          fine:
            cmd: echo fine >> runs.log && echo > out/fine.txt
            outs: [out/fine.txt]
          big:
            cmd: echo big >> runs.log && echo > out/big.txt
            outs: [out/big.txt]
            resources: {gpu: 2, mem_gb: 4}
    """)
    res = pt("run", "--resources", "gpu=1,mem_gb=64")
    assert_invalid(res, "'big'", "gpu=2", "gpu=1", "pipeline.yaml", project=project)
    ok(pt("run", "fine", "--resources", "gpu=1"))  # not selected: not refused
    assert project.runs() == ["fine"]
