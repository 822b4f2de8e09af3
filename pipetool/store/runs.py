"""The run index and run manifests (SPEC §5).

Each run is a row in `runs` plus one row per target in `run_targets`, each written in its
own short transaction as the target finishes: that is the journal a SIGKILL cannot undo.
`.pipetool/runs/ID/manifest.json` is the same manifest as a file, written atomically at
the start and at the end of the run; `show` and `runs` read the index, so a missing or
corrupt file costs nothing but a warning.
"""
from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from typing import Any

from ..errors import UsageError
from ..jsontext import dumps
from ..procinfo import alive
from .db import with_tx
from .failures import guarded, raise_write_error, remove_quietly
from .names import from_db, printable, to_db

MIN_PREFIX = 4


def start(conn: sqlite3.Connection, run_id: str, parent: str | None, argv: list[str], at: str,
          params: dict[str, Any], overrides: dict[str, Any], changed: list[str], kind: str) -> None:
    row = (run_id, parent, "running", at, None, os.getpid(), dumps(list(argv)),
           dumps(params, default=str), dumps(overrides, default=str), None,
           dumps(changed), kind)
    with_tx(conn, lambda c: c.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row),
            f"the start of run {run_id}")


def record_targets(conn: sqlite3.Connection, run_id: str, rows: Iterable[tuple]) -> None:
    """(target, action, fingerprint, reason, duration_s, outs, checks) rows, in one transaction."""
    data = [(run_id, to_db(t), a, fp, r, d, dumps(o, sort_keys=True), dumps(ck))
            for t, a, fp, r, d, o, ck in rows]
    if data:
        names = ", ".join(f"{printable(from_db(d[1]))} {d[2]}" for d in data[:5]) + (" …" if len(data) > 5 else "")
        with_tx(conn, lambda c: c.executemany("INSERT OR REPLACE INTO run_targets VALUES (?,?,?,?,?,?,?,?)", data),
                f"run {run_id}'s journal ({names})")


def finish(conn: sqlite3.Connection, run_id: str, status: str, at: str, metrics: dict[str, Any]) -> None:
    with_tx(conn, lambda c: c.execute(
        "UPDATE runs SET status=?, finished_at=?, metrics=? WHERE id=?",
        (status, at, dumps(metrics, default=str), run_id)), f"the end of run {run_id} ({status}, its metrics)")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    return pid == os.getpid() or alive(pid)


COLUMNS = "id, parent, status, started_at, finished_at, pid, argv, params, overrides, metrics, changed, kind"


def _summary(row: tuple) -> dict[str, Any]:
    rid, parent, status, started, finished, pid, argv, params, overrides, metrics, changed, kind = row
    if status == "running" and not _alive(pid):
        status = "interrupted"  # its process is gone (SIGKILL, power loss)
    return {
        "id": rid, "parent": parent, "status": status, "started_at": started, "finished_at": finished,
        "argv": json.loads(argv or "[]"), "params": json.loads(params or "{}"),
        "overrides": json.loads(overrides or "{}"), "metrics": json.loads(metrics or "{}"),
        "changed": json.loads(changed or "[]"), "kind": kind or "run",
    }


def summaries(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every run, oldest first, without per-target detail (what `runs` shows)."""
    with guarded(conn, "the run index"):
        return [_summary(r) for r in conn.execute(f"SELECT {COLUMNS} FROM runs ORDER BY id")]


def run_params(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    """A run's effective params alone (no per-target detail)."""
    with guarded(conn, "the run index"):
        row = conn.execute("SELECT params FROM runs WHERE id=?", (run_id,)).fetchone()
    return json.loads(row[0] or "{}") if row else {}


def manifest(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    """One run's full manifest, assembled from the index."""
    with guarded(conn, "the run index"):
        row = conn.execute(f"SELECT {COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
    if row is None:
        raise UsageError(f"no run {run_id}")
    m = _summary(row)
    targets: dict[str, Any] = {}
    with guarded(conn, f"run {run_id}'s journal"):
        for t, action, fp, reason, dur, outs, checks in conn.execute(
                "SELECT target, action, fingerprint, reason, duration_s, outs, checks FROM run_targets "
                "WHERE run_id=? ORDER BY rowid", (run_id,)):
            targets[from_db(t)] = {"action": action, "fingerprint": fp, "reason": reason, "duration_s": dur,
                                   "outs": json.loads(outs or "{}"), "checks": json.loads(checks or "[]")}
    m["targets"] = targets
    metrics = m.pop("metrics")
    m.pop("changed")
    m.pop("kind")
    m["metrics"] = metrics
    return m


def resolve(conn: sqlite3.Connection | None, ref: str) -> str:
    """A run id from any unique prefix of at least 4 characters."""
    ref = ref.strip()
    if len(ref) < MIN_PREFIX:
        raise UsageError(f"run id '{ref}' is too short: give at least {MIN_PREFIX} characters")
    if conn is None:
        raise UsageError(f"no run {ref}: this project has no recorded runs")
    with guarded(conn, "the run index"):
        found = [r[0] for r in conn.execute("SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id",
                                            (ref, ref + "\uffff"))]
    if not found:
        raise UsageError(f"no run matches '{ref}' (see `pipetool runs`)")
    if len(found) > 1:
        shown = ", ".join(found[:10]) + (" …" if len(found) > 10 else "")
        raise UsageError(f"run id '{ref}' is ambiguous: {len(found)} runs match ({shown}); give more characters")
    return found[0]


def manifest_path(root: str, run_id: str) -> str:
    return os.path.join(root, ".pipetool", "runs", run_id, "manifest.json")


def write_manifest_file(root: str, m: dict[str, Any]) -> None:
    """The manifest as a file, atomically; what `pipetool recover` rebuilds the index from.
    JSON's ASCII escapes keep any file name (a lone surrogate is `\\udce9`) and read back."""
    path = manifest_path(root, m["id"])
    tmp = f"{path}.{os.getpid()}.tmp"
    # Compact: the C encoder writes it in a fraction of the pretty printer's time, and
    # `pipetool show` is what people read.
    text = dumps(m, sort_keys=True, separators=(",", ":"), default=str)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp)
        raise_write_error(exc, path, f"the manifest file of run {m['id']}")


def import_runs(conn: sqlite3.Connection, runs: list[tuple[dict[str, Any], list[str], str]]) -> None:
    """Runs as their manifest files have them (manifest, changed params, kind), rows and
    journals in one transaction: what `pipetool recover` rebuilds the index from. No pid:
    a run left `running` is shown `interrupted`, as one whose process is gone."""
    rows, journal = [], []
    for m, changed, kind in runs:
        rows.append((m["id"], m.get("parent"), m["status"], m["started_at"], m.get("finished_at"), None,
                     dumps(list(m.get("argv") or [])), dumps(m.get("params") or {}, default=str),
                     dumps(m.get("overrides") or {}, default=str),
                     dumps(m.get("metrics") or {}, default=str), dumps(changed), kind))
        journal += [(m["id"], to_db(name), t["action"], t.get("fingerprint"), t.get("reason"), t.get("duration_s"),
                     dumps(t.get("outs") or {}, sort_keys=True), dumps(t.get("checks") or []))
                    for name, t in m["targets"].items()]

    def write(c: sqlite3.Connection) -> None:
        c.executemany("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        c.executemany("INSERT OR REPLACE INTO run_targets VALUES (?,?,?,?,?,?,?,?)", journal)

    with_tx(conn, write, f"{len(rows)} run(s) read from their manifest files")
