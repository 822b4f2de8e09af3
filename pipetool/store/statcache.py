"""Persistent stat cache: path -> (size, mtime_ns, ctime_ns, inode, hashed_at_ns, digest).

ctime is part of the key because no one can set it: a rewrite that restores the old
mtime (`touch -r`, `os.utime`, some sync tools) still changes it.

Loaded with one query on first use, written back in one transaction, so a no-op run
costs one read of the table however many files it checks.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import NamedTuple

from .db import with_tx


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
        if self.conn is not None:
            # Plain tuples (same field order as StatEntry): building thousands of named
            # tuples would cost more than the query.
            rows = {r[0]: r[1:] for r in self.conn.execute(
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
        """Write new entries in one transaction; a busy store only costs a rehash later."""
        if not self._dirty or self.conn is None:
            return
        items = [(p, *e) for p, e in self._dirty.items()]
        try:
            with_tx(self.conn, lambda c: c.executemany(
                "INSERT OR REPLACE INTO stat VALUES (?,?,?,?,?,?,?)", items))
        except sqlite3.OperationalError:
            return
        self._dirty = None
