"""`--executor dask` through the real command, on real Dask clusters (loopback only).

Most tests share one module-scoped LocalCluster of worker processes (2 workers x 2
threads, each declaring gpu=1) and pass `--scheduler`; the others start pipetool's own
cluster, or `dask scheduler` / `dask worker` subprocesses. Parallelism is shown by
handshakes (a target waits for another to have started) and by recorded timestamps,
never by durations.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest

from .support import Project, assert_invalid, group_members, ok, pid_alive, run_json, show_json

distributed = pytest.importorskip("distributed")

BIN = Path(sys.executable).parent
# Wait (at most ~15 s) until target NAME has started; fail if it never does.
AWAIT = 'for i in $(seq 300); do [ -e started.{0} ] && break; sleep 0.05; done; [ -e started.{0} ]'


def _cluster(**kw):
    kw.setdefault("threads_per_worker", 1)
    return distributed.LocalCluster(processes=True, dashboard_address=None, silence_logs=logging.ERROR,
                                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, **kw)


@pytest.fixture(scope="module")
def cluster():
    c = _cluster(n_workers=2, threads_per_worker=2, resources={"gpu": 1})
    yield c
    c.close()


@pytest.fixture
def dask(cluster):
    """The options that send a run to the shared cluster."""
    return ("--executor", "dask", "--scheduler", cluster.scheduler_address)


# -- builds -----------------------------------------------------------------------------

PIPELINE = f"""
    params:
      scale: 3
    targets:
      s1:
        cmd: touch started.s1 && {AWAIT.format("s2")} && echo one > out/s1.txt
        outs: [out/s1.txt]
      s2:
        cmd: touch started.s2 && {AWAIT.format("s1")} && echo two > out/s2.txt && echo loud
        outs: [out/s2.txt]
      py:
        python: steps:combine
        params: [scale]
        deps: [out/s1.txt, out/s2.txt]
        outs: [out/py.txt]
      final:
        cmd: echo final >> runs.log && cat out/py.txt out/py.txt > out/final.txt
        deps: [out/py.txt]
        outs: [out/final.txt]
"""

STEPS = '''
import os


def combine(deps, outs, scale):
    print("combining", len(deps), "in", os.getcwd())
    outs[0].write_text("".join(d.read_text() for d in deps) * scale)
'''


def _pipeline(project: Project) -> None:
    project.write("steps.py", STEPS)
    project.pipeline(PIPELINE)


def _summary(manifest: dict) -> dict:
    return {n: (t["action"], t["fingerprint"], t["outs"]) for n, t in manifest["targets"].items()}


def test_dask_builds_commands_and_callables_in_parallel_like_a_local_run(project, tmp_path, dask):
    _pipeline(project)
    local = Project(tmp_path / "local")
    local.root.mkdir()
    _pipeline(local)

    on_dask = run_json(project, "run", *dask)  # s1 and s2 wait for each other: they overlap
    here = run_json(local, "run", "-j", "2")
    assert on_dask["status"] == here["status"] == "succeeded"
    assert _summary(show_json(project, on_dask["run_id"])) == _summary(show_json(local, here["run_id"]))
    assert (project.root / "pipetool.lock").read_bytes() == (local.root / "pipetool.lock").read_bytes()
    assert project.read("out/final.txt") == local.read("out/final.txt") == "one\ntwo\n" * 6
    logs = project.root / ".pipetool" / "logs" / on_dask["run_id"]
    assert (logs / "py.log").read_text() == f"combining 2 in {project.root}\n"
    assert (logs / "s2.log").read_text() == "loud\n"
    assert not (logs / "s1.log").exists(), "no output, no log"
    ok(project.pt("run", *dask))
    assert project.runs() == ["final"], "a second run is a no-op"


def test_a_failing_target_with_keep_going_on_dask(project, dask):
    project.pipeline("""
        targets:
          bad:
            cmd: echo boom && exit 3
            outs: [out/bad.txt]
          after:
            cmd: echo after >> runs.log && cat out/bad.txt > out/after.txt
            deps: [out/bad.txt]
            outs: [out/after.txt]
          good:
            cmd: echo good >> runs.log && echo g > out/good.txt
            outs: [out/good.txt]
    """)
    res = ok(project.pt("run", "-k", *dask), 1)
    assert "exit status 3" in res.stderr and "boom" in res.stderr, res.stderr
    assert project.runs() == ["good"]
    manifest = show_json(project, json.loads(ok(project.pt("runs", "--json")).stdout)[0]["id"])
    assert {n: t["action"] for n, t in manifest["targets"].items()} == {
        "bad": "failed", "after": "not-run", "good": "built"}


# -- resources ---------------------------------------------------------------------------

GPU = ('echo "$PIPETOOL_TARGET $PPID {} $(date +%s.%N)" >> stamps.log')


def test_dask_keeps_gpu_targets_apart_on_workers_declaring_one_gpu(project, dask):
    # Each worker has 2 threads but one GPU: two gpu targets on one worker must not overlap.
    # $PPID is the worker process that started the command.
    names = ["g1", "g2", "g3", "g4"]
    project.pipeline("targets:\n" + "".join(f"""
          {n}:
            cmd: {GPU.format("start")} && sleep 0.3 && echo {n} > out/{n}.txt && {GPU.format("end")}
            outs: [out/{n}.txt]
            resources: {{gpu: 1}}""" for n in names))
    ok(project.pt("run", "-j", "4", *dask))
    spans: dict[str, tuple[str, float, float]] = {}
    for line in project.read("stamps.log").splitlines():
        name, worker, what, when = line.split()
        w, start, end = spans.get(name, (worker, 0.0, 0.0))
        spans[name] = (worker, float(when), end) if what == "start" else (w, start, float(when))
    assert sorted(spans) == names
    for a, b in combinations(names, 2):
        (wa, sa, ea), (wb, sb, eb) = spans[a], spans[b]
        if wa == wb:
            assert ea <= sb or eb <= sa, f"{a} and {b} overlapped on worker {wa}: {spans}"


def test_a_target_needing_more_than_any_worker_has_fails_clearly(project, dask):
    project.pipeline("""
        targets:
          big:
            cmd: echo big >> runs.log && echo > out/big.txt
            outs: [out/big.txt]
            resources: {gpu: 2, tpu: 5}
          small:
            cmd: echo small >> runs.log && echo > out/small.txt
            outs: [out/small.txt]
            resources: {tpu: 5}
    """)
    res = ok(project.pt("run", "-k", *dask), 1)
    assert "needs gpu=2, more than any Dask worker has (gpu=1)" in res.stderr, res.stderr
    assert project.runs() == ["small"], "tpu is declared by no worker: dropped, not waited for"


def test_declared_resources_also_hold_locally_on_dask(project, dask):
    # --resources gpu=1 with workers declaring gpu=1 each: one gpu target at a time overall.
    project.pipeline("targets:\n" + "".join(f"""
          {n}:
            cmd: {GPU.format("start")} && sleep 0.2 && echo > out/{n}.txt && {GPU.format("end")}
            outs: [out/{n}.txt]
            resources: {{gpu: 1}}""" for n in ("a", "b")))
    ok(project.pt("run", "-j", "4", "--resources", "gpu=1", *dask))
    t = {(ln.split()[0], ln.split()[2]): float(ln.split()[3]) for ln in project.read("stamps.log").splitlines()}
    assert t[("a", "end")] <= t[("b", "start")] or t[("b", "end")] <= t[("a", "start")], t


# -- the cluster -------------------------------------------------------------------------

def test_jobs_default_to_the_clusters_worker_threads(cluster, tmp_path):
    from pipetool.execute.placement import resolve_jobs
    from pipetool.runconfig import make_config

    config = make_config("dask", cluster.scheduler_address)
    assert resolve_jobs(config, None, str(tmp_path)) == 4  # 2 workers x 2 threads
    assert resolve_jobs(config, 3, str(tmp_path)) == 3


def test_the_probe_reports_a_path_a_worker_cannot_read(cluster):
    from pipetool.execute.daskworker import probe

    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        replies = client.run(probe, "/nonexistent-pipetool-root/.pipetool/tmp/probe-x", "token")
    assert len(replies) == 2
    for reply in replies.values():
        assert reply == "!cannot read /nonexistent-pipetool-root/.pipetool/tmp/probe-x: No such file or directory"


@pytest.fixture
def empty_cluster():
    c = _cluster(n_workers=0)
    yield c
    c.close()


def test_a_cluster_without_workers_is_refused_before_the_run_is_recorded(project, empty_cluster):
    project.pipeline("""
        targets:
          a:
            cmd: echo a >> runs.log && echo > out/a.txt
            outs: [out/a.txt]
    """)
    addr = empty_cluster.scheduler_address
    for jobs in ((), ("-j", "1")):
        res = project.pt("run", *jobs, "--executor", "dask", "--scheduler", addr)
        assert_invalid(res, "has no workers", addr, project=project)
    assert json.loads(ok(project.pt("runs", "--json")).stdout) == []


def _unshare_flags(target: Path) -> list[str] | None:
    """unshare flags that can mount a tmpfs over `target` here (root, or user namespaces)."""
    if shutil.which("unshare") is None:
        return None
    for flags in (["-m"], ["-Urm"]):
        res = subprocess.run(["unshare", *flags, "sh", "-c", f"mount -t tmpfs tmpfs '{target}'"],
                             capture_output=True)
        if res.returncode == 0:
            return flags
    return None


def test_a_worker_that_does_not_see_the_project_fails_the_run_before_anything_runs(project, empty_cluster):
    # A real worker whose filesystem view differs: it runs in a mount namespace where an
    # empty tmpfs hides the project's folder, as on a machine without the shared mount.
    flags = _unshare_flags(project.root)
    if flags is None:
        pytest.skip("cannot make a mount namespace here (unshare)")
    project.pipeline("""
        targets:
          a:
            cmd: echo a >> runs.log && echo > out/a.txt
            outs: [out/a.txt]
    """)
    addr = empty_cluster.scheduler_address
    worker = subprocess.Popen(
        ["unshare", *flags, "sh", "-c", (f"mount -t tmpfs tmpfs '{project.root}' && exec '{BIN}/dask' worker "
         f"{addr} --nthreads 1 --no-dashboard --host 127.0.0.1 --name blind")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    project.kill_at_end.append(worker.pid)
    try:
        with distributed.Client(addr, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=30)
        for jobs in ((), ("-j", "1")):
            res = project.pt("run", *jobs, "--executor", "dask", "--scheduler", addr)
            assert_invalid(res, "Dask worker", "(blind)", f"the project directory {project.root}",
                           "No such file or directory", project=project)
        assert json.loads(ok(project.pt("runs", "--json")).stdout) == []
        assert os.listdir(project.root / ".pipetool" / "tmp") == [], "probe files left behind"
    finally:
        worker.terminate()
        worker.wait(timeout=15)


def test_without_a_scheduler_pipetool_starts_and_stops_its_own_cluster(project):
    project.pipeline(f"""
        targets:
          s1:
            cmd: echo $PPID > worker.s1 && touch started.s1 && {AWAIT.format("s2")} && echo 1 > out/s1.txt
            outs: [out/s1.txt]
          s2:
            cmd: echo $PPID > worker.s2 && touch started.s2 && {AWAIT.format("s1")} && echo 2 > out/s2.txt
            outs: [out/s2.txt]
    """)
    ok(project.pt("run", "-j", "2", "--executor", "dask"))
    workers = {int(project.read(f"worker.{n}")) for n in ("s1", "s2")}
    assert len(workers) == 2, "two one-thread workers for -j 2"
    assert not any(pid_alive(w) for w in workers), "the cluster's workers outlived the run"


def test_dask_scheduler_and_worker_started_from_the_command_line(project, tmp_path):
    sfile = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--scheduler-file", str(sfile), "--no-dashboard",
                               "--dashboard-address", "127.0.0.1:0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    project.kill_at_end.append(procs[0].pid)
    try:
        project.wait_for(lambda: sfile.exists() and sfile.stat().st_size > 0, 30, "the scheduler file")
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", "--scheduler-file", str(sfile), "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        project.kill_at_end.append(procs[1].pid)
        addr = json.loads(sfile.read_text())["address"]
        with distributed.Client(addr, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=30)
        _pipeline(project)
        project.pipeline(PIPELINE.replace(f" && {AWAIT.format('s2')}", "").replace(f" && {AWAIT.format('s1')}", ""))
        out = run_json(project, "run", "--executor", "dask", "--scheduler", addr)
        assert {n: t["action"] for n, t in out["targets"].items()} == dict.fromkeys(["s1", "s2", "py", "final"], "built")
        assert project.read("out/final.txt") == "one\ntwo\n" * 6
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=15)


# -- interrupts --------------------------------------------------------------------------

SLOW = """
    targets:
      slow:
        cmd: echo $$ > pid && sleep 30 && echo > out/slow.txt
        outs: [out/slow.txt]
      pyslow:
        python: steps:slow
        outs: [out/pyslow.txt]
"""

SLOW_STEPS = '''
import os
import time


def slow(outs):
    with open("pypid", "w") as f:
        f.write(str(os.getpid()))
    time.sleep(30)
    outs[0].write_text("done")
'''


def _interrupt(project: Project, args: tuple[str, ...], whole_group: bool) -> None:
    project.write("steps.py", SLOW_STEPS)
    project.pipeline(SLOW)
    proc = project.popen("run", "-j", "2", *args)
    pids = [int(project.wait_file(f)) for f in ("pid", "pypid")]
    project.kill_at_end.extend(pids)
    if whole_group:  # a terminal's ^C: pipetool and its cluster's workers get SIGINT
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        raise AssertionError("pipetool did not exit within 15 s of SIGINT") from None
    assert proc.returncode == 130, proc.stderr.read() if proc.stderr else ""
    project.wait_for(lambda: not any(group_members(p) for p in pids), 10,
                     "the command and the callable's process to be gone")
    manifest = show_json(project, json.loads(ok(project.pt("runs", "--json")).stdout)[0]["id"])
    assert manifest["status"] == "interrupted"
    assert {t["action"] for t in manifest["targets"].values()} == {"failed"}
    assert not project.exists("out/slow.txt") and not project.exists("out/pyslow.txt")


def test_ctrl_c_stops_commands_and_callables_on_the_workers(project, dask):
    _interrupt(project, dask, whole_group=False)


def test_ctrl_c_to_the_whole_group_stops_them_on_pipetools_own_cluster(project):
    _interrupt(project, ("--executor", "dask"), whole_group=True)


def test_without_distributed_the_dask_executor_says_what_to_install(project):
    project.pipeline("""
        targets:
          a:
            cmd: echo a >> runs.log && echo > out/a.txt
            outs: [out/a.txt]
    """)
    code = ("import sys; sys.modules['distributed'] = None; from pipetool.cli import main; "
            "sys.argv = ['pipetool', 'run', '--executor', 'dask']; main()")
    res = subprocess.run([sys.executable, "-c", code], cwd=project.root, capture_output=True, text=True,
                         timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("PIPETOOL_")})
    res.args = ["pipetool", "run", "--executor", "dask"]
    assert_invalid(res, 'pip install "pipetool[dask]"', project=project)

