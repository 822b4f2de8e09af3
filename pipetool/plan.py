"""Pure staleness: from traces, recorded state and upstream verdicts to verdicts with reasons.

No I/O here: `decide` judges one target, `plan` folds it over a topological order. The
run loop calls `decide` again for a target once its upstream targets are done, which is
what gives early cutoff (an upstream rebuilt to identical bytes leaves its hash unchanged).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from .fingerprint.trace import CodePart, Trace, canonical
from .store.records import Record

State = Literal["fresh", "stale", "pending"]
FRESH: Final = "fresh"
STALE: Final = "stale"
PENDING: Final = "pending"


@dataclass(frozen=True)
class Verdict:
    state: State
    reasons: tuple[str, ...] = ()

    @property
    def fresh(self) -> bool:
        return self.state == FRESH


def _show(v: Any) -> str:
    from .spec.interpolate import render_value

    return "(unset)" if v is _ABSENT else render_value(v)


_ABSENT = object()


def explain_trace(now: Trace, then: Mapping[str, Any] | None, volatile: frozenset[str] = frozenset()) -> list[str]:
    """Human reasons for each difference between a recorded trace and the current one."""
    if then is None:
        return ["fingerprint changed"]
    reasons: list[str] = []
    code = now.code_part
    old = CodePart.parse(then.get("code") or "")
    if code.checks != (old.checks if old is not None else ()):
        reasons.append("checks changed")
    if old is None or (code.kind, code.text) != (old.kind, old.text):
        if code.kind == "cmd" and old is not None and old.kind == "cmd":
            reasons.append("command changed")
        elif code.kind == "python":
            reasons.append("code changed: " + _code_change(now, code, old, then.get("code_files") or {}))
        elif code.kind == "version":
            was = old.text if old is not None and old.kind == "version" else "(none)"
            reasons.append(f"code_version changed: {was or '(none)'} -> {code.text}")
        else:
            reasons.append("code changed")
    reasons.extend(f"param changed: {k} {a} -> {b}" for k, a, b in param_diffs(then.get("params", {}), now.params))
    old_deps = then.get("deps", {})
    for path in sorted(set(now.deps) | set(old_deps)):
        if path in volatile:
            continue
        if path not in old_deps:
            reasons.append(f"dep added: {path}")
        elif path not in now.deps:
            reasons.append(f"dep removed: {path}")
        elif now.deps[path] != old_deps[path]:
            reasons.append(f"dep missing: {path}" if now.deps[path] is None else f"dep changed: {path}")
    if now.item is not None and "item" in then and canonical(then["item"]) != canonical(now.item[0]):
        reasons.append(f"item changed: {_show(then['item'])} -> {_show(now.item[0])}")
    old_env = then.get("env", {})
    for name in sorted(set(now.env) | set(old_env)):
        if now.env.get(name, _ABSENT) != old_env.get(name, _ABSENT):
            reasons.append(f"env changed: {name}")
    return reasons


MAX_VIA = 4


def _code_change(now: Trace, code: CodePart, old_code: CodePart | None, old: Mapping[str, Any]) -> str:
    """`src.train:train`, or `src.train:train via src.util:scale` when the callable itself
    is unchanged and what changed is something it uses (a helper, a constant, a package)."""
    from .fingerprint.codehash import entry_label

    ref = code.ref
    new = now.code_files or {}
    same_callable = old_code is not None and old_code.kind == "python" and old_code.ref == ref
    if not old or not same_callable or not set(new) & set(old):
        return ref  # a new callable, or a record that named files (an older pipetool)
    changed = [k for k in sorted(set(new) | set(old)) if new.get(k, _ABSENT) != old.get(k, _ABSENT)]
    if not changed or ref in changed:
        return ref
    # What was edited: one that appeared or went away came with an edit of a user of it.
    changed = [k for k in changed if k in new and k in old] or changed
    shown = [entry_label(k, old.get(k), new.get(k)) for k in changed[:MAX_VIA]]
    more = f" and {len(changed) - MAX_VIA} more" if len(changed) > MAX_VIA else ""
    return f"{ref} via {', '.join(shown)}{more}"


def param_diffs(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, old, new) for every changed leaf, values rendered as YAML writes them
    ("(unset)" for a side without the key), so a changed subtree names the key that moved."""
    out: list[tuple[str, str, str]] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if a is not _ABSENT and b is not _ABSENT and canonical(a) == canonical(b):
            continue  # compared as written: 1, 1.0 and true are three values
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(param_diffs(a, b, path + "."))
        else:
            out.append((path, _show(a), _show(b)))
    return out


def decide(
    trace: Trace,
    outs_now: Mapping[str, str | None],
    record: Record | None,
    *,
    always: bool = False,
    forced: bool = False,
    upstream_not_fresh: tuple[str, ...] = (),
    volatile: frozenset = frozenset(),
) -> Verdict:
    """Judge one target. `volatile` deps are outs of upstream targets not yet fresh."""
    reasons: list[str] = []
    if forced:
        reasons.append("forced")
    if always:
        reasons.append("always: true")
    if record is None:
        reasons.append("never built")
    else:
        if trace.fingerprint != record.fingerprint:
            why = explain_trace(trace, record.trace_dict(), volatile)
            if not why and not upstream_not_fresh:
                # Nothing named differs (a record from another pipetool version, or a
                # lock entry without its trace): the fingerprint alone decides.
                why = ["fingerprint changed"]
            reasons.extend(why)
        for out, digest in outs_now.items():
            if digest is None:
                reasons.append(f"out missing: {out}")
            elif out not in record.outs:
                reasons.append(f"out not recorded: {out}")
            elif record.outs[out] != digest:
                reasons.append(f"out modified: {out}")
    if upstream_not_fresh:
        if reasons:
            return Verdict(STALE, tuple(reasons))
        return Verdict(PENDING, tuple(f"upstream stale: {u}" for u in upstream_not_fresh))
    return Verdict(STALE, tuple(reasons)) if reasons else Verdict(FRESH)


def plan(
    order: tuple[str, ...] | list[str],
    upstream: Mapping[str, tuple[str, ...]],
    dep_producers: Mapping[str, Mapping[str, tuple[str, ...]]],
    traces: Mapping[str, Trace],
    outs_now: Mapping[str, Mapping[str, str | None]],
    records: Mapping[str, Record],
    *,
    always: frozenset = frozenset(),
    forced: frozenset = frozenset(),
    placeholders: frozenset = frozenset(),
) -> dict[str, Verdict]:
    """Verdicts for every target in `order` (a topological order of the selection). A
    foreach placeholder (`placeholders`: its items are not known yet) is pending on an
    upstream that is not fresh, else fresh: it has no items, so nothing to do."""
    verdicts: dict[str, Verdict] = {}
    for name in order:
        not_fresh = tuple(u for u in upstream[name] if u in verdicts and verdicts[u].state != FRESH)
        if name in placeholders:
            verdicts[name] = (Verdict(PENDING, tuple(f"upstream stale: {u}" for u in not_fresh)) if not_fresh
                              else Verdict(FRESH))
            continue
        volatile = frozenset(
            path for path, prods in dep_producers.get(name, {}).items() if any(u in not_fresh for u in prods)
        )
        verdicts[name] = decide(
            traces[name],
            outs_now[name],
            records.get(name),
            always=name in always,
            forced=name in forced,
            upstream_not_fresh=not_fresh,
            volatile=volatile,
        )
    return verdicts
