"""The store under stress (hardening items 6-9): file names that are not UTF-8, a read-only
project, a full disk while recording, a damaged SQLite page and `pipetool recover`.

Read-only media and a full disk are real: a read-only bind mount and a small tmpfs in a
user+mount namespace (`unshare -rm`, so it works without root and chmod cannot be
bypassed by a root test run), and RLIMIT_FSIZE for a file-size limit.
"""
from __future__ import annotations

import functools
import json
import os
import resource
import shlex
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from .support import PIPETOOL, _env, experiment, ok, run_id, run_json, runs_json, status_json

CAFE = b"caf\xe9.txt"  # Latin-1 "café.txt": not valid UTF-8


@functools.cache
def _namespace_problem(kind: str) -> str:
    """Why a user+mount namespace cannot give us `kind` ("ro" bind mounts, "tmpfs") here; '' when it can."""
    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"pipetool-ns-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        if kind == "ro":
            script = 'mount --bind -o ro "$0" "$0" && ! (echo x > "$0/f") 2>/dev/null'
        else:
            script = 'mount -t tmpfs -o size=64k tmpfs "$0" && ! head -c 100000 /dev/zero > "$0/f" 2>/dev/null'
        res = subprocess.run(["unshare", "-rm", "sh", "-c", script, str(probe)], capture_output=True, text=True,
                             timeout=60)
        return "" if res.returncode == 0 else f"unshare -rm cannot make a {kind} mount here: {res.stderr.strip()}"
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def _need(kind: str) -> None:
    problem = _namespace_problem(kind)
    if problem:
        pytest.skip(problem)


def pt_read_only(project, *args: str) -> subprocess.CompletedProcess:
    """`pipetool ARGS` in the project seen through a read-only bind mount of its root."""
    script = 'mount --bind -o ro "$0" "$0" && cd "$0" && exec "$@"'
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, str(project.root), *PIPETOOL, *args],
                          env=_env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def steps_on_tmpfs(project, size: str, steps: list[str]) -> list[tuple[int, str, str]]:
    """Run shell `steps` (PT stands for pipetool) in one user+mount namespace whose
    `.pipetool/` is a fresh tmpfs of `size`; each step's (exit status, stdout, stderr)."""
    out = project.root.parent / "steps"
    out.mkdir()
    pt = " ".join(shlex.quote(a) for a in PIPETOOL)
    lines = ["cd " + shlex.quote(str(project.root)), "mkdir -p .pipetool",
             f"mount -t tmpfs -o size={size} tmpfs .pipetool || exit 97"]
    for i, step in enumerate(steps):
        o, e, r = (shlex.quote(str(out / f"{i}.{x}")) for x in ("out", "err", "rc"))
        lines.append(f"{step.replace('PT', pt)} > {o} 2> {e}; echo $? > {r}")
    res = subprocess.run(["unshare", "-rm", "sh", "-c", "\n".join(lines)], env=_env(), capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    return [(int((out / f"{i}.rc").read_text()), (out / f"{i}.out").read_text(), (out / f"{i}.err").read_text())
            for i in range(len(steps))]


def no_traceback_nor_deletion_advice(err: str) -> None:
    assert "Traceback" not in err, err
    for advice in ("remove it", "remove .pipetool", "delete it", "rm -"):
        assert advice not in err, err


# -- item 6: file names that are not UTF-8 ------------------------------------------------------

def test_a_file_name_that_is_not_utf8_survives_run_status_restore_and_checkout(project, pt):
    root = os.fsencode(project.root)
    project.write("data/a.txt", "alpha\n")
    with open(root + b"/data/" + CAFE, "wb") as f:
        f.write(b"x\n")
    project.pipeline(r"""
        targets:
          copy:
            cmd: |-
              echo copy >> runs.log && rm -rf out && cp -r data out && printf 'copied\n' >> "$(printf 'out/caf\351.txt')" && chmod +x "$(printf 'out/caf\351.txt')"
            deps: [data/]
            outs: [out/]
        """)
    first = run_id(project, "run")
    bad_out = root + b"/out/" + CAFE
    with open(bad_out, "rb") as f:
        first_bytes = f.read()
    assert first_bytes == b"x\ncopied\n"
    ok(pt("status", "--check"))
    lock = json.loads(project.read("pipetool.lock"))  # the name round-trips through JSON's escapes
    assert lock["targets"]["copy"]["execs"] == [os.fsdecode(b"out/" + CAFE)]

    with open(root + b"/data/" + CAFE, "ab") as f:
        f.write(b"edited\n")
    assert status_json(project)["targets"]["copy"] == {"state": "stale", "reasons": ["dep changed: data/"]}
    ok(pt("run"))
    assert project.runs() == ["copy", "copy"]
    with open(bad_out, "rb") as f:
        second_bytes = f.read()
    assert second_bytes == b"x\nedited\ncopied\n"

    shutil.rmtree(project.root / "out")
    res = run_json(project, "run")
    assert res["targets"]["copy"]["action"] == "restored"
    assert project.runs() == ["copy", "copy"]
    assert sorted(os.listdir(root + b"/out")) == [b"a.txt", CAFE]
    with open(bad_out, "rb") as f:
        assert f.read() == second_bytes
    assert os.stat(bad_out).st_mode & 0o100

    ok(pt("checkout", first))
    with open(bad_out, "rb") as f:
        assert f.read() == first_bytes
    assert project.runs() == ["copy", "copy"]
    assert [m["status"] for m in runs_json(project)] == ["succeeded"] * 3


# -- item 7: a read-only project -----------------------------------------------------------------

READ_COMMANDS = [("status",), ("status", "--json"), ("runs", "--json"), ("dag",), ("check",)]


def test_read_commands_answer_in_a_read_only_project_as_they_do_in_a_writable_one(project, pt):
    _need("ro")
    experiment(project)
    first = run_id(project, "run")
    run_id(project, "run", "-S", "train.lr=0.1")
    commands = [*READ_COMMANDS, ("show", first, "--json"), ("diff", first, "--json")]
    writable = {c: ok(pt(*c)).stdout for c in commands}
    state = (project.root / ".pipetool" / "state.db").read_bytes()
    for c in commands:
        res = pt_read_only(project, *c)
        assert res.returncode == 0, (c, res.stderr)
        no_traceback_nor_deletion_advice(res.stderr)
        assert res.stdout == writable[c], c
    assert (project.root / ".pipetool" / "state.db").read_bytes() == state


@pytest.mark.parametrize("command", [("run",), ("branch", "--from", "FIRST"), ("checkout", "FIRST"), ("gc",)])
def test_commands_that_record_refuse_a_read_only_project_naming_the_folder(project, pt, command):
    _need("ro")
    experiment(project)
    first = run_id(project, "run")
    project.clear_runs()
    res = pt_read_only(project, *(first if a == "FIRST" else a for a in command))
    assert res.returncode == 2, res.stderr
    no_traceback_nor_deletion_advice(res.stderr)
    assert f"cannot write to {project.root / '.pipetool'} (Read-only file system)" in res.stderr
    assert project.runs() == []


def test_a_fresh_clone_on_read_only_media_answers_from_the_lock_and_run_says_why_not(project, pt):
    _need("ro")
    experiment(project)
    run_id(project, "run")
    shutil.rmtree(project.root / ".pipetool")  # what a clone of the repository holds
    project.clear_runs()
    res = pt_read_only(project, "status", "--json")
    assert res.returncode == 0, res.stderr
    assert {n: t["state"] for n, t in json.loads(res.stdout)["targets"].items()} == {
        "prep": "fresh", "train": "fresh", "eval": "fresh"}
    res = pt_read_only(project, "runs", "--json")
    assert (res.returncode, json.loads(res.stdout)) == (0, [])
    res = pt_read_only(project, "run")
    assert res.returncode == 2, res.stderr
    no_traceback_nor_deletion_advice(res.stderr)
    assert f"cannot write to {project.root} (Read-only file system)" in res.stderr
    assert project.runs() == [] and not project.exists(".pipetool")


# -- item 8: a full disk while recording --------------------------------------------------------

def _temp_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.name.endswith(".tmp") or "pipetool-tmp" in p.name)


def test_a_full_disk_while_recording_ends_clearly_keeps_what_finished_and_the_next_run_works(project):
    _need("tmpfs")
    project.write("FILL")  # b's command fills .pipetool's disk the first time it runs
    project.pipeline("""
        targets:
          a:
            cmd: echo a >> runs.log && echo alpha > out/a.txt
            outs: [out/a.txt]
          b:
            cmd: |-
              echo b >> runs.log && if [ -e FILL ]; then rm FILL; head -c 4000000 /dev/zero > .pipetool/filler 2>/dev/null; fi; cat out/a.txt > out/b.txt
            deps: [out/a.txt]
            outs: [out/b.txt]
        """)
    full, temps, status_full, runs_full, status, again, check, history = steps_on_tmpfs(project, "1m", [
        "PT run -j 1", "find . -name '*.tmp' -o -name '*pipetool-tmp*'", "PT status --json", "PT runs --json",
        "rm .pipetool/filler && PT status --json", "PT run -j 1", "PT status --check", "PT runs --json"])
    code, _, err = full
    print(err)
    assert code == 1, err
    no_traceback_nor_deletion_advice(err)
    assert "the disk is full: pipetool could not write" in err and "state.db;" in err
    assert "not recorded: target 'b' as built" in err
    assert temps == (0, "", "")
    for res in (status_full, status):  # read commands answer on the full disk as after it is freed
        assert res[0] == 0, res[2]
        assert {n: t["state"] for n, t in json.loads(res[1])["targets"].items()} == {"a": "fresh", "b": "stale"}
    assert runs_full[0] == 0, runs_full[2]
    assert [m["targets"]["a"]["action"] for m in json.loads(runs_full[1])] == ["built"]
    assert again[0] == 0 and check[0] == 0, again[2] + check[2]
    assert project.runs() == ["a", "b", "b"]  # a was recorded before the disk filled: not rebuilt
    runs = json.loads(history[1])
    assert [m["targets"]["a"]["action"] for m in runs] == ["built", "skipped"]
    assert [m["status"] for m in runs] == ["interrupted", "succeeded"]


def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return apply


def test_a_file_size_limit_while_caching_an_output_ends_clearly_and_leaves_no_temp_file(project, pt):
    project.pipeline("""
        targets:
          big:
            cmd: ulimit -S -f unlimited && echo big >> runs.log && head -c 3000000 /dev/urandom > out/big.bin
            outs: [out/big.bin]
        """)
    res = subprocess.run([*PIPETOOL, "run"], cwd=project.root, env=_env(), capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL,
                         preexec_fn=_file_size_limit(1_000_000))
    assert res.returncode == 1, res.stderr
    no_traceback_nor_deletion_advice(res.stderr)
    assert "a file reached the file-size limit: pipetool could not write" in res.stderr
    assert "not recorded: the cache copy of out/big.bin" in res.stderr
    assert _temp_files(project.root) == []
    ok(pt("status", "--check"))  # the build itself was recorded before the cache copy failed
    assert run_json(project, "run")["status"] == "succeeded"
    assert project.runs() == ["big"]
    assert [m["status"] for m in runs_json(project)] == ["failed", "succeeded"]


# -- item 9: a damaged SQLite page and `pipetool recover` ------------------------------------------

def _corrupt_runs_table(db: Path) -> bytes:
    """Overwrite the page holding the runs table (mid-file) with garbage; the file's bytes."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    root_page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='runs'").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    assert 1 < root_page < pages
    with open(db, "r+b") as f:
        f.seek((root_page - 1) * page)
        f.write(b"\xa5" * page)
    return db.read_bytes()


def test_a_damaged_store_is_reported_and_recover_brings_the_runs_back(project, pt):
    experiment(project)
    first = run_id(project, "run", "-S", "train.lr=0.1")
    run_id(project, "run")  # the workspace holds the pipeline's own params
    before = runs_json(project)
    db = project.root / ".pipetool" / "state.db"
    damaged = _corrupt_runs_table(db)

    for command in (("runs",), ("runs", "--json"), ("show", first), ("run",)):
        res = pt(*command)
        assert res.returncode == 2, (command, res.stderr)
        no_traceback_nor_deletion_advice(res.stderr)
        assert f"{db} is damaged (database disk image is malformed" in res.stderr
        assert "Run `pipetool recover`" in res.stderr
    assert project.runs() == ["prep", "train", "eval", "train", "eval"]

    res = ok(pt("recover"))
    assert "recovered 2 run(s)" in res.stdout
    aside = list(db.parent.glob("state.db.damaged-*"))
    assert [p.read_bytes() for p in aside if not p.name.endswith(("-wal", "-shm"))] == [damaged]
    assert runs_json(project) == before
    ok(pt("status", "--check"))
    again = run_json(project, "run")
    assert {t["action"] for t in again["targets"].values()} == {"skipped"}
    ok(pt("checkout", first))
    assert project.read("out/model.txt").endswith("lr=0.1\n")
    assert project.runs() == ["prep", "train", "eval", "train", "eval"]  # restored, not rebuilt
