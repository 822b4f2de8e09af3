"""Putting a run's outputs back into the workspace from the cache (`branch`, `checkout`),
and the records the workspace holds once they are back."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .outguard import OutsError, protect
from .project import Project
from .reporting import Reporter
from .store import records as store_records
from .store import runcache
from .store.cache import Cache, CacheMiss
from .store.records import Record

# A run's targets whose outputs it left in the workspace (what can be put back, kept by gc).
KEPT_ACTIONS = ("built", "restored", "skipped")


@dataclass
class PutBack:
    """What putting a run's outputs back did: restored, already there, or missing."""

    run_id: str
    restored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # target -> why it must rebuild


def put_back(proj: Project, manifest: dict[str, Any], records: dict[str, Record], reporter: Reporter,
             displace_id: str) -> PutBack:
    """Restore the outputs `manifest`'s run left, from the cache, and record them as the
    workspace's state; a target whose objects are gone is reported (it will rebuild).
    Files in the way that nobody could restore are moved under `.pipetool/displaced/ID/`."""
    conn = proj.conn
    assert conn is not None
    cache = Cache(proj.root)
    result = PutBack(manifest["id"])
    for name, t in manifest["targets"].items():
        if name not in proj.pipeline.targets or t.get("action") not in KEPT_ACTIONS or not t.get("fingerprint"):
            continue
        fp, outs = t["fingerprint"], t.get("outs") or {}
        in_place = all(proj.hasher.digest(o) == d for o, d in outs.items())
        current = records.get(name)
        if in_place and current is not None and current.fingerprint == fp and current.outs == outs:
            result.unchanged.append(name)  # the workspace already holds exactly this
            continue
        entry = runcache.lookup(conn, fp)
        trace = entry.trace if entry else (current.trace_dict() if current is not None
                                           and current.fingerprint == fp else None)
        if in_place:
            result.unchanged.append(name)
        elif entry is None or set(entry.outs) != set(outs):
            result.missing[name] = "its outputs are not in the cache"
            continue
        else:
            try:
                protect(proj.pipeline.targets[name], current, proj.hasher, cache, displace_id, reporter.warning)
            except OutsError as exc:
                result.missing[name] = exc.message
                continue
            try:
                cache.restore_outs(outs, entry.dirs, entry.execs)
                for out in outs:
                    proj.hasher.forget(out)
            except (CacheMiss, OSError) as exc:
                result.missing[name] = getattr(exc, "reason", None) or str(exc)
                runcache.forget(conn, fp)
                continue
            result.restored.append(name)
        trace = dict(trace or {})
        if entry is not None and entry.execs:
            trace["execs"] = list(entry.execs)
        store_records.save_record(conn, name, fp, trace, outs, manifest["id"])
        records[name] = Record(fp, dict(outs), trace)
    return result


def report_missing(pb: PutBack, reporter: Reporter, what: str) -> None:
    for name, why in sorted(pb.missing.items()):
        reporter.warning(f"{name}: outputs of run {pb.run_id} cannot be put back ({why}); {what}")


def records_after(proj: Project, manifest: dict[str, Any]) -> dict[str, Record]:
    """The records the workspace would hold once `manifest`'s outputs were put back, and
    each of their outs assumed by the hasher as that run left it (what `branch -n` judges)."""
    records = proj.records()
    assert proj.conn is not None
    for name, t in manifest["targets"].items():
        if t.get("action") not in KEPT_ACTIONS:
            continue
        outs = dict(t.get("outs") or {})
        for out, digest in outs.items():
            proj.hasher.assume(out, digest)
        if t.get("fingerprint"):
            entry = runcache.lookup(proj.conn, t["fingerprint"])
            records[name] = Record(t["fingerprint"], outs, entry.trace if entry else None)
    return records
