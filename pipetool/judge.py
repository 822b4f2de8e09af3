"""Where the workspace meets the pure plan: observe a target now and judge it.

`status`, the run loop and the remote prefetch all ask "is this target stale, and why?"
through `judge` (one target, its upstream done) or `judge_selection` (a whole selection,
upstream verdicts folded in by `plan.plan`), so the three can never disagree.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .fingerprint.hashing import Hasher
from .fingerprint.trace import Trace, observe, observe_outs
from .graph import Graph
from .plan import STALE, Verdict, decide, plan
from .spec.model import Pipeline, Target
from .store.records import Record


@dataclass(frozen=True)
class Judgement:
    """A target as the workspace stands now, and the verdict on it."""

    trace: Trace
    outs: dict[str, str | None]  # each out's digest now (None: missing)
    verdict: Verdict


def judge(p: Pipeline, t: Target, hasher: Hasher, record: Record | None, *, forced: bool = False) -> Judgement:
    """Observe `t` now and decide it against its record (its upstream is done)."""
    trace = observe(p, t, hasher)
    outs = outs_now(t, hasher, record)
    return Judgement(trace, outs, decide(trace, outs, record, always=t.always, forced=forced))


def judge_selection(p: Pipeline, g: Graph, hasher: Hasher, selected: list[str],
                    records: Mapping[str, Record], forced: frozenset[str] = frozenset()) -> dict[str, Verdict]:
    """Verdicts for every selected target (a topological order), nothing run: a target
    below a stale one is pending unless its own inputs changed too."""
    real = [n for n in selected if p.targets[n].foreach is None]
    traces = {n: observe(p, p.targets[n], hasher) for n in real}
    outs = {n: outs_now(p.targets[n], hasher, records.get(n)) for n in real}
    always = frozenset(n for n in real if p.targets[n].always)
    forced = forced | frozenset(n for n in real if p.targets[n].template in forced)
    return plan(selected, g.upstream, g.dep_producers, traces, outs, records, always=always, forced=forced,
                placeholders=frozenset(selected) - frozenset(real))


LOST_EXEC = ":lost-exec-bit"  # marks an out digest whose files lost their execute bit


def outs_now(t: Target, hasher: Hasher, record: Record | None) -> dict[str, str | None]:
    """Each out's digest now; an out holding a file the record saw executable that no longer
    is counts as modified (the content hash does not carry the mode; a restore puts it back)."""
    outs = observe_outs(t, hasher)
    for out in _lost_exec_bits(t, hasher.root, record):
        digest = outs.get(out)
        if digest is not None:
            outs[out] = digest + LOST_EXEC
    return outs


def _lost_exec_bits(t: Target, root: str, record: Record | None) -> set[str]:
    """The outs of `t` holding a file `record` lists as executable that is not now."""
    if record is None or record.trace is None:
        return set()
    if isinstance(record.trace, str) and '"execs"' not in record.trace:
        return set()  # the common case, without parsing the trace
    execs = (record.trace_dict() or {}).get("execs") or []
    lost: set[str] = set()
    for rel in execs:
        try:
            if os.stat(os.path.join(root, rel)).st_mode & 0o100:
                continue
        except OSError:
            continue  # gone: the out's own digest says so
        lost.update(o for o in t.outs if rel == o.rstrip("/") or rel.startswith(o.rstrip("/") + "/"))
    return lost


def judge_workspace(p: Pipeline, g: Graph, hasher: Hasher, selected: list[str], records: Mapping[str, Record],
                    templates: Iterable[str], forced: frozenset[str] = frozenset()) -> dict[str, Verdict]:
    """`judge_selection`, with partitions (SPEC §10): a foreach placeholder whose upstream
    is fresh matches no file and is left out; recorded partitions of `templates` whose item
    is gone are stale (`item gone: KEY`)."""
    from .partitioning import vanished

    verdicts = judge_selection(p, g, hasher, selected, records, forced)
    waiting = set()
    for n in selected:
        if p.targets[n].foreach is not None:
            if verdicts[n].fresh:
                del verdicts[n]
            else:
                waiting.add(n)
    for name, key in vanished(p, records, templates, waiting).items():
        verdicts[name] = Verdict(STALE, (f"item gone: {key}",))
    return verdicts
