"""The execute layer under stress, through the real `pipetool` command: a log that cannot
be written (a file-size limit, a full disk) costs the target its log, never its result or
the run; a background process holding a command's output does not hold up the target;
a Python callable's changes to its process do not reach the next target; a dead fork
server ends the run with an error instead of a hang."""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import stat
import subprocess

import pytest

from .support import PIPETOOL, _env, kill_group_quietly, ok, pid_alive, runs_json, status_json

LIMIT = 1 << 20  # the file-size limit pipetool runs under: its state fits, a 3 MB log does not
LOUD = "yes 'a line of output' | head -c 3000000"
NOTE_TOO_LARGE = b"[pipetool: log truncated: File too large]\n"


def _file_size_limit(limit: int):
    def pre() -> None:  # runs in the child before exec: sets one limit, takes no lock
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past it fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def run_guarded(project, argv: list[str], preexec=None) -> subprocess.CompletedProcess:
    """Run `argv` in the project, in a session of its own; 120 s is a hang guard only,
    after which the whole session is killed (pipetool inside `unshare` too)."""
    proc = subprocess.Popen(argv, cwd=str(project.root), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=preexec)  # noqa: PLW1509 - sets a limit or the umask, takes no lock
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        kill_group_quietly(proc.pid)
        proc.communicate()
        raise AssertionError(f"{' '.join(argv)} did not return (a hang)") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def run_limited(project, *args: str) -> subprocess.CompletedProcess:
    """`pipetool ARGS --json` under RLIMIT_FSIZE."""
    return run_guarded(project, [*PIPETOOL, *args, "--json"], _file_size_limit(LIMIT))


def log_of(project, run_id: str, target: str) -> bytes:
    return (project.root / ".pipetool" / "logs" / run_id / f"{target}.log").read_bytes()


# -- item 1: a log that cannot be written --------------------------------------------------


def test_a_log_past_the_file_size_limit_is_cut_with_a_note_and_the_target_still_builds(project):
    project.pipeline(f"""
        targets:
          loud:
            cmd: {LOUD}; echo built > out/loud.txt
            outs: [out/loud.txt]
    """)
    res = ok(run_limited(project, "run"))
    result = json.loads(res.stdout)
    assert result["targets"]["loud"]["action"] == "built"
    log = log_of(project, result["run_id"], "loud")
    assert log.endswith(NOTE_TOO_LARGE), log[-200:]
    assert len(log) <= LIMIT
    assert log.startswith(b"a line of output\n" * 100)
    assert status_json(project)["targets"]["loud"]["state"] == "fresh"
    assert runs_json(project)[-1]["status"] == "succeeded"


def test_a_failing_command_with_a_cut_log_fails_with_its_own_exit_status(project):
    project.pipeline(f"""
        targets:
          loud:
            cmd: {LOUD}; exit 3
    """)
    res = ok(run_limited(project, "run"), 1)
    result = json.loads(res.stdout)
    assert (result["targets"]["loud"]["action"], result["targets"]["loud"]["reason"]) == ("failed", "exit status 3")
    assert log_of(project, result["run_id"], "loud").endswith(NOTE_TOO_LARGE)
    assert NOTE_TOO_LARGE.decode().strip() in res.stderr  # the tail shown ends with the note


def test_a_python_target_printing_past_the_file_size_limit_still_builds(project):
    project.write("src/__init__.py", "")
    project.write("src/loud.py", """
        import sys


        def shout(outs):
            for _ in range(30):
                sys.stdout.write("x" * 99999 + "\\n")
            outs[0].write_text("built\\n")
    """)
    project.pipeline("""
        targets:
          loud:
            python: src.loud:shout
            outs: [out/loud.txt]
    """)
    result = json.loads(ok(run_limited(project, "run")).stdout)
    assert result["targets"]["loud"]["action"] == "built"
    assert log_of(project, result["run_id"], "loud").endswith(NOTE_TOO_LARGE)
    assert project.read("out/loud.txt") == "built\n"


def _tmpfs_or_skip(project) -> list[str]:
    """`unshare -rm` (a user and mount namespace) with a 256 KiB tmpfs on .pipetool/logs:
    the argv prefix, or a skip saying why it cannot be had here."""
    if shutil.which("unshare") is None:
        pytest.skip("no `unshare` here to mount a small tmpfs (the file-size-limit tests still run)")
    logs = project.root / ".pipetool" / "logs"
    logs.mkdir(parents=True)
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(logs)],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.strip()}")
    script = ('mount -t tmpfs -o size=256k tmpfs .pipetool/logs || exit 99; "$@"; rc=$?; '
              'cat .pipetool/logs/*/loud.log > loud.log.copy; exit $rc')
    return ["unshare", "-rm", "sh", "-c", script, "sh"]


def test_a_full_disk_under_the_logs_cuts_the_log_with_a_note_and_the_target_still_builds(project):
    project.pipeline(f"""
        targets:
          loud:
            cmd: {LOUD}; echo built > out/loud.txt
            outs: [out/loud.txt]
    """)
    prefix = _tmpfs_or_skip(project)
    res = ok(run_guarded(project, [*prefix, *PIPETOOL, "run", "--json"]))
    assert json.loads(res.stdout)["targets"]["loud"]["action"] == "built"
    log = (project.root / "loud.log.copy").read_bytes()
    assert log.endswith(b"[pipetool: log truncated: No space left on device]\n"), log[-200:]
    assert status_json(project)["targets"]["loud"]["state"] == "fresh"


# -- item 11: a background process holding the output ------------------------------------


def test_a_command_leaving_a_background_child_on_its_output_finishes_when_it_exits(project, pt):
    project.pipeline("""
        targets:
          bg:
            cmd: sleep 300 & echo $! > sleeper.pid; echo started; echo done > out/bg.txt
            outs: [out/bg.txt]
    """)
    try:
        res = pt("run", "--json", timeout=60)  # a hang guard: the sleeper holds the pipe for 300 s
    finally:
        if project.exists("sleeper.pid"):
            project.kill_at_end.append(int(project.read("sleeper.pid")))
    result = json.loads(ok(res).stdout)
    assert result["targets"]["bg"]["action"] == "built"
    assert log_of(project, result["run_id"], "bg") == b"started\n"
    assert pid_alive(int(project.read("sleeper.pid")))  # the user's process: left running


def test_a_callable_leaving_a_child_on_its_output_finishes_when_it_returns(project, pt):
    project.write("src/__init__.py", "")
    project.write("src/bg.py", """
        import subprocess


        def start(outs):
            sleeper = subprocess.Popen(["sleep", "300"])  # inherits fds 1 and 2: the log's pipe
            with open("sleeper.pid", "w") as f:
                f.write(str(sleeper.pid))
            print("started", flush=True)
            outs[0].write_text("done\\n")
    """)
    project.pipeline("""
        targets:
          bg:
            python: src.bg:start
            outs: [out/bg.txt]
    """)
    try:
        res = pt("run", "--json", timeout=60)  # a hang guard
    finally:
        if project.exists("sleeper.pid"):
            project.kill_at_end.append(int(project.read("sleeper.pid")))
    result = json.loads(ok(res).stdout)
    assert result["targets"]["bg"]["action"] == "built"
    assert log_of(project, result["run_id"], "bg") == b"started\n"


# -- item 5: process state does not leak from one callable to the next ---------------------


def _two_callables(project, first_body: str, second_body: str) -> None:
    """`first` then `second` (it depends on first's out), each a callable in src/t.py."""
    project.write("src/__init__.py", "")
    project.write("src/t.py", f"""
        import json
        import os


        def first(outs):
        {first_body}
            outs[0].write_text("first\\n")


        def second(outs):
        {second_body}
    """)
    project.pipeline("""
        targets:
          first:
            python: src.t:first
            outs: [out/first.txt]
          second:
            python: src.t:second
            deps: [out/first.txt]
            outs: [out/second.txt]
    """)


def test_a_umask_set_by_a_callable_does_not_reach_the_next_target(project):
    _two_callables(project, "    os.umask(0o077)", "    outs[0].write_text('second\\n')")

    def umask_022() -> None:  # the umask pipetool starts with, whatever the test runner has
        os.umask(0o022)

    ok(run_guarded(project, [*PIPETOOL, "run", "-j", "1"], umask_022))
    assert stat.S_IMODE(os.stat(project.root / "out" / "second.txt").st_mode) == 0o644


def test_a_module_patched_by_a_callable_is_whole_again_for_the_next_target(project, pt):
    _two_callables(project, "    json.dumps = lambda *a, **k: 'patched'",
                   "    outs[0].write_text(json.dumps({'a': 1}))")
    ok(pt("run", "-j", "1"))
    assert project.read("out/second.txt") == '{"a": 1}'


# -- item 1: a worker-side failure ends the run with an error ------------------------------


def test_a_dead_fork_server_ends_the_run_with_an_error_and_stops_its_callables(project, pt):
    project.write("src/__init__.py", "")
    project.write("src/kill.py", """
        import os
        import signal
        import time


        def server(outs):
            with open("child.pid", "w") as f:
                f.write(str(os.getpid()))
            os.kill(os.getppid(), signal.SIGKILL)  # the process this callable was forked from
            time.sleep(300)
    """)
    project.pipeline("""
        targets:
          doomed:
            python: src.kill:server
            outs: [out/doomed.txt]
    """)
    try:
        res = pt("run", timeout=60)  # a hang guard
    finally:
        if project.exists("child.pid"):
            project.kill_at_end.append(int(project.read("child.pid")))
    ok(res, 1)
    assert "Traceback" not in res.stderr, res.stderr
    assert "pipetool: error: the run was stopped: the process that starts Python targets" in res.stderr, res.stderr
    assert "exited unexpectedly (killed by signal 9)" in res.stderr, res.stderr
    assert not pid_alive(int(project.read("child.pid")))
    assert runs_json(project)[-1]["status"] == "failed"

