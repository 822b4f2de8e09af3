"""The SQLite store under `.pipetool/state.db`: schema, format version, connections.

WAL mode lets read-only commands (`status`, `dag`) read while a run writes; each
recorded target is one short transaction, so a crash loses nothing that finished.
A project on read-only media (a checkout on a read-only mount, a CI cache) is opened
read-only, so every read command still answers; a write there is a clear error.
"""
from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable

from ..errors import PipetoolError, StateError
from .failures import cannot_open_here, guarded, sqlite_code, sqlite_error

FORMAT_VERSION = 4
# Format 2 keyed the stat cache by TEXT paths, which cannot hold a file name that is not
# UTF-8; format 3 keys it by the path's bytes. The stat table is only a cache: a format-2
# store is upgraded by recreating that table, everything else kept. Format 4 adds sweeps
# (SPEC §10): the `sweeps` table and the `sweep` column of `runs` (NULL for a plain run),
# added in place to a format 2 or 3 store.
UPGRADABLE = (2, 3)
STATE_DIR = ".pipetool"
DB_NAME = "state.db"

STAT_TABLE = """
CREATE TABLE IF NOT EXISTS stat (
    path BLOB PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER,
    hashed_at_ns INTEGER, digest TEXT);
"""
SWEEPS_TABLE = """
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY, base TEXT, created_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
    pid INTEGER, argv TEXT, space TEXT NOT NULL, targets TEXT NOT NULL, options TEXT NOT NULL);
"""
SCHEMA = STAT_TABLE + """
CREATE TABLE IF NOT EXISTS records (
    target TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, trace TEXT NOT NULL,
    outs TEXT NOT NULL, run_id TEXT, built_at REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, parent TEXT, status TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, pid INTEGER, argv TEXT, params TEXT, overrides TEXT, metrics TEXT,
    changed TEXT, kind TEXT, sweep TEXT);
CREATE TABLE IF NOT EXISTS run_targets (
    run_id TEXT NOT NULL, target TEXT NOT NULL, action TEXT NOT NULL, fingerprint TEXT,
    reason TEXT, duration_s REAL, outs TEXT, checks TEXT, PRIMARY KEY (run_id, target));
CREATE TABLE IF NOT EXISTS run_cache (
    fingerprint TEXT PRIMARY KEY, target TEXT NOT NULL, outs TEXT NOT NULL,
    dirs TEXT NOT NULL, trace TEXT NOT NULL, run_id TEXT, created_at REAL, execs TEXT);
""" + SWEEPS_TABLE


class StoreConnection(sqlite3.Connection):
    """A connection that knows its file and whether it may write."""

    path = ""
    read_only = False  # opened read-only: the project's state cannot be written
    read_only_cause: int | None = None  # the SQLite error that made it so (read-only media, a full disk)
    stat_usable = True  # False: a format-2 stat table that could not be upgraded here
    format = FORMAT_VERSION  # an older format that could not be upgraded here (read-only): no sweeps


def state_dir(root: str) -> str:
    return os.path.join(root, STATE_DIR)


def db_path(root: str) -> str:
    return os.path.join(state_dir(root), DB_NAME)


def open_db(root: str, create: bool = True) -> StoreConnection | None:
    """Open (and on first use create) the store; None when there is none and `create` is
    False, or when it cannot be created (read-only media: the commands that read answer
    from pipetool.lock; those that write stop at the project lock with a clear error)."""
    path = db_path(root)
    if not os.path.exists(path):
        if not create:
            return None
        try:
            os.makedirs(state_dir(root), exist_ok=True)
        except OSError:
            return None
    conn = _connect(path)
    try:
        with guarded(conn, "the store's format"):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and conn.read_only:
            conn.close()  # an empty file nobody can initialize here: as good as none
            return None
        if version == 0:
            try:
                with guarded(conn, "a new store", writing=True):
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.executescript("BEGIN;" + SCHEMA + f"PRAGMA user_version={FORMAT_VERSION};COMMIT;")
            except PipetoolError:
                if create:
                    raise
                conn.close()  # a store never made (a full disk): nothing in it to read
                return None
        elif version in UPGRADABLE:
            _upgrade(conn)
        elif version != FORMAT_VERSION:
            raise StateError(
                f"{path} has store format {version}, this pipetool reads format {FORMAT_VERSION} (and upgrades "
                f"formats 2 and 3): use the pipetool that wrote it, or move {state_dir(root)}/ aside to start afresh "
                "(pipetool.lock is kept)")
        if not conn.read_only:
            conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def _connect(path: str) -> StoreConnection:
    """Read-write when the file and its folder can be written; else read-only (`mode=ro`
    reads the WAL through an existing `-shm`); else `immutable=1`, for a read-only
    folder where WAL's shared-memory file cannot be made (what a clean close leaves)."""
    conn: StoreConnection | None = None
    try:
        conn = _open(path, path, read_only=False)
        conn.execute("PRAGMA user_version").fetchone()
        return conn
    except sqlite3.Error as exc:
        failure = None
        if not cannot_open_here(exc) or not os.path.exists(path):
            failure = sqlite_error(conn, exc, "the store's format", writing=False, path=path)
        if conn is not None:
            conn.close()
        if failure is not None:
            raise failure from None
        last = exc
    from urllib.parse import quote

    for query in ("mode=ro", "mode=ro&immutable=1"):
        conn = None
        try:
            conn = _open(f"file:{quote(path)}?{query}", path, read_only=True)
            conn.execute("PRAGMA user_version").fetchone()
            conn.read_only_cause = sqlite_code(last)
            return conn
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            last = exc
    raise sqlite_error(None, last, "the store's format", writing=False, path=path)


def _open(target: str, path: str, read_only: bool) -> StoreConnection:
    """A connection to `target` (a path, or a `file:` URI when read-only)."""
    conn = sqlite3.connect(target, timeout=30.0, isolation_level=None, check_same_thread=False,
                           uri=read_only, factory=StoreConnection)
    conn.path = path
    conn.read_only = read_only
    return conn


def _upgrade(conn: StoreConnection) -> None:
    """Format 2 or 3 -> 4: recreate a format-2 stat table (a cache), add the sweeps table
    and the runs' `sweep` column. Where the store cannot be written, read everything else
    as it is: no stat cache from format 2, no sweeps before format 4."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if conn.read_only:
        conn.stat_usable, conn.format = version != 2, version
        return

    def upgrade(c: sqlite3.Connection) -> None:
        now = c.execute("PRAGMA user_version").fetchone()[0]
        if now not in UPGRADABLE:  # done meanwhile
            return
        if now == 2:
            c.execute("DROP TABLE IF EXISTS stat")
            c.execute(STAT_TABLE)  # executescript would commit the transaction first
        columns = [r[1] for r in c.execute("PRAGMA table_info(runs)")]
        if "sweep" not in columns:
            c.execute("ALTER TABLE runs ADD COLUMN sweep TEXT")
        c.execute(SWEEPS_TABLE)
        c.execute(f"PRAGMA user_version={FORMAT_VERSION}")

    try:
        with_tx(conn, upgrade, "the store's format upgrade")
    except StateError:  # the file is read-only though its folder is not
        conn.stat_usable, conn.format = version != 2, version


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    with guarded(conn, f"the store's {key}"):
        row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    with_tx(conn, lambda c: c.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value)),
            META_WHAT.get(key, f"the store's {key}"))


META_WHAT = {"head": "the workspace's current run", "lock": "the state of pipetool.lock"}


def with_tx(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], object], what: str) -> None:
    """Run `fn(conn)` in one write transaction (BEGIN IMMEDIATE: no lock upgrade deadlock);
    `what` names what is lost if it fails (a full disk, a read-only store, a damaged file)."""
    with guarded(conn, what, writing=True):
        conn.execute("BEGIN IMMEDIATE")
        try:
            fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite rolls back by itself when it cannot (the error that matters is raised)
            raise
