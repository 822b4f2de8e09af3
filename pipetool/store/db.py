"""The SQLite store under `.pipetool/state.db`: schema, format version, connections.

WAL mode lets read-only commands (`status`, `dag`) read while a run writes; each
recorded target is one short transaction, so a crash loses nothing that finished.
"""
from __future__ import annotations

import os
import sqlite3

from ..errors import StateError

FORMAT_VERSION = 2
STATE_DIR = ".pipetool"
DB_NAME = "state.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS stat (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER,
    hashed_at_ns INTEGER, digest TEXT);
CREATE TABLE IF NOT EXISTS records (
    target TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, trace TEXT NOT NULL,
    outs TEXT NOT NULL, run_id TEXT, built_at REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, parent TEXT, status TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, pid INTEGER, argv TEXT, params TEXT, overrides TEXT, metrics TEXT,
    changed TEXT, kind TEXT);
CREATE TABLE IF NOT EXISTS run_targets (
    run_id TEXT NOT NULL, target TEXT NOT NULL, action TEXT NOT NULL, fingerprint TEXT,
    reason TEXT, duration_s REAL, outs TEXT, checks TEXT, PRIMARY KEY (run_id, target));
CREATE TABLE IF NOT EXISTS run_cache (
    fingerprint TEXT PRIMARY KEY, target TEXT NOT NULL, outs TEXT NOT NULL,
    dirs TEXT NOT NULL, trace TEXT NOT NULL, run_id TEXT, created_at REAL, execs TEXT);
"""


def state_dir(root: str) -> str:
    return os.path.join(root, STATE_DIR)


def open_db(root: str, create: bool = True) -> sqlite3.Connection | None:
    """Open (and on first use create) the store; None when absent and `create` is False."""
    sdir = state_dir(root)
    path = os.path.join(sdir, DB_NAME)
    if not os.path.exists(path):
        if not create:
            return None
        os.makedirs(sdir, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript("BEGIN;" + SCHEMA + f"PRAGMA user_version={FORMAT_VERSION};COMMIT;")
        elif version != FORMAT_VERSION:
            conn.close()
            raise StateError(
                f"{path} has store format {version}, this pipetool reads format "
                f"{FORMAT_VERSION}; remove {sdir}/ to start afresh (pipetool.lock is kept)"
            )
        conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.DatabaseError as exc:
        raise StateError(f"{path} is not a readable pipetool store ({exc}); remove it to start afresh") from None
    return conn


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))


def with_tx(conn: sqlite3.Connection, fn) -> None:
    """Run `fn(conn)` in one write transaction (BEGIN IMMEDIATE: no lock upgrade deadlock)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
