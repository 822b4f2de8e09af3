"""pipetool.lock: deterministic sorted JSON, written atomically and only when it changed;
a corrupt lock is a StateError, never a traceback."""
from __future__ import annotations

import json
import os

import pytest

import pipetool
from pipetool.errors import StateError
from pipetool.fingerprint.trace import Trace
from pipetool.store import lockfile
from pipetool.store.failures import StoreWriteError
from pipetool.store.lockfile import LOCK_NAME, read_lock, render_lock, write_lock
from pipetool.store.records import Record


def rec(name: str, **extra) -> Record:
    t = Trace(f"cmd:make {name}", {"train.lr": 0.01}, {f"{name}.in": f"h-{name}-in"}, {})
    return Record(t.fingerprint, {f"{name}.out": f"h-{name}"}, t.to_dict())


RECORDS = {n: rec(n) for n in ("train", "prepare", "evaluate", "features")}


def test_the_lock_is_sorted_json_whatever_order_records_come_in():
    forward = render_lock(RECORDS)
    backward = render_lock(dict(reversed(list(RECORDS.items()))))
    assert forward == backward
    data = json.loads(forward)
    assert data["version"] == 1
    assert list(data["targets"]) == sorted(RECORDS)
    assert forward == json.dumps(data, indent=2, sort_keys=True) + "\n"


def test_a_lock_entry_holds_the_fingerprint_trace_and_outs():
    entry = json.loads(render_lock({"train": RECORDS["train"]}))["targets"]["train"]
    assert entry["fingerprint"] == RECORDS["train"].fingerprint
    assert entry["outs"] == {"train.out": "h-train"}
    assert entry["code"] == "cmd:make train"
    assert entry["params"] == {"train.lr": 0.01}
    assert entry["deps"] == {"train.in": "h-train-in"}
    assert "env" not in entry  # empty parts are left out


def test_a_record_whose_trace_is_json_text_renders_the_same():
    r = RECORDS["train"]
    as_text = Record(r.fingerprint, r.outs, json.dumps(r.trace))
    assert render_lock({"train": as_text}) == render_lock({"train": r})


def test_write_then_read_round_trips(tmp_path):
    assert write_lock(str(tmp_path), RECORDS) is True
    entries = read_lock(str(tmp_path))
    assert set(entries) == set(RECORDS)
    for name, r in RECORDS.items():
        assert entries[name]["fingerprint"] == r.fingerprint
        assert entries[name]["outs"] == r.outs


def test_unchanged_content_is_not_rewritten(tmp_path):
    write_lock(str(tmp_path), RECORDS)
    path = tmp_path / LOCK_NAME
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = os.stat(path)
    assert write_lock(str(tmp_path), dict(reversed(list(RECORDS.items())))) is False
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_changed_content_replaces_the_file_atomically(tmp_path):
    write_lock(str(tmp_path), RECORDS)
    path = tmp_path / LOCK_NAME
    old_inode = os.stat(path).st_ino
    changed = {**RECORDS, "train": rec("train2")}
    assert write_lock(str(tmp_path), changed) is True
    assert os.stat(path).st_ino != old_inode  # a new file renamed into place, not rewritten in place
    assert path.read_text() == render_lock(changed)
    assert sorted(os.listdir(tmp_path)) == [LOCK_NAME]  # no temp file left behind


def test_a_failure_while_writing_leaves_the_old_lock_intact(tmp_path, monkeypatch):
    write_lock(str(tmp_path), RECORDS)
    original = (tmp_path / LOCK_NAME).read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lockfile.os, "fsync", boom)
    with pytest.raises(StoreWriteError, match=r"^the disk is full: .*not recorded: pipetool.lock"):
        write_lock(str(tmp_path), {**RECORDS, "train": rec("train2")})
    assert (tmp_path / LOCK_NAME).read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == [LOCK_NAME]  # its temporary file is gone too


def test_no_lock_reads_as_no_entries(tmp_path):
    assert read_lock(str(tmp_path)) == {}


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe\x00",
        b"[]",
        b'{"version": 2, "targets": {}}',
        b'{"version": 1}',
        b'{"version": 1, "targets": []}',
        b"",
    ],
)
def test_a_corrupt_lock_is_a_state_error(tmp_path, content):
    (tmp_path / LOCK_NAME).write_bytes(content)
    with pytest.raises(StateError) as ei:
        read_lock(str(tmp_path))
    assert LOCK_NAME in ei.value.message


PIPELINE = "targets:\n  a:\n    cmd: echo hi > out.txt\n    outs: [out.txt]\n"


@pytest.mark.parametrize(
    "targets",
    [
        {"a": 5},
        {"a": "x"},
        {"a": {"fingerprint": "f", "outs": ["out.txt"]}},
        {"a": {"fingerprint": 3, "outs": {"out.txt": 7}}},
        {"a": {"fingerprint": "f", "outs": {}, "params": [1]}},
    ],
)
def test_a_lock_with_a_malformed_entry_is_a_state_error_when_used(tmp_path, targets):
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"version": 1, "targets": targets}))
    with pytest.raises(StateError) as ei:
        pipetool.status(cwd=str(tmp_path))
    assert ei.value.message.startswith(f"{LOCK_NAME}: entry of target 'a' "), ei.value.message


def test_a_lock_from_a_run_is_read_back_by_status_in_a_fresh_clone(tmp_path):
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    result = pipetool.run(cwd=str(tmp_path), jobs=1)
    assert result.status == "succeeded"
    lock_text = (tmp_path / LOCK_NAME).read_text()
    import shutil

    shutil.rmtree(tmp_path / ".pipetool")  # a fresh clone: only the committed lock
    report = pipetool.status(cwd=str(tmp_path))
    assert report.targets["a"].state == "fresh"
    assert (tmp_path / LOCK_NAME).read_text() == lock_text


def test_a_file_name_that_is_not_utf8_round_trips_through_the_lock(tmp_path):
    name = os.fsdecode(b"out/caf\xe9.sh")  # an executable out file whose name is Latin-1
    t = Trace("cmd:make", {}, {}, {})
    trace = {**t.to_dict(), "execs": [name]}
    write_lock(str(tmp_path), {"build": Record(t.fingerprint, {"out/": "h-out"}, trace)})
    text = (tmp_path / LOCK_NAME).read_text(encoding="ascii")  # escaped: plain ASCII JSON
    assert "out/caf\\udce9.sh" in text
    assert read_lock(str(tmp_path))["build"]["execs"] == [name]
