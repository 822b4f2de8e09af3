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
          params: dict[str, Any], overrides: dict[str, Any], changed: list[str], kind: str,
          sweep: str | None = None) -> None:
    """Open run `run_id` (`sweep`: the sweep it is a point of, SPEC §10)."""
    row = (run_id, parent, "running", at, None, os.getpid(), dumps(list(argv)),
           dumps(params, default=str), dumps(overrides, default=str), None,
           dumps(changed), kind, sweep)
    with_tx(conn, lambda c: c.execute(f"INSERT INTO runs ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row),
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


COLUMNS = "id, parent, status, started_at, finished_at, pid, argv, params, overrides, metrics, changed, kind, sweep"


def _columns(conn: sqlite3.Connection) -> str:
    """COLUMNS as this store can answer them: a format-3 store opened read-only has no
    `sweep` column (NULL for every run)."""
    return COLUMNS if getattr(conn, "format", 4) >= 4 else COLUMNS.replace(", sweep", ", NULL")


def _summary(row: tuple) -> dict[str, Any]:
    rid, parent, status, started, finished, pid, argv, params, overrides, metrics, changed, kind, sweep = row
    if status == "running" and not _alive(pid):
        status = "interrupted"  # its process is gone (SIGKILL, power loss)
    return {
        "id": rid, "parent": parent, "status": status, "started_at": started, "finished_at": finished,
        "argv": json.loads(argv or "[]"), "params": json.loads(params or "{}"),
        "overrides": json.loads(overrides or "{}"), "metrics": json.loads(metrics or "{}"),
        "changed": json.loads(changed or "[]"), "kind": kind or "run", "sweep": sweep,
    }


def summaries(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every run, oldest first, without per-target detail (what `runs` shows)."""
    with guarded(conn, "the run index"):
        return [_summary(r) for r in conn.execute(f"SELECT {_columns(conn)} FROM runs ORDER BY id")]


def run_params(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    """A run's effective params alone (no per-target detail)."""
    with guarded(conn, "the run index"):
        row = conn.execute("SELECT params FROM runs WHERE id=?", (run_id,)).fetchone()
    return json.loads(row[0] or "{}") if row else {}


def manifest(conn: sqlite3.Connection, run_id: str) -> dict[str, Any]:
    """One run's full manifest, assembled from the index."""
    with guarded(conn, "the run index"):
        row = conn.execute(f"SELECT {_columns(conn)} FROM runs WHERE id=?", (run_id,)).fetchone()
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
    m["sweep"] = m.pop("sweep")
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
                     dumps(m.get("metrics") or {}, default=str), dumps(changed), kind, m.get("sweep")))
        journal += [(m["id"], to_db(name), t["action"], t.get("fingerprint"), t.get("reason"), t.get("duration_s"),
                     dumps(t.get("outs") or {}, sort_keys=True), dumps(t.get("checks") or []))
                    for name, t in m["targets"].items()]

    def write(c: sqlite3.Connection) -> None:
        c.executemany(f"INSERT OR REPLACE INTO runs ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        c.executemany("INSERT OR REPLACE INTO run_targets VALUES (?,?,?,?,?,?,?,?)", journal)

    with_tx(conn, write, f"{len(rows)} run(s) read from their manifest files")


# -- sweeps (SPEC §10): a row per sweep; its points are the runs whose `sweep` names it -----

SWEEP_COLUMNS = "id, base, created_at, finished_at, status, pid, argv, space, targets, options"


def start_sweep(conn: sqlite3.Connection, sweep_id: str, base: str | None, at: str, argv: list[str],
                space: dict[str, Any], targets: list[str], options: dict[str, Any]) -> None:
    """Record a sweep before any of its points runs: all `--resume` needs to run the rest."""
    row = (sweep_id, base, at, None, "running", os.getpid(), dumps(list(argv)), dumps(space, sort_keys=True),
           dumps(list(targets)), dumps(options, sort_keys=True))
    with_tx(conn, lambda c: c.execute(f"INSERT INTO sweeps ({SWEEP_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", row),
            f"the start of sweep {sweep_id}")


def resume_sweep(conn: sqlite3.Connection, sweep_id: str) -> None:
    """The sweep runs again (`--resume`): this process holds it now."""
    with_tx(conn, lambda c: c.execute("UPDATE sweeps SET status='running', finished_at=NULL, pid=? WHERE id=?",
                                      (os.getpid(), sweep_id)), f"the resumption of sweep {sweep_id}")


def finish_sweep(conn: sqlite3.Connection, sweep_id: str, status: str, at: str) -> None:
    with_tx(conn, lambda c: c.execute("UPDATE sweeps SET status=?, finished_at=? WHERE id=?",
                                      (status, at, sweep_id)), f"the end of sweep {sweep_id} ({status})")


def _has_sweeps(conn: sqlite3.Connection) -> bool:
    return getattr(conn, "format", 4) >= 4


def sweep_record(conn: sqlite3.Connection, sweep_id: str) -> dict[str, Any]:
    """One sweep as recorded; `status` is `interrupted` when it was left running by a
    process that is gone."""
    row = None
    if _has_sweeps(conn):
        with guarded(conn, "the sweep index"):
            row = conn.execute(f"SELECT {SWEEP_COLUMNS} FROM sweeps WHERE id=?", (sweep_id,)).fetchone()
    if row is None:
        raise UsageError(f"no sweep {sweep_id}")
    sid, base, created, finished, status, pid, argv, space, targets, options = row
    if status == "running" and not _alive(pid):
        status = "interrupted"
    return {"id": sid, "base": base, "created_at": created, "finished_at": finished, "status": status,
            "argv": json.loads(argv or "[]"), "space": json.loads(space), "targets": json.loads(targets),
            "options": json.loads(options)}


def resolve_sweep(conn: sqlite3.Connection | None, ref: str | None) -> str:
    """A sweep id from a unique prefix of at least 4 characters; None or `last`: the last sweep."""
    if conn is None or not _has_sweeps(conn):
        raise UsageError("this project has no recorded sweeps (see `pipetool sweep --help`)")
    with guarded(conn, "the sweep index"):
        if ref is None or ref.strip() == "last":
            row = conn.execute("SELECT id FROM sweeps ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                raise UsageError("this project has no recorded sweeps (see `pipetool sweep --help`)")
            return str(row[0])
        ref = ref.strip()
        if len(ref) < MIN_PREFIX:
            raise UsageError(f"sweep id '{ref}' is too short: give at least {MIN_PREFIX} characters")
        found = [r[0] for r in conn.execute("SELECT id FROM sweeps WHERE id >= ? AND id < ? ORDER BY id",
                                            (ref, ref + "\uffff"))]
    if not found:
        raise UsageError(f"no sweep matches '{ref}' (see `pipetool runs`)")
    if len(found) > 1:
        raise UsageError(f"sweep id '{ref}' is ambiguous: {len(found)} sweeps match ({', '.join(found[:10])}); "
                         "give more characters")
    return str(found[0])


def sweep_runs(conn: sqlite3.Connection, sweep_id: str) -> list[dict[str, Any]]:
    """The runs of a sweep's points, oldest first (a resumed point has several)."""
    if not _has_sweeps(conn):
        return []
    with guarded(conn, "the run index"):
        return [_summary(r) for r in conn.execute(f"SELECT {COLUMNS} FROM runs WHERE sweep=? ORDER BY id",
                                                  (sweep_id,))]


def run_ids(conn: sqlite3.Connection) -> list[str]:
    """Every run id, sorted (for the shortest unique prefixes a listing prints)."""
    with guarded(conn, "the run index"):
        return [r[0] for r in conn.execute("SELECT id FROM runs ORDER BY id")]
