"""The run cache (the constructive trace): fingerprint -> the outputs it produced.

An entry is written only after every object it names is in the content-addressed
cache, so an entry never points at missing data (unless `gc` removed it since, which
`lookup` callers learn from a CacheMiss on restore).
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from ..jsontext import dumps
from .db import with_tx
from .failures import guarded
from .names import from_db, printable, to_db


@dataclass(frozen=True)
class CachedBuild:
    fingerprint: str
    target: str
    outs: dict[str, str]  # out path -> digest
    dirs: tuple[str, ...]  # which outs are folders
    trace: dict[str, Any]
    run_id: str | None
    execs: tuple[str, ...] = ()  # files (inside outs too) that had an execute bit


def lookup(conn: sqlite3.Connection, fingerprint: str) -> CachedBuild | None:
    with guarded(conn, "the run cache"):
        row = conn.execute(
            "SELECT fingerprint, target, outs, dirs, trace, run_id, execs FROM run_cache WHERE fingerprint=?",
            (fingerprint,)).fetchone()
    if row is None:
        return None
    return CachedBuild(row[0], from_db(row[1]), json.loads(row[2]), tuple(json.loads(row[3])), json.loads(row[4]),
                       row[5], tuple(json.loads(row[6] or "[]")))


def save(conn: sqlite3.Connection, build: CachedBuild) -> None:
    row = (build.fingerprint, to_db(build.target), dumps(build.outs, sort_keys=True),
           dumps(sorted(build.dirs)), dumps(build.trace, sort_keys=True), build.run_id, time.time(),
           dumps(sorted(build.execs)))
    with_tx(conn, lambda c: c.execute("INSERT OR REPLACE INTO run_cache VALUES (?,?,?,?,?,?,?,?)", row),
            f"the run-cache entry of target '{printable(build.target)}'")


def forget(conn: sqlite3.Connection, fingerprint: str) -> None:
    with_tx(conn, lambda c: c.execute("DELETE FROM run_cache WHERE fingerprint=?", (fingerprint,)),
            f"the removal of run-cache entry {fingerprint[:12]}")


def all_entries(conn: sqlite3.Connection) -> list[CachedBuild]:
    with guarded(conn, "the run cache"):
        return [CachedBuild(r[0], from_db(r[1]), json.loads(r[2]), tuple(json.loads(r[3])), {}, r[4])
                for r in conn.execute("SELECT fingerprint, target, outs, dirs, run_id FROM run_cache")]
