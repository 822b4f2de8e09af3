"""The local executor against its protocol (execute/jobs.Executor): real children and real
forked Python processes, synchronised on files the jobs write, never on the clock."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from pipetool.execute import logsink
from pipetool.execute.jobs import Job, JobKey, Outcome
from pipetool.execute.local import ExecutorError, LocalExecutor, top_level_imports

WAIT = "for i in $(seq 1200); do [ -e {f} ] && break; sleep 0.05; done; [ -e {f} ]"  # a hang guard: 60 s


@pytest.fixture
def executor():
    ex = LocalExecutor(4)
    yield ex
    ex.cancel_all()
    ex.close()


def cmd_job(tmp_path, name: str, cmd: str, check: int | None = None) -> Job:
    key = JobKey(name, check)
    return Job(key, str(tmp_path), {"PIPETOOL_TARGET": name}, str(tmp_path / key.log_name), cmd=cmd)


def test_a_commands_outcome_says_whether_it_succeeded_and_why_not(tmp_path, executor):
    executor.submit(cmd_job(tmp_path, "good", "echo hello $PIPETOOL_TARGET"))
    first = executor.wait_next()
    executor.submit(cmd_job(tmp_path, "bad", "echo oops >&2; exit 3"))
    second = executor.wait_next()
    assert (first.key, first.ok, first.message) == (JobKey("good"), True, "")
    assert (second.key, second.ok, second.message) == (JobKey("bad"), False, "exit status 3")
    assert (tmp_path / "good.log").read_text() == "hello good\n"
    assert (tmp_path / "bad.log").read_text() == "oops\n"


def test_a_command_that_prints_nothing_leaves_no_log(tmp_path, executor):
    executor.submit(cmd_job(tmp_path, "quiet", "true", check=0))
    assert executor.wait_next().key == JobKey("quiet", 0)
    assert not (tmp_path / "quiet.check-0.log").exists()


def test_outcomes_come_in_the_order_jobs_finish(tmp_path, executor):
    # `late` waits for the file `early` writes: it cannot finish first.
    executor.submit(cmd_job(tmp_path, "late", WAIT.format(f="early.done")))
    executor.submit(cmd_job(tmp_path, "early", "touch early.done"))
    assert [executor.wait_next().key.target for _ in range(2)] == ["early", "late"]


def wait_for(cond, what: str) -> None:
    """Poll until `cond()` holds; 60 s guards against a hang, it bounds nothing else."""
    for _ in range(3000):
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def gone(pid: int) -> bool:
    """Exited (a zombie counts: its parent, the killed bash, reaps it no more)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_cancel_all_terminates_a_running_command_and_its_children(tmp_path, executor):
    executor.submit(cmd_job(tmp_path, "hang", "sleep 600 & echo $! > child.pid; wait"))
    wait_for(lambda: (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text().strip(),
             "the command to start its child")
    child = int((tmp_path / "child.pid").read_text())
    assert not gone(child)
    executor.cancel_all()
    wait_for(lambda: gone(child), "the command's child to be terminated")


def test_a_python_job_runs_in_a_child_process_with_its_keyword_arguments(tmp_path, executor):
    (tmp_path / "mod.py").write_text(textwrap.dedent("""
        def make(lr, outs, ctx):
            print("training", ctx.target, lr)
            outs[0].write_text(str(lr))

        def boom():
            raise ValueError("bad lr")
    """))
    env = {"PIPETOOL_RUN_ID": "r1", "PIPETOOL_TARGET": "make"}
    executor.submit(Job(JobKey("make"), str(tmp_path), env, str(tmp_path / "make.log"), python="mod:make",
                        kwargs={"lr": 0.5, "outs": ["model.txt"], "params": {}, "deps": []}))
    ok = executor.wait_next()
    executor.submit(Job(JobKey("boom"), str(tmp_path), env, str(tmp_path / "boom.log"), python="mod:boom"))
    bad = executor.wait_next()
    assert (ok.key, ok.ok) == (JobKey("make"), True)
    assert (tmp_path / "model.txt").read_text() == "0.5"
    assert "training make 0.5" in (tmp_path / "make.log").read_text()
    assert (bad.ok, bad.message) == (False, "ValueError: bad lr")
    assert "Traceback" in (tmp_path / "boom.log").read_text()


def next_outcome(executor) -> Outcome:
    """`wait_next`, with 60 s as a hang guard only."""
    got: list[Outcome | BaseException] = []
    thread = threading.Thread(target=lambda: got.append(_catching(executor.wait_next)), daemon=True)
    thread.start()
    thread.join(60)
    assert got, "wait_next did not return (a hang)"
    if isinstance(got[0], BaseException):
        raise got[0]
    return got[0]


def _catching(fn):
    try:
        return fn()
    except BaseException as exc:
        return exc


def py_job(tmp_path, name: str, ref: str, env: dict[str, str] | None = None) -> Job:
    return Job(JobKey(name), str(tmp_path), {"PIPETOOL_TARGET": name, **(env or {})},
               str(tmp_path / f"{name}.log"), python=ref)


# -- logs that cannot be written --------------------------------------------------------------


def test_a_log_sink_on_a_full_device_records_why_and_never_raises():
    sink = logsink.LogSink("/dev/full")  # every write: ENOSPC
    sink.write(b"hello\n")
    sink.write(b"more\n")
    sink.close()
    assert sink.error == os.strerror(28)


def test_a_log_sink_past_the_file_size_limit_keeps_the_start_and_ends_with_the_note(tmp_path):
    log = tmp_path / "big.log"
    code = ("import sys; from pipetool.execute.logsink import LogSink\n"
            "s = LogSink(sys.argv[1])\n"
            "for i in range(100): s.write(b'line %04d\\n' % i)\n"
            "s.close()\n")

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (500, 500))

    subprocess.run([sys.executable, "-c", code, str(log)], check=True, timeout=60,
                   preexec_fn=limit)
    # 50 lines fill the 500 bytes; then the end is cut, back to a line's start, for the note.
    note = logsink.truncation_note(os.strerror(27))
    kept = b"".join(b"line %04d\n" % i for i in range(100))[: 500 - len(note) - 1]
    assert log.read_bytes() == kept[: kept.rfind(b"\n") + 1] + note


def test_a_log_sink_that_got_nothing_writes_no_file(tmp_path):
    sink = logsink.LogSink(str(tmp_path / "quiet.log"))
    sink.write(b"")
    sink.close()
    assert not (tmp_path / "quiet.log").exists()


def test_a_failing_io_thread_makes_wait_next_raise_and_cancel_all_still_stops_the_children(
        tmp_path, executor, monkeypatch):
    executor.submit(cmd_job(tmp_path, "hang", "sleep 600 & echo $! > child.pid; wait"))
    wait_for(lambda: (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text().strip(),
             "the command to start its child")

    def gremlin(self, data: bytes) -> None:
        raise RuntimeError("disk gremlin")

    monkeypatch.setattr(logsink.LogSink, "write", gremlin)
    executor.submit(cmd_job(tmp_path, "talks", "echo hello"))
    with pytest.raises(ExecutorError) as info:
        next_outcome(executor)
    assert str(info.value) == "the run was stopped: internal error in pipetool's I/O thread (RuntimeError: disk gremlin)"
    assert info.value.exit_code == 1
    child = int((tmp_path / "child.pid").read_text())
    executor.cancel_all()
    wait_for(lambda: gone(child), "the command's child to be terminated")


# -- a background process holding the output --------------------------------------------------


def test_a_command_is_done_when_its_process_exits_not_when_its_output_ends(tmp_path, executor):
    executor.submit(cmd_job(tmp_path, "bg", "sleep 300 & echo $! > sleeper.pid; echo started"))
    done = next_outcome(executor)  # the sleeper holds the pipe for 300 s
    sleeper = int((tmp_path / "sleeper.pid").read_text())
    try:
        assert (done.key, done.ok) == (JobKey("bg"), True)
        assert (tmp_path / "bg.log").read_text() == "started\n"
        assert not gone(sleeper)  # left running: it is the user's
    finally:
        os.kill(sleeper, signal.SIGKILL)


# -- Python jobs: a fresh process each ---------------------------------------------------------


def test_each_python_job_runs_in_a_fresh_process(tmp_path, executor):
    (tmp_path / "mod.py").write_text(textwrap.dedent("""
        import json
        import os


        def spoil(outs):
            json.dumps = None
            os.umask(0o077)
            os.environ["SPOILED"] = "yes"
            outs[0].write_text(str(os.getpid()))


        def look(outs):
            mask = os.umask(0)
            outs[0].write_text(f"{os.getpid()} {json.dumps(1)} {mask:o} {os.environ.get('SPOILED')}")
    """))
    umask = os.umask(0o022)  # what the executor's processes start with
    try:
        run_spoil_then_look(tmp_path, executor)
    finally:
        os.umask(umask)
    spoiler = (tmp_path / "a.txt").read_text()
    pid, dumped, mask, spoiled = (tmp_path / "b.txt").read_text().split()
    assert pid != spoiler
    assert (dumped, mask, spoiled) == ("1", "22", "None")


def run_spoil_then_look(tmp_path, executor) -> None:
    executor.submit(Job(JobKey("spoil"), str(tmp_path), {}, str(tmp_path / "spoil.log"), python="mod:spoil",
                        kwargs={"outs": ["a.txt"]}))
    assert next_outcome(executor).ok
    executor.submit(Job(JobKey("look"), str(tmp_path), {}, str(tmp_path / "look.log"), python="mod:look",
                        kwargs={"outs": ["b.txt"]}))
    assert next_outcome(executor).ok


def test_a_python_job_that_dies_fails_saying_how(tmp_path, executor):
    (tmp_path / "die.py").write_text("import os, signal\n\ndef now():\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    executor.submit(py_job(tmp_path, "die", "die:now"))
    done = next_outcome(executor)
    assert (done.ok, done.message) == (False, "ended without a result (killed by signal 9)")


def test_cancel_all_stops_a_running_python_job_and_what_it_started(tmp_path, executor):
    (tmp_path / "nap.py").write_text(textwrap.dedent("""
        import os
        import subprocess
        import time


        def nap():
            child = subprocess.Popen(["sleep", "600"])
            with open("pids.tmp", "w") as f:
                f.write(f"{os.getpid()} {child.pid}")
            os.rename("pids.tmp", "pids")
            time.sleep(600)
    """))
    executor.submit(py_job(tmp_path, "nap", "nap:nap"))
    wait_for((tmp_path / "pids").exists, "the callable to start")
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    executor.cancel_all()
    wait_for(lambda: all(gone(p) for p in pids), "the callable and its child to be terminated")


def test_project_modules_are_never_kept_warm_but_installed_ones_are(tmp_path, executor, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "warmmod.py").write_text("import os\nwith open(os.environ['WARM_LOG'], 'a') as f:\n"
                                     "    f.write(f'{os.getpid()}\\n')\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("WARM_LOG", str(tmp_path / "imports.txt"))
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "helper.py").write_text("VALUE = 1\n")
    (proj / "m.py").write_text("import helper\nimport warmmod\n\n"
                               "def f(outs):\n    outs[0].write_text(str(helper.VALUE))\n")
    for value in (1, 2):
        (proj / "helper.py").write_text(f"VALUE = {value}\n")
        executor.submit(Job(JobKey(f"f{value}"), str(proj), {}, str(proj / f"f{value}.log"), python="m:f",
                            kwargs={"outs": [f"out{value}.txt"]}))
        assert next_outcome(executor).ok
        assert (proj / f"out{value}.txt").read_text() == str(value)  # the edit is seen
    assert len((tmp_path / "imports.txt").read_text().split()) == 1  # imported once, before the forks


def test_top_level_imports_are_the_modules_absolute_imports_at_its_top(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "train.py").write_text(textwrap.dedent("""
        import os.path
        import numpy as np, json
        from sklearn.linear_model import Ridge
        from . import sibling
        try:
            import torch
        except ImportError:
            torch = None

        def fit():
            import pandas
    """))
    assert top_level_imports(str(tmp_path), "pkg.train") == (
        "pkg.train", "os.path", "numpy", "json", "sklearn.linear_model", "torch")
