"""Per-target build records (the verifying trace): one SQLite transaction per finished target.

A fresh clone has no `.pipetool/`; then the committed `pipetool.lock` is what is trusted.
"""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..jsontext import dumps
from .db import with_tx
from .failures import guarded
from .names import from_db, printable, to_db

# What a lock entry keeps beside fingerprint and outs: the trace, and the outs' files with
# an execute bit (the content hashes do not carry the mode).
TRACE_KEYS = ("code", "code_files", "params", "deps", "env", "execs", "item")


@dataclass(frozen=True)
class Record:
    """What was recorded when a target was last built (the verifying trace)."""

    fingerprint: str
    outs: dict[str, str | None]
    # What the fingerprint was made from: a dict, or its JSON text, parsed only when a
    # changed fingerprint must be explained (a no-op never pays for it); None if unknown.
    trace: dict[str, Any] | str | None = None

    def trace_dict(self) -> dict[str, Any] | None:
        if isinstance(self.trace, str):
            return json.loads(self.trace)
        return self.trace


def load_records(
    conn: sqlite3.Connection | None, lock_entries: Callable[[], dict[str, Any]], wanted: Iterable[str]
) -> dict[str, Record]:
    """Records from the store; the lock file is read only for targets the store lacks."""
    records: dict[str, Record] = {}
    if conn is not None:
        with guarded(conn, "the build records"):
            for name, fp, trace, outs in conn.execute("SELECT target, fingerprint, trace, outs FROM records"):
                records[from_db(name)] = Record(fp, json.loads(outs), trace)
    if any(n not in records for n in wanted):
        for name, e in lock_entries().items():
            if name not in records:
                records[name] = from_lock(e)
    return records


def from_lock(e: dict[str, Any]) -> Record:
    trace = {k: e.get(k) for k in TRACE_KEYS if k in e}
    return Record(e.get("fingerprint", ""), dict(e.get("outs") or {}), trace or None)


def save_record(
    conn: sqlite3.Connection, target: str, fingerprint: str, trace: dict[str, Any],
    outs: dict[str, str | None], run_id: str,
) -> None:
    """Record one target as built; called only after its command succeeded and outs exist."""
    row = (to_db(target), fingerprint, dumps(trace, sort_keys=True), dumps(outs, sort_keys=True), run_id,
           time.time())
    with_tx(conn, lambda c: c.execute("INSERT OR REPLACE INTO records VALUES (?,?,?,?,?,?)", row),
            f"target '{printable(target)}' as built" + (f" by run {run_id}" if run_id else ""))



def delete_record(conn: sqlite3.Connection, target: str) -> None:
    """Forget a target the workspace no longer holds (a partition whose item is gone)."""
    with_tx(conn, lambda c: c.execute("DELETE FROM records WHERE target=?", (to_db(target),)),
            f"the removal of target '{printable(target)}'")
