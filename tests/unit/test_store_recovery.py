"""The store's failures and its recovery (hardening items 6-9): names SQLite cannot hold as
text, errors classified once (full disk, read-only, damaged), the format-2 upgrade, and
`recover` rebuilding a store from run manifests, pipetool.lock and the cache."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from pipetool.errors import EXIT_FAILED, EXIT_INVALID
from pipetool.recovery import damage, manifest_problem, recover, set_aside
from pipetool.store import runcache
from pipetool.store import runs as store_runs
from pipetool.store.cache import Cache, file_hash
from pipetool.store.db import FORMAT_VERSION, db_path, get_meta, open_db
from pipetool.store.failures import DamagedStoreError, ReadOnlyError, StoreFailure, StoreWriteError, sqlite_error
from pipetool.store.names import from_db, printable, to_db
from pipetool.store.records import load_records

CAFE = os.fsdecode(b"caf\xe9.txt")


# -- names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["plain", "ünïcode", CAFE, f"dir/{CAFE}/x"])
def test_a_name_round_trips_through_the_value_sqlite_stores(name):
    assert from_db(to_db(name)) == name


def test_a_name_that_is_not_utf8_is_stored_as_its_bytes_and_printed_escaped():
    assert to_db(CAFE) == b"caf\xe9.txt"
    assert to_db("café") == "café"
    assert printable(CAFE) == "caf\\xe9.txt"
    printable(CAFE).encode("utf-8")  # printable anywhere


def test_a_target_name_that_is_not_utf8_is_recorded_and_read_back(tmp_path):
    from pipetool.store.records import save_record

    conn = open_db(str(tmp_path))
    assert conn is not None
    save_record(conn, f"clean[{CAFE}]", "fp", {}, {f"out/{CAFE}": "d"}, "r1")
    store_runs.start(conn, "r1", None, ["pipetool", "run"], "t0", {}, {}, [], "run")
    store_runs.record_targets(conn, "r1", [(f"clean[{CAFE}]", "built", "fp", "never built", 0.1, {}, [])])
    assert load_records(conn, dict, [])[f"clean[{CAFE}]"].outs == {f"out/{CAFE}": "d"}
    assert list(store_runs.manifest(conn, "r1")["targets"]) == [f"clean[{CAFE}]"]
    conn.close()


# -- classifying failures ----------------------------------------------------------------------

@pytest.mark.parametrize("message, kind, code", [
    ("database or disk is full", StoreWriteError, EXIT_FAILED),
    ("disk I/O error", StoreWriteError, EXIT_FAILED),
    ("attempt to write a readonly database", ReadOnlyError, EXIT_INVALID),
    ("database disk image is malformed", DamagedStoreError, EXIT_INVALID),
    ("file is not a database", DamagedStoreError, EXIT_INVALID),
    ("no such table: nothing", StoreFailure, EXIT_FAILED),
])
def test_sqlite_errors_are_classified_once_with_their_exit_status(message, kind, code):
    exc = sqlite3.OperationalError(message)  # as Python 3.10 raises them: by message only
    err = sqlite_error(None, exc, "target 'b' as built", writing=True, path="/p/.pipetool/state.db")
    assert type(err) is kind and err.exit_code == code
    assert "remove" not in err.render() and "delete it" not in err.render()


def test_a_full_disk_names_everything_a_command_could_not_record_in_order():
    try:
        try:
            raise StoreWriteError("the disk is full", "/p/.pipetool/state.db", "target 'b' as built")
        finally:
            raise StoreWriteError("the disk is full", "/p/.pipetool/state.db", "the end of run r1")
    except StoreWriteError as exc:
        text = exc.render()
    assert text.startswith("the disk is full: pipetool could not write /p/.pipetool/state.db; "
                           "not recorded: target 'b' as built; the end of run r1. ")
    assert "nothing needs deleting" in text


def test_a_file_that_is_not_a_database_is_a_damaged_store_naming_recover(tmp_path):
    os.makedirs(tmp_path / ".pipetool")
    Path(db_path(str(tmp_path))).write_bytes(b"not sqlite at all " * 300)
    with pytest.raises(DamagedStoreError) as info:
        open_db(str(tmp_path))
    assert "is damaged (file is not a database" in info.value.message
    assert "`pipetool recover`" in info.value.message
    assert damage(db_path(str(tmp_path))) == "file is not a database"


# -- the format-2 store ------------------------------------------------------------------------

FORMAT_2 = """
CREATE TABLE stat (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER,
    hashed_at_ns INTEGER, digest TEXT);
CREATE TABLE records (target TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, trace TEXT NOT NULL,
    outs TEXT NOT NULL, run_id TEXT, built_at REAL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (id TEXT PRIMARY KEY, parent TEXT, status TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, pid INTEGER, argv TEXT, params TEXT, overrides TEXT, metrics TEXT, changed TEXT, kind TEXT);
CREATE TABLE run_targets (run_id TEXT NOT NULL, target TEXT NOT NULL, action TEXT NOT NULL, fingerprint TEXT,
    reason TEXT, duration_s REAL, outs TEXT, checks TEXT, PRIMARY KEY (run_id, target));
CREATE TABLE run_cache (fingerprint TEXT PRIMARY KEY, target TEXT NOT NULL, outs TEXT NOT NULL,
    dirs TEXT NOT NULL, trace TEXT NOT NULL, run_id TEXT, created_at REAL, execs TEXT);
INSERT INTO stat VALUES ('a.txt', 1, 2, 3, 4, 5, 'd');
INSERT INTO records VALUES ('a', 'fp', '{}', '{"out/a.txt": "d"}', 'r1', 0);
INSERT INTO meta VALUES ('head', 'r1');
INSERT INTO runs VALUES ('r1', NULL, 'succeeded', 't0', 't1', NULL, '[]', '{}', '{}', '{}', '[]', 'run');
PRAGMA user_version=2;
"""


def test_a_format_2_store_is_upgraded_by_recreating_the_stat_cache_and_keeping_the_rest(tmp_path):
    os.makedirs(tmp_path / ".pipetool")
    old = sqlite3.connect(db_path(str(tmp_path)))
    old.executescript(FORMAT_2)
    old.close()
    conn = open_db(str(tmp_path))
    assert conn is not None
    assert conn.execute("PRAGMA user_version").fetchone()[0] == FORMAT_VERSION
    assert conn.execute("SELECT count(*) FROM stat").fetchone()[0] == 0
    assert list(load_records(conn, dict, [])) == ["a"]
    assert get_meta(conn, "head") == "r1"
    assert [s["id"] for s in store_runs.summaries(conn)] == ["r1"]
    conn.close()


def test_a_store_of_a_later_format_is_refused_without_advice_to_delete_it(tmp_path):
    from pipetool.errors import StateError

    os.makedirs(tmp_path / ".pipetool")
    later = sqlite3.connect(db_path(str(tmp_path)))
    later.execute(f"PRAGMA user_version={FORMAT_VERSION + 1}")
    later.close()
    with pytest.raises(StateError) as info:
        open_db(str(tmp_path))
    assert f"has store format {FORMAT_VERSION + 1}, this pipetool reads format {FORMAT_VERSION}" in info.value.message
    assert "move" in info.value.message and "remove" not in info.value.message


# -- recover -------------------------------------------------------------------------------------

def manifest(run_id: str, parent: str | None, targets: dict, status: str = "succeeded", **params) -> dict:
    return {"id": run_id, "parent": parent, "status": status, "started_at": f"{run_id}-start",
            "finished_at": None if status == "running" else f"{run_id}-end", "argv": ["pipetool", "run"],
            "params": params, "overrides": {}, "metrics": {}, "targets": targets}


def built(fingerprint: str, outs: dict, action: str = "built") -> dict:
    return {"action": action, "fingerprint": fingerprint, "reason": "never built", "duration_s": 0.5,
            "outs": outs, "checks": []}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose store is gone: two run manifests, a lock, and cache objects for a's
    build (a file) and c's build (a folder); b's object is not in the cache."""
    root = tmp_path
    (root / "pipeline.yaml").write_text("targets: {}\n")
    cache = Cache(str(root))
    (root / "out/c").mkdir(parents=True)
    (root / "out/a.txt").write_text("alpha\n")
    (root / "out/b.txt").write_text("beta, edited since\n")
    (root / "out/c" / "x.txt").write_text("x\n")
    da = file_hash(str(root / "out/a.txt"))
    cache.store_out("out/a.txt", da, None)
    listing = {"x.txt": file_hash(str(root / "out/c/x.txt"))}
    from pipetool.digests import listing_digest

    dc = listing_digest(listing)
    cache.store_out("out/c/", dc, listing)
    runs = [manifest("r0001", None, {"a": built("fa", {"out/a.txt": da}), "b": built("fb", {"out/b.txt": "gone"}),
                                     "c": built("fc", {"out/c/": dc})}, lr=0.1),
            manifest("r0002", "r0001", {"a": built("fa", {"out/a.txt": da}, "skipped")}, lr=0.2),
            manifest("r0003", "r0002", {}, status="running", lr=0.2)]
    for m in runs:
        path = root / ".pipetool/runs" / m["id"] / "manifest.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(m))
    (root / ".pipetool/runs/r0004").mkdir()
    (root / ".pipetool/runs/r0004/manifest.json").write_text("{truncated")
    lock = {"version": 1, "targets": {
        "a": {"fingerprint": "fa", "outs": {"out/a.txt": da}, "code": "cmd:a"},
        "b": {"fingerprint": "fb", "outs": {"out/b.txt": "db"}},
        "c": {"fingerprint": "fc", "outs": {"out/c/": dc}, "execs": ["out/c/x.txt"]}}}
    (root / "pipetool.lock").write_text(json.dumps(lock))
    return root


def test_recover_rebuilds_runs_records_and_run_cache_from_the_files_that_outlive_the_store(project):
    r = recover(cwd=str(project))
    assert r.damage == "the store is missing" and r.set_aside == []
    assert r.runs == ["r0001", "r0002", "r0003"]
    assert list(r.runs_lost) == [os.path.join(".pipetool", "runs", "r0004", "manifest.json")]
    assert r.journals_lost == ["r0003"]
    assert r.records == ["a", "c"] and list(r.records_left) == ["b"]
    assert r.cache_entries == 2 and list(r.cache_left) == ["b (run r0001)"]
    assert r.head == "r0002"
    conn = open_db(str(project))
    assert conn is not None
    summaries = {s["id"]: s for s in store_runs.summaries(conn)}
    assert {i: s["status"] for i, s in summaries.items()} == {
        "r0001": "succeeded", "r0002": "succeeded", "r0003": "interrupted"}
    assert summaries["r0002"]["changed"] == ["lr: 0.1 -> 0.2"]
    assert store_runs.manifest(conn, "r0001")["targets"]["c"]["outs"] == {"out/c/": r_dc(project)}
    records = load_records(conn, dict, [])
    assert set(records) == {"a", "c"} and records["a"].trace_dict() == {"code": "cmd:a"}
    folder = runcache.lookup(conn, "fc")
    assert folder is not None and folder.dirs == ("out/c/",) and folder.execs == ("out/c/x.txt",)
    assert runcache.lookup(conn, "fb") is None
    assert get_meta(conn, "head") == "r0002"
    conn.close()


def r_dc(project: Path) -> str:
    return json.loads((project / "pipetool.lock").read_text())["targets"]["c"]["outs"]["out/c/"]


def test_recover_sets_a_damaged_store_aside_with_its_wal_and_never_deletes_it(project):
    db = Path(db_path(str(project)))
    for suffix, data in (("", b"garbage " * 600), ("-wal", b"wal bytes"), ("-shm", b"shm bytes")):
        Path(f"{db}{suffix}").write_bytes(data)
    r = recover(cwd=str(project))
    assert r.damage == "file is not a database"
    assert [os.path.basename(p).split(".damaged-")[0] for p in r.set_aside] == ["state.db"] * 3
    assert [p[len(str(db)) + len(".damaged-YYYYmmddTHHMMSSZ"):] for p in r.set_aside] == ["", "-wal", "-shm"]
    # the damaged file and its WAL keep their bytes (the -shm is SQLite's index of the WAL)
    assert [Path(p).read_bytes() for p in r.set_aside[:2]] == [b"garbage " * 600, b"wal bytes"]
    assert r.runs == ["r0001", "r0002", "r0003"]
    assert damage(str(db)) is None


def test_recover_leaves_a_healthy_store_alone(project):
    conn = open_db(str(project))
    assert conn is not None
    conn.close()
    before = Path(db_path(str(project))).read_bytes()
    r = recover(cwd=str(project))
    assert (r.damage, r.set_aside, r.runs) == (None, [], [])
    assert Path(db_path(str(project))).read_bytes() == before


def test_set_aside_never_overwrites_an_earlier_copy(tmp_path):
    db = tmp_path / "state.db"
    names = []
    for content in (b"first", b"second"):
        db.write_bytes(content)
        names += set_aside(str(db))
    assert len(set(names)) == 2 and not db.exists()
    assert sorted(Path(n).read_bytes() for n in names) == [b"first", b"second"]


@pytest.mark.parametrize("m, problem", [
    ([], "is not a JSON object"),
    ({"id": "other"}, "names run 'other', not r1"),
    ({"id": "r1", "status": "succeeded"}, "has no 'started_at' string"),
    ({"id": "r1", "status": "succeeded", "started_at": "t", "targets": []}, "has 'targets' that is not a mapping"),
    ({"id": "r1", "status": "succeeded", "started_at": "t", "targets": {"a": {"outs": {}}}},
     "has an entry of target 'a' that is not an action with outs"),
    ({"id": "r1", "status": "succeeded", "started_at": "t", "targets": {"a": built("f", {"../x": "d"})}},
     "names an out of target 'a' outside the project: ../x"),
    ({"id": "r1", "status": "succeeded", "started_at": "t", "targets": {"a": built("f", {"/etc/x": "d"})}},
     "names an out of target 'a' outside the project: /etc/x"),
    ({"id": "r1", "status": "succeeded", "started_at": "t", "targets": {"a": built("f", {".pipetool/x": "d"})}},
     "names an out of target 'a' outside the project: .pipetool/x"),
    ({"id": "r1", "status": "succeeded", "started_at": "t", "targets": {"a": built("f", {"out/": "d"})}}, ""),
])
def test_a_manifest_file_is_checked_before_it_is_imported(m, problem, tmp_path):
    assert manifest_problem(m, "r1", str(tmp_path)) == problem


def test_recover_never_trusts_a_lock_entry_naming_an_out_outside_the_project(project):
    lock = json.loads((project / "pipetool.lock").read_text())
    lock["targets"]["evil"] = {"fingerprint": "fe", "outs": {"../outside.txt": None}}
    (project / "pipetool.lock").write_text(json.dumps(lock))
    r = recover(cwd=str(project))
    assert r.records_left["evil"] == "the lock names an out outside the project (../outside.txt)"
    assert "evil" not in r.records
