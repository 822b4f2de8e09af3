"""The run index: one row per run (id, parent, status, times, argv) in the SQLite store."""
from __future__ import annotations

import json
import os
import sqlite3

from .statcache import with_tx


def start(conn: sqlite3.Connection, run_id: str, parent: str | None, argv: list[str], at: str) -> None:
    row = (run_id, parent, "running", at, None, os.getpid(), json.dumps(list(argv)))
    with_tx(conn, lambda c: c.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?)", row))


def finish(conn: sqlite3.Connection, run_id: str, status: str, at: str) -> None:
    with_tx(conn, lambda c: c.execute(
        "UPDATE runs SET status=?, finished_at=? WHERE id=?", (status, at, run_id)))
