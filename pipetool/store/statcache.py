"""Persistent stat cache: path -> (size, mtime_ns, ctime_ns, inode, hashed_at_ns, digest).

ctime is part of the key because no one can set it: a rewrite that restores the old
mtime (`touch -r`, `os.utime`, some sync tools) still changes it.

Loaded with one query on first use, written back in one transaction, so a no-op run
costs one read of the table however many files it checks. Paths are keyed by their bytes
(a BLOB), so a file name that is not UTF-8 is cached like any other.
"""
from __future__ import annotations

import os
import sqlite3
import sys
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import PipetoolError
from .db import with_tx
from .failures import guarded


class StatEntry(NamedTuple):
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    hashed_at_ns: int
    digest: str


_make = StatEntry._make


@dataclass
class StatCache:
    conn: sqlite3.Connection | None
    _rows: dict[str, StatEntry] | None = None
    _dirty: dict[str, StatEntry] | None = None

    def _load(self) -> dict[str, StatEntry]:
        rows: dict = {}
        if self.conn is not None and getattr(self.conn, "stat_usable", True):
            # Plain tuples (same field order as StatEntry): building thousands of named
            # tuples would cost more than the query.
            enc, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()  # os.fsdecode's
            with guarded(self.conn, "the stat cache"):
                rows = {r[0].decode(enc, errors): r[1:] for r in self.conn.execute(
                    "SELECT path, size, mtime_ns, ctime_ns, inode, hashed_at_ns, digest FROM stat")}
        self._rows = rows
        return rows

    def get(self, path: str) -> StatEntry | None:
        rows = self._rows if self._rows is not None else self._load()
        row = rows.get(path)
        return None if row is None else _make(row)

    def put(self, path: str, entry: StatEntry) -> None:
        rows = self._rows if self._rows is not None else self._load()
        rows[path] = entry
        if self._dirty is None:
            self._dirty = {}
        self._dirty[path] = entry

    def flush(self) -> None:
        """Write new entries in one transaction. It is only a cache: a busy, read-only or
        full store costs a rehash later, never the command."""
        conn = self.conn
        if not self._dirty or conn is None or getattr(conn, "read_only", False) \
                or not getattr(conn, "stat_usable", True):
            return
        encode = os.fsencode
        items = [(encode(p), *e) for p, e in self._dirty.items()]
        try:
            with_tx(conn, lambda c: c.executemany("INSERT OR REPLACE INTO stat VALUES (?,?,?,?,?,?,?)", items),
                    "the stat cache")
        except (sqlite3.Error, PipetoolError):
            return
        self._dirty = None
