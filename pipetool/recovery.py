"""`pipetool recover`: rebuild a damaged SQLite store from the files that outlive it.

The store (`.pipetool/state.db`) is an index: every run also leaves its manifest file
(`.pipetool/runs/ID/manifest.json`), the workspace's records are in `pipetool.lock`, and
the cache objects are files. A damaged store is set aside, never deleted; a fresh one is
filled from those files: the runs and their journals, the records of the targets whose
outs in the workspace are still what the lock says, and the run cache of every built
target whose objects are all in the cache. What cannot come back is said, not hidden.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import PipetoolError
from .fingerprint.hashing import Hasher
from .putback import KEPT_ACTIONS
from .reporting import Reporter, or_quiet
from .store import records as store_records
from .store import runcache
from .store import runs as store_runs
from .store.cache import Cache
from .store.db import db_path, open_db, set_meta, state_dir
from .store.failures import ReadOnlyError
from .store.names import printable

ALWAYS_LOST = "the stat cache (each file is hashed once more on its next use)"


@dataclass
class Recovery:
    """What `recover` found and did; `damage` is None when there was nothing to do."""

    store: str
    damage: str | None = None
    set_aside: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    runs_lost: dict[str, str] = field(default_factory=dict)  # manifest file -> why not
    journals_lost: list[str] = field(default_factory=list)  # runs whose manifest holds only their start
    records: list[str] = field(default_factory=list)
    records_left: dict[str, str] = field(default_factory=dict)  # target -> why judged afresh
    cache_entries: int = 0
    cache_left: dict[str, str] = field(default_factory=dict)  # "target (run ID)" -> why not
    head: str | None = None
    lost: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def recover(*, file: str | None = None, cwd: str | None = None, wait: bool = True,
            reporter: Reporter | None = None) -> Recovery:
    """Check the store; when it is damaged (or gone while run manifests remain), set it
    aside and rebuild it from the run manifests, pipetool.lock and the cache."""
    from .spec.loader import find_pipeline_file
    from .store.projectlock import acquire

    root = os.path.dirname(find_pipeline_file(file, cwd))
    rep = or_quiet(reporter)
    path = db_path(root)
    with acquire(root, f"recover (pid {os.getpid()})", wait, rep.waiting):
        manifests = _manifest_files(root)
        result = Recovery(path)
        if os.path.exists(path):
            result.damage = damage(path)
            if result.damage is None:
                return result
            result.set_aside = set_aside(path)
        elif not manifests:
            return result
        else:
            result.damage = "the store is missing"
        conn = open_db(root, create=True)
        if conn is None:
            raise ReadOnlyError(state_dir(root), "a new store cannot be made there")
        try:
            _rebuild(conn, root, manifests, result)
        finally:
            conn.close()
        return result


def damage(path: str) -> str | None:
    """What `PRAGMA quick_check` finds wrong with the store at `path` (None: nothing)."""
    from urllib.parse import quote

    conn = None
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
        rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)").fetchall()]
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        if conn is not None:
            conn.close()
    return None if rows == ["ok"] else "; ".join(rows)


def set_aside(path: str) -> list[str]:
    """Rename the store and its WAL files to `state.db.damaged-<UTC time>` (the WAL first:
    a WAL left beside a new store would be replayed into it); the new names, the store's first."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base, n = f"{path}.damaged-{stamp}", 1
    while any(os.path.lexists(base + s) for s in ("", "-wal", "-shm")):
        n += 1
        base = f"{path}.damaged-{stamp}-{n}"
    moved = [s for s in ("-wal", "-shm", "") if os.path.lexists(path + s)]
    for suffix in moved:
        os.rename(path + suffix, base + suffix)
    return [base + s for s in ("", "-wal", "-shm") if s in moved]


def _manifest_files(root: str) -> list[str]:
    base = os.path.join(state_dir(root), "runs")
    try:
        names = sorted(os.listdir(base))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [p for p in (os.path.join(base, n, "manifest.json") for n in names) if os.path.isfile(p)]


def _rebuild(conn: sqlite3.Connection, root: str, files: list[str], result: Recovery) -> None:
    manifests = _read_manifests(root, files, result)
    lock = _read_lock(root, result)
    _import_runs(conn, manifests, result)
    _import_records(conn, root, lock, manifests, result)
    _import_run_cache(conn, root, manifests, lock, result)
    result.head = _head(manifests, lock)
    if result.head is not None:
        set_meta(conn, "head", result.head)
    result.lost.append(ALWAYS_LOST)
    if result.journals_lost:
        result.lost.append(f"the per-target journal of {len(result.journals_lost)} run(s) stopped before their "
                           "end (their manifest files hold only their start)")


def _read_manifests(root: str, files: list[str], result: Recovery) -> list[dict[str, Any]]:
    """The manifest files that read as manifests, oldest run first; the others said why."""
    found = []
    for path in files:
        rel = os.path.relpath(path, root)
        try:
            with open(path, "rb") as f:
                m = json.loads(f.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            result.runs_lost[rel] = f"{rel} cannot be read ({exc})"
            continue
        problem = manifest_problem(m, os.path.basename(os.path.dirname(path)), root)
        if problem:
            result.runs_lost[rel] = f"{rel} {problem}"
            continue
        m.setdefault("targets", {})
        found.append(m)
    return sorted(found, key=lambda m: m["id"])


def manifest_problem(m: Any, folder: str, root: str) -> str:
    """Why `m` is not a run manifest pipetool can import ('' when it is one): its outs
    must be paths inside the project, as pipetool spells them (a checkout writes there)."""
    if not isinstance(m, dict):
        return "is not a JSON object"
    if m.get("id") != folder:
        return f"names run {m.get('id')!r}, not {folder}"
    for key in ("status", "started_at"):
        if not isinstance(m.get(key), str):
            return f"has no '{key}' string"
    if m.get("parent") is not None and not isinstance(m["parent"], str):
        return "has a 'parent' that is not a run id"
    for key in ("params", "overrides", "metrics", "targets"):
        if not isinstance(m.get(key, {}), dict):
            return f"has '{key}' that is not a mapping"
    if not isinstance(m.get("argv", []), list):
        return "has 'argv' that is not a list"
    for name, t in (m.get("targets") or {}).items():
        if not isinstance(t, dict) or not isinstance(t.get("action"), str) \
                or not isinstance(t.get("outs") or {}, dict):
            return f"has an entry of target '{printable(name)}' that is not an action with outs"
        unsafe = [o for o in t.get("outs") or {} if not inside_project(o, root)]
        if unsafe:
            return f"names an out of target '{printable(name)}' outside the project: {printable(unsafe[0])}"
    return ""


def inside_project(path: str, root: str) -> bool:
    """`path` is a project-relative path spelled as pipetool spells outs (nothing that
    reaches outside the root or into .pipetool/)."""
    from .spec.paths import normalize

    try:
        return normalize(path, root, "out", None) == path
    except PipetoolError:
        return False


def _read_lock(root: str, result: Recovery) -> dict[str, Any]:
    from .store.lockfile import LOCK_NAME, read_lock

    try:
        return read_lock(root)
    except PipetoolError as exc:
        result.lost.append(f"the workspace's records ({LOCK_NAME} cannot be read: {exc.message})")
        return {}


def _import_runs(conn: sqlite3.Connection, manifests: list[dict[str, Any]], result: Recovery) -> None:
    from .plan import param_diffs

    params: dict[str, dict[str, Any]] = {}
    rows = []
    for m in manifests:
        parent = m.get("parent")
        changed = ([f"{k}: {a} -> {b}" for k, a, b in param_diffs(params[parent], m.get("params") or {})]
                   if parent in params else [])
        argv = m.get("argv") or []
        kind = m.get("kind") or ("branch" if argv[1:2] == ["branch"] else "run")
        rows.append((m, changed, str(kind)))
        params[m["id"]] = m.get("params") or {}
        result.runs.append(m["id"])
        if m["status"] == "running" and not m["targets"]:
            result.journals_lost.append(m["id"])
    store_runs.import_runs(conn, rows)


def _built_by(manifests: list[dict[str, Any]], name: str, fingerprint: str) -> str:
    """The last run whose manifest left this target's build with this fingerprint."""
    for m in reversed(manifests):
        t = m["targets"].get(name)
        if t is not None and t.get("fingerprint") == fingerprint and t["action"] in KEPT_ACTIONS:
            return str(m["id"])
    return ""


def _import_records(conn: sqlite3.Connection, root: str, lock: dict[str, Any],
                    manifests: list[dict[str, Any]], result: Recovery) -> None:
    """A lock entry becomes the target's record only when its outs in the workspace are
    what the lock says; any other target is left to be judged afresh."""
    hasher = Hasher(root, None)
    for name in sorted(lock):
        rec = store_records.from_lock(lock[name])
        unsafe = [o for o in rec.outs if not inside_project(o, root)]
        if unsafe:
            result.records_left[name] = f"the lock names an out outside the project ({printable(unsafe[0])})"
            continue
        try:
            differs = [o for o, d in rec.outs.items() if hasher.digest(o) != d]
        except PipetoolError as exc:
            result.records_left[name] = exc.message
            continue
        if differs:
            result.records_left[name] = f"{', '.join(map(printable, differs))} in the workspace differ(s) from the lock"
            continue
        store_records.save_record(conn, name, rec.fingerprint, rec.trace_dict() or {}, rec.outs,
                                  _built_by(manifests, name, rec.fingerprint))
        result.records.append(name)


def _import_run_cache(conn: sqlite3.Connection, root: str, manifests: list[dict[str, Any]],
                      lock: dict[str, Any], result: Recovery) -> None:
    """A run-cache entry for every built target whose objects are all in the cache
    (a folder: its listing and every file it lists); newer runs win."""
    cache = Cache(root)
    entries: dict[str, runcache.CachedBuild] = {}
    for m in manifests:
        for name, t in m["targets"].items():
            fp, outs = t.get("fingerprint"), t.get("outs") or {}
            if t["action"] != "built" or not isinstance(fp, str) or not outs:
                continue
            dirs, why = _objects(cache, outs)
            if why:
                result.cache_left[f"{printable(name)} (run {m['id']})"] = why
                continue
            entry = lock.get(name)
            trace: dict[str, Any] = {}
            if entry is not None and entry.get("fingerprint") == fp:  # the lock knows its trace and modes
                trace = store_records.from_lock(entry).trace_dict() or {}
            execs = tuple(trace.pop("execs", ()) or ())
            entries[fp] = runcache.CachedBuild(fp, name, dict(outs), tuple(dirs), trace, m["id"], execs)
    for build in entries.values():
        runcache.save(conn, build)
    result.cache_entries = len(entries)


def _objects(cache: Cache, outs: dict[str, Any]) -> tuple[list[str], str]:
    """(the outs that are folders, '' when every object is in the cache, else why not)."""
    dirs = []
    for out, digest in outs.items():
        if not isinstance(digest, str) or not cache.has(digest):
            return [], f"the cache no longer holds {printable(out)}"
        listing = cache.peek_listing(digest, os.path.getsize(cache.path_of(digest)))
        if listing is not None:
            if not all(isinstance(d, str) and cache.has(d) for d in listing.values()):
                return [], f"the cache no longer holds every file of {printable(out)}"
            dirs.append(out)
        elif out.endswith("/"):
            return [], f"the cache no longer holds the listing of {printable(out)}"
    return dirs, ""


def _head(manifests: list[dict[str, Any]], lock: dict[str, Any]) -> str | None:
    """The run whose outputs the workspace holds: the newest whose kept targets all have
    the lock's fingerprints, else the newest run."""
    for m in reversed(manifests):
        kept = {n: t.get("fingerprint") for n, t in m["targets"].items() if t["action"] in KEPT_ACTIONS}
        if kept and all(n in lock and lock[n].get("fingerprint") == fp for n, fp in kept.items()):
            return str(m["id"])
    return str(manifests[-1]["id"]) if manifests else None
