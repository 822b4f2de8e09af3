"""The run path (runflow.start_run) over a real project folder and store, with a fake
executor in place of processes: what a run records, the lock it writes, and what an
interrupt leaves behind."""
from __future__ import annotations

import json
import textwrap

import pytest

import pipetool.runhooks as runhooks
from pipetool.execute.jobs import Job, JobKey, Outcome
from pipetool.judge import judge_selection
from pipetool.project import open_project
from pipetool.reporting import QuietReporter
from pipetool.runconfig import run_request
from pipetool.runflow import Terminated, start_run
from pipetool.store import runs as store_runs

PIPELINE = """
targets:
  a:
    cmd: make a
    deps: [in.txt]
    outs: [out/a.txt]
  b:
    cmd: make b
    deps: [out/a.txt]
    outs: [out/b.txt]
"""


class FileWritingExecutor:
    """Does each job's work in-process: writes its target's outs (`files`), in order;
    `interrupt` raises that exception instead of finishing the job with that key."""

    def __init__(self, files: dict[str, dict[str, str]], interrupt: dict[str, BaseException]):
        self.files, self.interrupt = files, interrupt
        self.queue: list[Job] = []
        self.submitted: list[JobKey] = []

    def submit(self, job: Job) -> None:
        self.queue.append(job)
        self.submitted.append(job.key)

    def wait_next(self) -> Outcome:
        job = self.queue.pop(0)
        if job.key.target in self.interrupt:
            raise self.interrupt[job.key.target]
        for rel, text in self.files.get(job.key.target, {}).items():
            with open(f"{job.cwd}/{rel}", "w") as f:
                f.write(text)
        return Outcome(job.key, True, "", 0.5)

    def cancel_all(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "pipeline.yaml").write_text(textwrap.dedent(PIPELINE))
    (tmp_path / "in.txt").write_text("1")
    made: list[FileWritingExecutor] = []
    files = {"a": {"out/a.txt": "A"}, "b": {"out/b.txt": "B"}}
    interrupt: dict[str, BaseException] = {}

    def fake_executor(config, root, jobs, needs):
        made.append(FileWritingExecutor(files, interrupt))
        return made[-1]

    monkeypatch.setattr(runhooks, "make_executor", fake_executor)
    return tmp_path, made, files, interrupt


def run(root, **options):
    with open_project(cwd=str(root)) as proj:
        return start_run(proj, run_request(argv=["pipetool", "run"], jobs=1, **options), QuietReporter())


def states(root) -> dict[str, str]:
    with open_project(cwd=str(root)) as proj:
        _, selected = proj.selection(())
        return {n: v.state for n, v in judge_selection(proj.pipeline, proj.graph, proj.hasher, selected,
                                                        proj.records()).items()}


def manifest(root, run_id):
    with open_project(cwd=str(root)) as proj:
        return store_runs.manifest(proj.conn, run_id)


def test_a_run_records_each_target_writes_the_lock_and_a_second_run_does_nothing(project):
    root, made, _, _ = project
    first = run(root)
    assert first.status == "succeeded" and first.exit_code == 0 and first.parent is None
    assert {n: r.action for n, r in first.targets.items()} == {"a": "built", "b": "built"}
    lock = json.loads((root / "pipetool.lock").read_text())
    assert sorted(lock["targets"]) == ["a", "b"]
    m = manifest(root, first.run_id)
    assert m["status"] == "succeeded" and m["argv"] == ["pipetool", "run"]
    assert {n: t["action"] for n, t in m["targets"].items()} == {"a": "built", "b": "built"}
    second = run(root)
    assert second.parent == first.run_id
    assert {n: r.action for n, r in second.targets.items()} == {"a": "skipped", "b": "skipped"}
    assert len(made) == 1  # the no-op run made no executor


def test_a_run_restores_from_the_run_cache_what_an_earlier_run_built(project):
    root, made, files, _ = project
    run(root)
    (root / "in.txt").write_text("2")
    files["a"] = {"out/a.txt": "A2"}
    run(root)
    (root / "in.txt").write_text("1")  # back to the first input: both builds are cached
    third = run(root)
    assert {n: r.action for n, r in third.targets.items()} == {"a": "restored", "b": "restored"}
    assert (root / "out/a.txt").read_text() == "A"
    assert len(made) == 2  # the third run ran no job


@pytest.mark.parametrize("exc, code, signal", [(KeyboardInterrupt(), 130, 2), (Terminated(), 143, 15)])
def test_an_interrupt_keeps_what_finished_and_the_next_run_redoes_only_the_rest(project, exc, code, signal):
    root, made, _, interrupt = project
    interrupt["b"] = exc
    result = run(root)
    assert (result.status, result.exit_code, result.signal) == ("interrupted", code, signal)
    assert {n: r.action for n, r in result.targets.items()} == {"a": "built", "b": "failed"}
    assert result.targets["b"].reason == "interrupted"
    m = manifest(root, result.run_id)
    assert m["status"] == "interrupted"
    assert json.loads((root / "pipetool.lock").read_text())["targets"].keys() == {"a"}
    assert states(root) == {"a": "fresh", "b": "stale"}
    interrupt.clear()
    again = run(root)
    assert made[-1].submitted == [JobKey("b")]
    assert again.status == "succeeded"


def test_a_dry_run_records_nothing_and_says_what_would_run(project):
    root, made, _, _ = project
    result = run(root, dry_run=True)
    assert result.status == "dry-run" and result.run_id is None
    assert {n: r.action for n, r in result.targets.items()} == {"a": "would-run", "b": "would-run"}
    assert result.targets["a"].reason == "never built"
    assert made == [] and not (root / "pipetool.lock").exists()


def test_branch_puts_the_base_runs_outputs_back_and_records_it_as_parent(project):
    root, _made, files, _ = project
    first = run(root)
    (root / "in.txt").write_text("2")
    files["a"] = {"out/a.txt": "A2"}
    run(root)
    assert (root / "out/a.txt").read_text() == "A2"
    (root / "in.txt").write_text("1")
    base = manifest(root, first.run_id)
    with open_project(cwd=str(root), base_params=base["params"]) as proj:
        branched = start_run(proj, run_request(jobs=1), QuietReporter(), base=base)
    assert branched.parent == first.run_id
    assert (root / "out/a.txt").read_text() == "A"
    # a was put back (the workspace held A2); b's bytes were the same in both runs
    assert {n: r.action for n, r in branched.targets.items()} == {"a": "restored", "b": "skipped"}
    assert branched.targets["a"].reason == f"restored from the cache: put back from run {first.run_id}"
    with open_project(cwd=str(root)) as proj:
        kinds = {r["id"]: r["kind"] for r in store_runs.summaries(proj.conn)}
    assert kinds[branched.run_id] == "branch" and kinds[first.run_id] == "run"
