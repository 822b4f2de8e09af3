"""Failing targets, -k, outs not written, and `env:` fingerprints."""
from __future__ import annotations

import glob
import os

from .support import ok, status_json

FAILING = """
    targets:
      bad:
        cmd: |
          echo bad >> runs.log
          for i in $(seq 1 40); do echo "noise line $i" >&2; done
          echo "stdout-marker"
          echo "fatal-marker: disk on fire" >&2 && exit 3
        deps: [in/a.txt]
        outs: [out/bad.txt]
      after:
        cmd: echo after >> runs.log && cat out/bad.txt > out/after.txt
        deps: [out/bad.txt]
        outs: [out/after.txt]
      indep:
        cmd: sleep 0.3 && echo indep >> runs.log && echo i > out/indep.txt
        outs: [out/indep.txt]
"""


def test_failing_target_exit_1_downstream_not_run_tail_shown(project, pt):
    project.write("in/a.txt", "alpha\n")
    project.pipeline(FAILING)
    res = pt("run", "-j", "1", "bad", "after")
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert project.runs() == ["bad"]
    assert not project.exists("out/after.txt")
    assert "fatal-marker: disk on fire" in res.stderr  # the tail of its stderr
    assert "noise line 40" in res.stderr
    assert "noise line 1\n" not in res.stderr  # only the tail, not all of it
    assert "exit status 3" in res.stderr


def test_failing_target_full_output_in_log_under_state_dir(project, pt):
    project.write("in/a.txt", "alpha\n")
    project.pipeline(FAILING)
    res = pt("run", "bad")
    assert res.returncode == 1
    # one log per target: stdout and stderr together, in the order they were written
    logs = glob.glob(str(project.root / ".pipetool/logs/**/bad.log"), recursive=True)
    assert len(logs) == 1, logs
    with open(logs[0]) as f:
        text = f.read()
    assert "noise line 1\n" in text and "fatal-marker" in text
    assert "stdout-marker" in text
    # the message points at the log
    assert os.path.relpath(logs[0], project.root) in res.stderr


def test_failed_target_is_not_recorded_and_downstream_stays_blocked(project, pt):
    project.write("in/a.txt", "alpha\n")
    project.pipeline(FAILING)
    pt("run", "-j", "1")
    data = status_json(project)["targets"]
    assert data["bad"] == {"state": "stale", "reasons": ["never built"]}, data
    # `after` never ran: stale for a reason of its own (SPEC §3), not merely pending on `bad`
    assert data["after"] == {"state": "stale", "reasons": ["never built"]}, data
    ok(pt("status", "--check"), 1)


def test_keep_going_runs_independent_targets(project, pt):
    project.write("in/a.txt", "alpha\n")
    project.pipeline(FAILING)
    res = pt("run", "-k", "-j", "1")
    assert res.returncode == 1, res.stderr
    assert sorted(project.runs()) == ["bad", "indep"]
    assert project.exists("out/indep.txt")
    assert not project.exists("out/after.txt")
    data = status_json(project)["targets"]
    assert data["indep"]["state"] == "fresh"


def test_without_keep_going_nothing_new_starts_after_a_failure(project, pt):
    project.write("in/a.txt", "alpha\n")
    # `bad` fails fast; `slowdep` (needs nothing) could start afterwards with -j 1 only if
    # the run went on; the order is forced with needs.
    project.pipeline("""
        targets:
          bad:
            cmd: echo bad >> runs.log && exit 1
            outs: [out/bad.txt]
          later:
            cmd: echo later >> runs.log && echo l > out/later.txt
            outs: [out/later.txt]
            needs: [first]
          first:
            cmd: echo first >> runs.log && echo f > out/first.txt
            outs: [out/first.txt]
    """)
    res = pt("run", "-j", "1", "bad", "later")
    assert res.returncode == 1
    assert "later" not in project.runs()


def test_fixing_a_failure_reruns_only_what_did_not_succeed(project, pt):
    project.write("in/a.txt", "alpha\n")
    project.pipeline(FAILING)
    pt("run", "-k")
    project.clear_runs()
    project.pipeline(FAILING.replace(
        'echo "fatal-marker: disk on fire" >&2 && exit 3', "cat in/a.txt > out/bad.txt"))
    ok(pt("run", "-j", "1"))
    assert project.runs() == ["bad", "after"]


def test_command_exit_0_without_writing_its_out_is_a_failure(project, pt):
    project.pipeline("""
        targets:
          lazy:
            cmd: echo lazy >> runs.log && echo done
            outs: [out/lazy.txt, out/other.txt]
          after:
            cmd: echo after >> runs.log && cat out/lazy.txt > out/after.txt
            deps: [out/lazy.txt]
            outs: [out/after.txt]
    """)
    res = pt("run")
    assert res.returncode == 1, res.stderr
    assert "out/lazy.txt" in res.stderr
    assert project.runs() == ["lazy"]
    assert status_json(project)["targets"]["lazy"]["state"] == "stale"
    pt("run")
    assert project.runs() == ["lazy", "lazy"]  # not recorded, so it runs again


def test_stale_out_from_previous_build_does_not_count_as_written(project, pt):
    project.write("in/a.txt", "alpha\n")
    project.write("flag", "write\n")
    project.pipeline("""
        targets:
          maybe:
            cmd: echo maybe >> runs.log && if grep -q write flag; then cat in/a.txt > out/m.txt; fi
            deps: [in/a.txt]
            outs: [out/m.txt]
    """)
    ok(pt("run"))
    project.write("flag", "skip\n")
    project.write("in/a.txt", "beta\n")
    res = pt("run")
    assert res.returncode == 1, res.stderr  # the old out/m.txt must not pass for a new one
    assert "out/m.txt" in res.stderr


def test_command_killed_by_signal_is_a_failure(project, pt):
    project.pipeline("""
        targets:
          crash:
            cmd: echo crash >> runs.log && kill -9 $$
            outs: [out/c.txt]
    """)
    res = pt("run")
    assert res.returncode == 1, res.stderr
    assert "crash failed: killed by signal 9" in res.stderr, res.stderr


ENV_PIPELINE = """
    targets:
      envy:
        cmd: echo envy >> runs.log && echo "v=$MYVAR" > out/env.txt
        env: [MYVAR]
        outs: [out/env.txt]
      plain:
        cmd: echo plain >> runs.log && echo "v=$MYVAR" > out/plain.txt
        outs: [out/plain.txt]
"""


def test_env_variable_change_reruns_target(project, pt):
    project.pipeline(ENV_PIPELINE)
    ok(pt("run", env={"MYVAR": "one"}))
    ok(pt("run", env={"MYVAR": "one"}))
    assert sorted(project.runs()) == ["envy", "plain"]
    project.clear_runs()
    data = status_json_env(project, {"MYVAR": "two"})
    assert data["envy"]["state"] == "stale"
    assert any("MYVAR" in r for r in data["envy"]["reasons"]), data
    assert data["plain"]["state"] == "fresh"  # undeclared variables do not count
    ok(pt("run", env={"MYVAR": "two"}))
    assert project.runs() == ["envy"]
    assert project.read("out/env.txt") == "v=two\n"


def test_env_variable_unset_reruns_target(project, pt):
    project.pipeline(ENV_PIPELINE)
    ok(pt("run", env={"MYVAR": "one"}))
    project.clear_runs()
    ok(pt("run", drop_env=("MYVAR",)))
    assert project.runs() == ["envy"]
    project.clear_runs()
    ok(pt("run", env={"MYVAR": ""}))  # empty is not the same as unset
    assert project.runs() == ["envy"]


def status_json_env(project, env):
    import json

    res = ok(project.pt("status", "--json", env=env))
    return json.loads(res.stdout)["targets"]
