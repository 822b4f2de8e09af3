"""The pure parts of `pipetool sweep` (SPEC §10), each against fakes: the store's sweep
records and its format-3 upgrade, the point workspace's symlink-forest plan, the shared
executor's queue, and the registry that builds a fingerprint once for all points."""
from __future__ import annotations

import os
import sqlite3

from pipetool.store import runs as store_runs
from pipetool.store.db import FORMAT_VERSION, db_path, open_db

FORMAT_3 = """
CREATE TABLE stat (path BLOB PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER,
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
INSERT INTO stat VALUES (X'612e747874', 1, 2, 3, 4, 5, 'd');
INSERT INTO runs VALUES ('r1', NULL, 'succeeded', 't0', 't1', NULL, '[]', '{}', '{}', '{}', '[]', 'run');
PRAGMA user_version=3;
"""


def _format_3_store(root) -> None:
    os.makedirs(root / ".pipetool")
    old = sqlite3.connect(db_path(str(root)))
    old.executescript(FORMAT_3)
    old.close()


# -- the store ---------------------------------------------------------------------------------

def test_a_format_3_store_is_upgraded_in_place_keeping_runs_and_the_stat_cache(tmp_path):
    _format_3_store(tmp_path)
    conn = open_db(str(tmp_path))
    assert conn is not None
    assert FORMAT_VERSION == 4
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    assert conn.execute("SELECT count(*) FROM stat").fetchone()[0] == 1
    assert [(s["id"], s["sweep"]) for s in store_runs.summaries(conn)] == [("r1", None)]
    store_runs.start(conn, "r2", "r1", ["pipetool", "sweep"], "t2", {}, {"a": 1}, [], "sweep", sweep="s1")
    assert store_runs.manifest(conn, "r2")["sweep"] == "s1"
    assert [r["id"] for r in store_runs.sweep_runs(conn, "s1")] == ["r2"]
    conn.close()


def test_a_read_only_format_3_store_still_answers_runs_with_no_sweeps(tmp_path):
    """Opened read-only (`mode=ro`, as on read-only media: even root cannot write through
    it), a format-3 store is read as it is: runs without sweeps."""
    from urllib.parse import quote

    from pipetool.errors import UsageError
    from pipetool.store import db

    _format_3_store(tmp_path)
    path = db_path(str(tmp_path))
    conn = db._open(f"file:{quote(path)}?mode=ro", path, read_only=True)
    db._upgrade(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    assert (conn.format, conn.stat_usable) == (3, True)
    assert [(s["id"], s["sweep"]) for s in store_runs.summaries(conn)] == [("r1", None)]
    assert store_runs.manifest(conn, "r1")["sweep"] is None
    assert store_runs.sweep_runs(conn, "s1") == []
    try:
        store_runs.resolve_sweep(conn, None)
        raise AssertionError("a format-3 store has no sweeps")
    except UsageError as exc:
        assert "no recorded sweeps" in exc.message
    conn.close()


def test_sweeps_are_recorded_and_found_by_prefix_or_as_the_last(tmp_path):
    from pipetool.errors import UsageError

    conn = open_db(str(tmp_path))
    assert conn is not None
    space = {"kind": "grid", "axes": []}
    store_runs.start_sweep(conn, "0abc0001", None, "t0", ["pipetool", "sweep"], space, ["train"], {"jobs": 2})
    store_runs.start_sweep(conn, "0abd0002", "r1", "t1", ["pipetool", "sweep"], space, [], {})
    assert store_runs.resolve_sweep(conn, None) == "0abd0002"
    assert store_runs.resolve_sweep(conn, "last") == "0abd0002"
    assert store_runs.resolve_sweep(conn, "0abc") == "0abc0001"
    for ref, needle in (("0ab", "too short"), ("0abx", "no sweep matches"), ("0ab0", "no sweep matches")):
        try:
            store_runs.resolve_sweep(conn, ref)
            raise AssertionError(ref)
        except UsageError as exc:
            assert needle in exc.message
    rec = store_runs.sweep_record(conn, "0abc0001")
    assert (rec["status"], rec["targets"], rec["options"], rec["space"]) == ("running", ["train"], {"jobs": 2}, space)
    store_runs.finish_sweep(conn, "0abc0001", "failed", "t9")
    assert store_runs.sweep_record(conn, "0abc0001")["status"] == "failed"
    conn.close()
