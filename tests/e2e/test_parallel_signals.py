"""Parallelism, interrupts (SIGINT, SIGKILL) and two pipetool processes on one project."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time

from .support import FAST_THEN_SLOW, wait_started, group_members, ok, pid_alive, status_json


def _stamps(project) -> dict[tuple[str, str], float]:
    t = {}
    for line in project.read("stamps.log").splitlines():
        name, what, when = line.split()
        t[(name, what)] = float(when)
    return t


STAMP = 'echo "$PIPETOOL_TARGET {} $(date +%s.%N)" >> stamps.log'


def test_jobs_2_runs_independent_targets_in_parallel(project, pt):
    project.pipeline(f"""
        targets:
          one:
            cmd: {STAMP.format("start")} && sleep 1 && echo one >> runs.log && echo 1 > out/1.txt && {STAMP.format("end")}
            outs: [out/1.txt]
          two:
            cmd: {STAMP.format("start")} && sleep 1 && echo two >> runs.log && echo 2 > out/2.txt && {STAMP.format("end")}
            outs: [out/2.txt]
    """)
    t0 = time.monotonic()
    ok(pt("run", "-j", "2"))
    wall = time.monotonic() - t0
    assert sorted(project.runs()) == ["one", "two"]
    t = _stamps(project)
    assert t[("one", "start")] < t[("two", "end")] and t[("two", "start")] < t[("one", "end")], t  # overlap
    assert wall < 1.8, f"took {wall:.2f}s: not parallel"


def test_jobs_1_runs_one_at_a_time(project, pt):
    project.pipeline("""
        targets:
          one:
            cmd: echo "one start $(date +%s.%N)" >> runs.log && sleep 0.3 && echo "one end $(date +%s.%N)" >> runs.log && echo 1 > out/1.txt
            outs: [out/1.txt]
          two:
            cmd: echo "two start $(date +%s.%N)" >> runs.log && sleep 0.3 && echo "two end $(date +%s.%N)" >> runs.log && echo 2 > out/2.txt
            outs: [out/2.txt]
    """)
    ok(pt("run", "-j", "1"))
    events = [line.split()[1] for line in project.runs()]
    assert events == ["start", "end", "start", "end"], project.runs()


def test_target_starts_when_its_own_upstream_is_done_no_level_barrier(project, pt):
    stamp = STAMP
    project.pipeline(f"""
        targets:
          A:
            cmd: {stamp.format("start")} && sleep 0.2 && echo a > out/a.txt && {stamp.format("end")}
            outs: [out/a.txt]
          B:
            cmd: {stamp.format("start")} && sleep 0.2 && cat out/a.txt > out/b.txt && {stamp.format("end")}
            deps: [out/a.txt]
            outs: [out/b.txt]
          C:
            cmd: {stamp.format("start")} && sleep 1.0 && echo c > out/c.txt && {stamp.format("end")}
            outs: [out/c.txt]
    """)
    ok(pt("run", "-j", "2"))
    t = _stamps(project)
    assert t[("A", "end")] <= t[("B", "start")]
    assert t[("B", "start")] < t[("C", "end")], t
    assert t[("B", "end")] < t[("C", "end")], t




SLOW = FAST_THEN_SLOW


def test_sigint_exits_130_stops_the_command_and_keeps_finished_records(project, pt):
    project.pipeline(SLOW)
    proc = project.popen("run", "-j", "2")
    bash_pid = wait_started(project, proc)
    project.kill_at_end.append(bash_pid)
    project.wait_for(lambda: len(group_members(bash_pid)) >= 2, 5, "bash to start its sleep child")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)  # like ^C: only pipetool itself gets it
    try:
        out, err = proc.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        raise AssertionError("pipetool did not exit within 8s of SIGINT") from None
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 5
    assert "Traceback" not in err, err
    project.wait_for(lambda: not pid_alive(bash_pid) and not group_members(bash_pid), 3,
                     "the command and its children to be gone")
    assert not project.exists("out/slow.txt")
    data = status_json(project)["targets"]
    assert data["fast"]["state"] == "fresh"
    assert data["slow"]["state"] == "stale"
    res = ok(pt("run", env={"SLEEP": "0"}))
    assert project.runs() == ["fast", "slow", "slow"], res.stderr
    assert project.read("out/slow.txt") == "f\n"


def test_sigkill_mid_run_next_run_reruns_only_unfinished(project, pt):
    project.pipeline(SLOW)
    proc = project.popen("run", "-j", "2")
    bash_pid = wait_started(project, proc)
    project.kill_at_end.append(bash_pid)  # the orphaned command lives on in its own group
    assert project.runs() == ["fast", "slow"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=5)
    # the lock died with the process: --no-wait gets it, and does not hang
    res = ok(pt("run", "--no-wait", timeout=20, env={"SLEEP": "0"}))
    assert project.runs() == ["fast", "slow", "slow"], res.stderr
    assert project.read("out/slow.txt") == "f\n"
    ok(pt("status", "--check"))


def test_second_run_with_no_wait_exits_3_naming_the_run(project, pt):
    project.pipeline("""
        targets:
          hold:
            cmd: echo hold >> runs.log && echo $$ > pid && while [ ! -f release ]; do sleep 0.05; done && echo h > out/h.txt
            outs: [out/h.txt]
          other:
            cmd: echo other >> runs.log && echo o > out/o.txt
            outs: [out/o.txt]
    """)
    first = project.popen("run", "hold")
    wait_started(project, first)
    try:
        res = pt("run", "--no-wait", "other", timeout=10)
        assert res.returncode == 3, res.stderr
        assert "Traceback" not in res.stderr
        assert f"pid {first.pid}" in res.stderr or "run " in res.stderr, res.stderr
        assert project.runs() == ["hold"]
    finally:
        project.write("release", "x")
    out, err = first.communicate(timeout=20)
    assert first.returncode == 0, err
    m = re.search(r"run (\S+) succeeded", err)
    assert m, err
    assert m.group(1) in res.stderr, f"busy message does not name run {m.group(1)}:\n{res.stderr}"


def test_second_run_waits_for_the_first_then_proceeds(project, pt):
    project.pipeline("""
        targets:
          hold:
            cmd: echo hold >> runs.log && echo $$ > pid && while [ ! -f release ]; do sleep 0.05; done && echo h > out/h.txt
            outs: [out/h.txt]
          other:
            cmd: echo other >> runs.log && echo o > out/o.txt
            outs: [out/o.txt]
    """)
    first = project.popen("run", "hold")
    wait_started(project, first)
    second = project.popen("run", "other")
    time.sleep(0.8)
    assert second.poll() is None, "the second run did not wait"
    assert project.runs() == ["hold"]
    project.write("release", "x")
    out1, err1 = first.communicate(timeout=20)
    out2, err2 = second.communicate(timeout=20)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    assert project.runs() == ["hold", "other"]
    run_id = re.search(r"run (\S+) succeeded", err1).group(1)
    assert "waiting" in err2 and run_id in err2, err2


def test_status_does_not_wait_for_a_run_in_progress(project, pt):
    project.pipeline("""
        targets:
          hold:
            cmd: echo hold >> runs.log && echo $$ > pid && while [ ! -f release ]; do sleep 0.05; done && echo h > out/h.txt
            outs: [out/h.txt]
    """)
    first = project.popen("run")
    wait_started(project, first)
    try:
        t0 = time.monotonic()
        res = pt("status", "--json", timeout=10)
        elapsed = time.monotonic() - t0
        assert res.returncode == 0, res.stderr
        assert elapsed < 3, f"status took {elapsed:.2f}s during a run"
        res = pt("dag", timeout=10)
        assert res.returncode == 0 and "hold" in res.stdout
    finally:
        project.write("release", "x")
    first.communicate(timeout=20)
    assert first.returncode == 0


def test_sigint_stops_a_running_python_callable(project, pt):
    project.write("src/__init__.py", "")
    project.write("src/slow.py", '''
        import os
        import time


        def nap(outs):
            with open("runs.log", "a") as log:
                log.write("nap\\n")
            with open("pid", "w") as f:
                f.write(str(os.getpid()))
            time.sleep(float(os.environ.get("SLEEP", "30")))
            outs[0].write_text("awake\\n")
    ''')
    project.pipeline("""
        targets:
          nap:
            python: src.slow:nap
            outs: [out/nap.txt]
    """)
    proc = project.popen("run")
    worker = wait_started(project, proc)
    project.kill_at_end.append(worker)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        raise AssertionError("pipetool did not exit within 8s of SIGINT") from None
    assert proc.returncode == 130, err
    project.wait_for(lambda: not pid_alive(worker), 5, "the Python worker to be gone")
    assert not project.exists("out/nap.txt")
    ok(pt("run", env={"SLEEP": "0"}))
    assert project.runs() == ["nap", "nap"]


def test_sigterm_stops_the_running_command_too(project, pt):
    # `kill PID`, CI cancellation and `timeout` send SIGTERM to pipetool alone; the commands
    # live in their own process groups, so only pipetool can stop them.
    project.pipeline(SLOW)
    proc = project.popen("run", "-j", "2")
    bash_pid = wait_started(project, proc)
    project.kill_at_end.append(bash_pid)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=8)
    assert proc.returncode in (130, 143), proc.returncode  # interrupted (128 + SIGTERM)
    project.wait_for(lambda: not pid_alive(bash_pid) and not group_members(bash_pid), 3,
                     "the command and its children to be gone after SIGTERM")
    data = status_json(project)["targets"]
    assert data["fast"]["state"] == "fresh" and data["slow"]["state"] == "stale"
