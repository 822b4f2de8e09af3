"""Parallelism, interrupts (SIGINT, SIGKILL) and two pipetool processes on one project."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading

from .support import FAST_THEN_SLOW, group_members, ok, pid_alive, status_json, wait_started


def await_file(path: str, who: str, limit_s: int = 60) -> str:
    """Shell: wait until `path` exists. After `limit_s` seconds it gives up with exit 1 and
    a message: a guard against a hang only, never a bound on how fast anything is."""
    return (f'( until [ -e {path} ]; do if [ $SECONDS -ge {limit_s} ]; then '
            f'echo "{who} gave up waiting for {path}" >&2; exit 1; fi; sleep 0.02; done )')


class StderrLines:
    """A background pipetool's stderr, read line by line in a thread to its end: a test can
    wait for the line that says something happened, and still have all of it afterwards.
    (The reader owns the pipe: wait for the process with `wait()`, not `communicate()`.)"""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: list[str] = []
        self.eof = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for line in iter(self.proc.stderr.readline, ""):
                with self.cond:
                    self.lines.append(line)
                    self.cond.notify_all()
        finally:
            with self.cond:
                self.eof = True
                self.cond.notify_all()

    def wait_for(self, needle: str, timeout: float = 60) -> str:
        """The first line holding `needle`, once it is printed; fails when stderr ends
        without it, or after `timeout` seconds without it (a hang guard)."""
        def found() -> list[str]:
            return [line for line in self.lines if needle in line]

        with self.cond:
            self.cond.wait_for(lambda: self.eof or found(), timeout)
            hits, text, eof = found(), "".join(self.lines), self.eof
        if hits:
            return hits[0]
        if eof:
            raise AssertionError(f"stderr ended without a line holding {needle!r}:\n{text}")
        raise AssertionError(f"no line holding {needle!r} on stderr after {timeout}s:\n{text}")

    def all(self, timeout: float = 60) -> str:
        """Everything it printed, once the stream has ended."""
        self.thread.join(timeout)
        with self.cond:
            if not self.eof:
                raise AssertionError(f"stderr still open after {timeout}s")
            return "".join(self.lines)


def test_jobs_2_runs_independent_targets_in_parallel(project, pt):
    # Each one says it started, then waits for the other to say so: run one at a time, the
    # first would give up waiting (exit 1); with -j 2 both finish.
    project.pipeline(f"""
        targets:
          one:
            cmd: echo one >> runs.log && touch started.one && {await_file("started.two", "one")} && echo 1 > out/1.txt
            outs: [out/1.txt]
          two:
            cmd: echo two >> runs.log && touch started.two && {await_file("started.one", "two")} && echo 2 > out/2.txt
            outs: [out/2.txt]
    """)
    res = ok(pt("run", "-j", "2", timeout=180))
    assert sorted(project.runs()) == ["one", "two"], res.stderr
    assert project.read("out/1.txt") == "1\n" and project.read("out/2.txt") == "2\n"


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
    # A and C start together (-j 2); C cannot end before B has ended, since it waits for the
    # file B writes last. With a barrier between levels ({A, C}, then B), B would wait for C
    # and C would give up waiting (exit 1).
    project.pipeline(f"""
        targets:
          A:
            cmd: echo A >> runs.log && echo a > out/a.txt
            outs: [out/a.txt]
          B:
            cmd: echo B >> runs.log && cat out/a.txt > out/b.txt && touch B.done
            deps: [out/a.txt]
            outs: [out/b.txt]
          C:
            cmd: {await_file("B.done", "C")} && echo C >> runs.log && echo c > out/c.txt
            outs: [out/c.txt]
    """)
    res = ok(pt("run", "-j", "2", timeout=180))
    assert project.runs() == ["A", "B", "C"], res.stderr
    assert project.read("out/b.txt") == "a\n" and project.read("out/c.txt") == "c\n"


SLOW = FAST_THEN_SLOW


def test_sigint_exits_130_stops_the_command_and_keeps_finished_records(project, pt):
    project.pipeline(SLOW)
    proc = project.popen("run", "-j", "2")
    bash_pid = wait_started(project, proc)
    project.kill_at_end.append(bash_pid)
    project.wait_for(lambda: len(group_members(bash_pid)) >= 2, 60, "bash to start its sleep child")
    proc.send_signal(signal.SIGINT)  # like ^C: only pipetool itself gets it
    try:
        _out, err = proc.communicate(timeout=60)  # a hang guard
    except subprocess.TimeoutExpired:
        raise AssertionError("pipetool did not exit after SIGINT") from None
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    project.wait_for(lambda: not pid_alive(bash_pid) and not group_members(bash_pid), 60,
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
    proc.communicate(timeout=60)
    # the lock died with the process: --no-wait gets it, and does not hang
    res = ok(pt("run", "--no-wait", timeout=60, env={"SLEEP": "0"}))
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
        res = pt("run", "--no-wait", "other", timeout=60)
        assert res.returncode == 3, res.stderr
        assert "Traceback" not in res.stderr
        assert project.runs() == ["hold"]
    finally:
        project.write("release", "x")
    _out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    m = re.search(r"run (\S+) succeeded", err)
    assert m, err
    holder = f"run {m.group(1)} (pid {first.pid})"
    assert f"the project is busy: {holder} holds it" in res.stderr, \
        f"busy message does not name {holder}:\n{res.stderr}"


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
    stderr2 = StderrLines(second)
    try:
        waiting = stderr2.wait_for("waiting for ")
        # It says it waits, and the first run holds the lock until `release` exists: so far
        # it can neither have run anything nor ended.
        assert second.poll() is None, f"the second run ended while the first held the lock:\n{waiting}"
        assert project.runs() == ["hold"]
    finally:
        project.write("release", "x")
    _out1, err1 = first.communicate(timeout=60)  # hang guards
    second.wait(timeout=60)
    err2 = stderr2.all()
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    assert project.runs() == ["hold", "other"]
    run_id = re.search(r"run (\S+) succeeded", err1).group(1)
    assert f"waiting for run {run_id} (pid {first.pid}) to finish" in waiting, err2


def test_status_does_not_wait_for_a_run_in_progress(project, pt):
    project.pipeline("""
        targets:
          hold:
            cmd: echo hold >> runs.log && echo $$ > pid && while [ ! -f release ]; do sleep 0.05; done && echo h > out/h.txt
            outs: [out/h.txt]
    """)
    first = project.popen("run")
    wait_started(project, first)
    # `hold` runs until `release` exists, written only below: a read-only command that
    # waited for the lock would never return (the timeouts only turn that hang into a failure).
    try:
        for args in (("status", "--json"), ("dag",)):
            try:
                res = pt(*args, timeout=60)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"pipetool {' '.join(args)} waited for the run in progress") from None
            ok(res)
        assert first.poll() is None  # the run still held the lock all along
        assert "hold" in res.stdout
    finally:
        project.write("release", "x")
    first.communicate(timeout=60)
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
        _out, err = proc.communicate(timeout=60)  # a hang guard
    except subprocess.TimeoutExpired:
        raise AssertionError("pipetool did not exit after SIGINT") from None
    assert proc.returncode == 130, err
    project.wait_for(lambda: not pid_alive(worker), 60, "the Python worker to be gone")
    assert not project.exists("out/nap.txt")
    ok(pt("run", env={"SLEEP": "0"}))
    assert project.runs() == ["nap", "nap"]


def test_sigterm_stops_the_running_command_too(project, pt):
    # `kill PID`, CI cancellation and `timeout` send SIGTERM to pipetool alone; the commands
    # live in their own process groups, so only pipetool can stop them.
    project.pipeline(SLOW)
    proc = project.popen("run", "-j", "2")
    bash_pid = wait_started(project, proc)  # pipetool turns SIGTERM into an interrupt
    project.kill_at_end.append(bash_pid)    # before it launches anything
    project.wait_for(lambda: len(group_members(bash_pid)) >= 2, 60, "bash to start its sleep child")
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=60)  # a hang guard
    except subprocess.TimeoutExpired:
        raise AssertionError("pipetool did not exit after SIGTERM") from None
    assert proc.returncode == 143, err  # interrupted by SIGTERM: 128 + 15
    assert "Traceback" not in err, err
    project.wait_for(lambda: not pid_alive(bash_pid) and not group_members(bash_pid), 60,
                     "the command and its children to be gone after SIGTERM")
    data = status_json(project)["targets"]
    assert data["fast"]["state"] == "fresh" and data["slow"]["state"] == "stale"
