"""Where the workspace meets the pure plan: observe a target now and judge it.

`status`, the run loop and the remote prefetch all ask "is this target stale, and why?"
through `judge` (one target, its upstream done) or `judge_selection` (a whole selection,
upstream verdicts folded in by `plan.plan`), so the three can never disagree.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .fingerprint.hashing import Hasher
from .fingerprint.trace import Trace, observe, observe_outs
from .graph import Graph
from .plan import Verdict, decide, plan
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
    outs = observe_outs(t, hasher)
    return Judgement(trace, outs, decide(trace, outs, record, always=t.always, forced=forced))


def judge_selection(p: Pipeline, g: Graph, hasher: Hasher, selected: list[str],
                    records: Mapping[str, Record], forced: frozenset[str] = frozenset()) -> dict[str, Verdict]:
    """Verdicts for every selected target (a topological order), nothing run: a target
    below a stale one is pending unless its own inputs changed too."""
    traces = {n: observe(p, p.targets[n], hasher) for n in selected}
    outs = {n: observe_outs(p.targets[n], hasher) for n in selected}
    always = frozenset(n for n in selected if p.targets[n].always)
    return plan(selected, g.upstream, g.dep_producers, traces, outs, records, always=always, forced=forced)
