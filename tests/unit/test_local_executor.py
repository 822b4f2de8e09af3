"""The local executor against its protocol (execute/jobs.Executor): real children and a real
loky worker, synchronised on files the jobs write, never on the clock."""
from __future__ import annotations

import textwrap
import time

import pytest

from pipetool.execute.jobs import Job, JobKey
from pipetool.execute.local import LocalExecutor

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


def test_a_python_job_runs_in_a_worker_with_its_keyword_arguments(tmp_path, executor):
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
