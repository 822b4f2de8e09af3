"""The remote cache end to end (SPEC §8): a CI job simulated with two project folders.

Folder A builds and pushes; folder B holds only A's sources and `pipetool.lock` (fresh
mtimes, no `.pipetool/`), as a fresh clone would. Every flow runs against a `file://`
remote and against a real S3 API server on loopback (moto) through s3fs.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from pipetool.digests import listing_digest

from .remote_support import MotoS3, RemoteUnderTest, digest, file_remote
from .support import Project, assert_invalid, kill_group_quietly, ok

PIPELINE = """
    params:
      scale: 2
      tag: v1
    targets:
      prep:
        cmd: echo prep >> runs.log && mkdir -p out && awk '{print $1 * ${scale}}' in/raw.txt > out/prep.txt
        deps: [in/raw.txt]
        outs: [out/prep.txt]
      feat:
        cmd: >-
          echo feat >> runs.log && mkdir -p out/feat && cp out/prep.txt out/feat/values.txt &&
          printf '#!/bin/sh\\necho tool\\n' > out/feat/tool.sh && chmod +x out/feat/tool.sh
        deps: [out/prep.txt]
        outs: [out/feat/]
      report:
        cmd: echo report >> runs.log && cat out/feat/values.txt > out/report.txt && echo ${tag} >> out/report.txt
        deps: [out/feat/]
        outs: [out/report.txt]
      side:
        cmd: echo side >> runs.log && cp in/side.txt out/side.txt
        deps: [in/side.txt]
        outs: [out/side.txt]
"""
TARGETS = {"prep", "feat", "report", "side"}


@pytest.fixture(scope="module")
def moto():
    server = MotoS3()
    yield server
    server.stop()


@pytest.fixture(params=["file", "s3"])
def remote(request, tmp_path: Path) -> RemoteUnderTest:
    if request.param == "file":
        return file_remote(tmp_path)
    return request.getfixturevalue("moto").remote()


def _source(project: Project) -> None:
    project.pipeline(PIPELINE)
    project.write("in/raw.txt", "1\n2\n3\n")
    project.write("in/side.txt", "side\n")


def _with_remote(url: str) -> str:
    return PIPELINE.replace("    params:", f"    remote: {url}\n    params:", 1)


def _clone(a: Project, tmp_path: Path, name: str = "b") -> Project:
    """A fresh clone of A: its sources and lock only, every mtime new."""
    b = Project(tmp_path / name)
    for rel in ("pipeline.yaml", "pipetool.lock", "in/raw.txt", "in/side.txt"):
        b.write(rel, (a.root / rel).read_text(), dedent=False)
    return b


def _pt(project: Project, remote: RemoteUnderTest, *args: str, **kw):
    return project.pt(*args, env={**remote.env, **kw.pop("env", {})}, **kw)


def _built_in_a(project: Project, remote: RemoteUnderTest) -> None:
    _source(project)
    ok(_pt(project, remote, "run", "--remote", remote.url))
    assert set(project.runs()) == TARGETS


def _actions(res) -> dict[str, tuple[str, str]]:
    return {n: (t["action"], t["reason"]) for n, t in json.loads(res.stdout)["targets"].items()}


def _dangling(remote: RemoteUnderTest) -> list[str]:
    """Entries that name an object the remote lacks or holds corrupt."""
    objects = remote.objects()
    bad = []
    for fp, data in remote.entries().items():
        entry = json.loads(data)
        for out, d in entry["outs"].items():
            names = [d]
            if out in entry["dirs"]:
                listing = json.loads(objects.get(d, b"{}"))
                if d not in objects or listing_digest(listing) != d:
                    bad.append(f"{fp}: listing {d}")
                    continue
                names = list(listing.values())
            bad += [f"{fp}: {n}" for n in names if n not in objects or digest(objects[n]) != n]
    return bad


def test_a_fresh_clone_restores_every_target_from_the_remote_and_runs_nothing(project, remote, tmp_path):
    _built_in_a(project, remote)
    assert remote.entries() and not _dangling(remote)
    b = _clone(project, tmp_path)
    res = ok(_pt(b, remote, "run", "--json", "--remote", remote.url))
    assert b.runs() == []
    actions = _actions(res)
    assert {n: a for n, (a, _) in actions.items()} == dict.fromkeys(TARGETS, "restored")
    assert all("from remote" in why for _, why in actions.values()), actions
    for rel in ("out/prep.txt", "out/feat/values.txt", "out/report.txt", "out/side.txt"):
        assert b.read(rel) == project.read(rel)
    assert os.access(b.root / "out/feat/tool.sh", os.X_OK)
    ok(b.pt("status", "--check"))
    assert b.read("pipetool.lock") == project.read("pipetool.lock")


def test_a_param_changed_in_the_clone_runs_only_that_target_and_its_downstream(project, remote, tmp_path):
    _built_in_a(project, remote)
    b = _clone(project, tmp_path)
    res = ok(_pt(b, remote, "run", "--json", "-S", "tag=v2", "--remote", remote.url))
    assert b.runs() == ["report"]
    actions = _actions(res)
    assert actions["report"][0] == "built"
    assert {actions[n][0] for n in ("prep", "feat", "side")} == {"restored"}
    assert b.read("out/report.txt").endswith("v2\n")


def test_what_the_clone_builds_is_pushed_for_the_next_clone(project, remote, tmp_path):
    _built_in_a(project, remote)
    b = _clone(project, tmp_path)
    b.write("in/raw.txt", "5\n")
    ok(_pt(b, remote, "run", "--remote", remote.url))
    assert set(b.runs()) == {"prep", "feat", "report"}
    c = _clone(b, tmp_path, "c")
    ok(_pt(c, remote, "run", "--remote", remote.url))
    assert c.runs() == []
    assert c.read("out/report.txt") == b.read("out/report.txt")
    assert not _dangling(remote)


@pytest.mark.parametrize("flag", ["--read-only", "--no-push"])
def test_read_only_and_no_push_upload_nothing(project, remote, tmp_path, flag):
    _built_in_a(project, remote)
    before = (remote.objects(), remote.entries())
    b = _clone(project, tmp_path)
    b.write("in/side.txt", "changed\n")
    ok(_pt(b, remote, "run", flag, "-S", "tag=v3", "--remote", remote.url))
    assert set(b.runs()) == {"side", "report"}
    assert (remote.objects(), remote.entries()) == before


def test_a_corrupt_remote_object_is_never_used_and_the_target_rebuilds(project, remote, tmp_path):
    _built_in_a(project, remote)
    victim = digest((project.root / "out/side.txt").read_bytes())
    remote.overwrite(victim, b"evil")  # a different size
    b = _clone(project, tmp_path)
    res = ok(_pt(b, remote, "run", "--json", "--remote", remote.url))
    assert b.runs() == ["side"]
    actions = _actions(res)
    assert actions["side"][0] == "built" and "corrupt" in actions["side"][1], actions["side"]
    assert b.read("out/side.txt") == "side\n"
    assert not list((b.root / ".pipetool/cache/objects").glob(f"{victim[:2]}/*.tmp"))
    # The rebuild was pushed: the remote's copy is whole again.
    assert digest(remote.objects()[victim]) == victim


def test_a_same_size_corruption_is_caught_by_its_hash(project, remote, tmp_path):
    _built_in_a(project, remote)
    data = (project.root / "out/report.txt").read_bytes()
    victim = digest(data)
    remote.overwrite(victim, bytes([data[0] ^ 1]) + data[1:])
    b = _clone(project, tmp_path)
    ok(_pt(b, remote, "run", "--read-only", "--remote", remote.url))
    assert b.runs() == ["report"]
    assert b.read("out/report.txt") == project.read("out/report.txt")


def test_pull_in_a_fresh_clone_makes_status_green_without_building(project, remote, tmp_path):
    _built_in_a(project, remote)
    b = _clone(project, tmp_path)
    res = ok(_pt(b, remote, "pull", "--json", "--remote", remote.url))
    pulled = json.loads(res.stdout)
    assert sorted(pulled["done"]) == sorted(TARGETS) and pulled["missing"] == {}
    assert pulled["transfer"]["objects_down"] >= 5
    ok(b.pt("status", "--check"))
    assert b.runs() == []
    assert os.access(b.root / "out/feat/tool.sh", os.X_OK)
    again = json.loads(ok(_pt(b, remote, "pull", "--json", "--remote", remote.url)).stdout)
    assert sorted(again["present"]) == sorted(TARGETS) and again["transfer"]["objects_down"] == 0


def test_pull_of_named_targets_puts_back_only_those(project, remote, tmp_path):
    _built_in_a(project, remote)
    b = _clone(project, tmp_path)
    ok(_pt(b, remote, "pull", "side", "--remote", remote.url))
    assert b.exists("out/side.txt") and not b.exists("out/prep.txt")


def test_pull_exits_1_naming_what_the_remote_lacks(project, remote, tmp_path):
    _source(project)
    ok(project.pt("run"))  # built without a remote: nothing uploaded
    b = _clone(project, tmp_path)
    res = _pt(b, remote, "pull", "--remote", remote.url)
    ok(res, 1)
    assert "prep: not pulled: not on the remote" in res.stderr


def test_push_uploads_a_run_built_without_the_remote(project, remote, tmp_path):
    _source(project)
    ok(project.pt("run"))
    assert remote.entries() == {}
    res = ok(_pt(project, remote, "push", "--json", "--remote", remote.url))
    pushed = json.loads(res.stdout)
    assert sorted(pushed["done"]) == sorted(TARGETS)
    assert pushed["transfer"]["entries_up"] == 4
    again = json.loads(ok(_pt(project, remote, "push", "--json", "--remote", remote.url)).stdout)
    assert again["transfer"]["objects_up"] == 0  # the remote has them all
    b = _clone(project, tmp_path)
    ok(_pt(b, remote, "run", "--remote", remote.url))
    assert b.runs() == []


def test_branch_reads_through_the_remote(project, remote, tmp_path):
    _built_in_a(project, remote)
    run_id = json.loads(ok(project.pt("runs", "--json")).stdout)[-1]["id"]
    shutil.rmtree(project.root / ".pipetool/cache")  # the local cache is gone
    project.clear_runs()
    res = ok(_pt(project, remote, "branch", "--from", run_id, "--json", "-S", "tag=v9", "--remote", remote.url))
    assert project.runs() == ["report"]
    actions = _actions(res)
    assert actions["report"][0] == "built"
    assert project.read("out/report.txt").endswith("v9\n")


def test_a_killed_push_leaves_no_entry_pointing_at_missing_data(project, remote):
    n = 60
    project.pipeline("targets:\n" + "".join(
        f"  t{i}:\n    cmd: head -c 2000000 /dev/urandom > out/t{i}.bin\n    outs: [out/t{i}.bin]\n"
        for i in range(n)))
    ok(project.pt("run"))
    p = project.popen("push", "-j", "1", "--remote", remote.url, env=remote.env)
    deadline = time.monotonic() + 30
    while remote.count("objects") == 0 and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    kill_group_quietly(p.pid)
    p.wait(timeout=10)
    assert p.returncode == -signal.SIGKILL, "the push finished before it could be killed"
    assert len(remote.entries()) < n
    assert _dangling(remote) == []
    # A later push completes what the killed one left.
    ok(_pt(project, remote, "push", "--remote", remote.url))
    assert len(remote.entries()) == n and _dangling(remote) == []


def test_remote_flag_beats_the_environment_which_beats_the_pipeline(project, remote, tmp_path):
    _source(project)
    project.pipeline(_with_remote("does/not/matter"))
    ok(project.pt("run", "--no-push"))
    env = {**remote.env, "PIPETOOL_REMOTE": remote.url}
    ok(project.pt("push", env=env))
    assert len(remote.entries()) == 4
    assert not (project.root / "does").exists()
    other = tmp_path / "other"
    ok(project.pt("push", "--remote", str(other), env=env))
    assert len(list((other / "runcache").iterdir())) == 4


def test_a_remote_whose_backend_is_missing_is_exit_2_naming_the_extra(project):
    _source(project)
    project.pipeline(_with_remote("gs://bucket/cache"))
    assert_invalid(project.pt("run"), "gs://bucket/cache", 'pip install "pipetool[gcs]"', project=project)
    assert_invalid(project.pt("pull"), 'pipetool[gcs]')
    assert_invalid(project.pt("run", "--remote", "nosuch://x"), "nosuch://x", project=project)


def test_push_and_pull_without_any_remote_say_how_to_set_one(project):
    _source(project)
    assert_invalid(project.pt("pull"), "no remote", "--remote")


def test_an_unreachable_remote_is_a_warning_and_the_run_builds_locally(project):
    _source(project)
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}
    res = ok(project.pt("run", "--remote", "s3://bucket/cache", env=env, timeout=120))  # a hang guard
    assert set(project.runs()) == TARGETS
    # said once reading (then the remote is left alone), once writing
    assert res.stderr.count("warning: remote s3://bucket/cache: ") == 2, res.stderr
    assert "; building locally\n" in res.stderr, res.stderr
    assert "; this run's outputs were not uploaded\n" in res.stderr, res.stderr


def test_status_imports_no_optional_backend_even_with_a_remote_configured(project):
    import subprocess
    import sys

    _source(project)
    project.pipeline(_with_remote("s3://bucket/cache"))
    code = ("import sys, pipetool\n"
            f"pipetool.status(cwd={str(project.root)!r})\n"
            "print(sorted(m for m in ('fsspec', 's3fs', 'dask', 'distributed', 'loky', 'joblib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
