"""Text for people: the DAG (ascii, mermaid, dot) and the terminal progress reporter."""
from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, TextIO

from .graph import Graph
from .spec.model import Pipeline

if TYPE_CHECKING:
    from .execute.scheduler import TargetResult
    from .plan import Verdict
    from .remote.pushpull import SyncResult

FORMATS = ("ascii", "mermaid", "dot")


def render_dag(p: Pipeline, g: Graph, fmt: str) -> str:
    if fmt == "mermaid":
        ids = {n: f"t{i}" for i, n in enumerate(g.order)}
        lines = ["graph TD"]
        lines += [f'  {ids[n]}["{n}"]' for n in g.order]
        lines += [f"  {ids[u]} --> {ids[n]}" for n in g.order for u in g.upstream[n]]
        return "\n".join(lines) + "\n"
    if fmt == "dot":
        lines = ["digraph pipeline {", "  rankdir=LR;", "  node [shape=box];"]
        lines += [f"  {json.dumps(n)};" for n in g.order]
        lines += [f"  {json.dumps(u)} -> {json.dumps(n)};" for n in g.order for u in g.upstream[n]]
        return "\n".join(lines + ["}"]) + "\n"
    width = max((len(n) for n in g.order), default=0)
    lines = []
    for n in g.order:
        ups = g.upstream[n]
        t = p.targets[n]
        what = f"  # {t.desc}" if t.desc else ""
        arrow = f"  <- {', '.join(ups)}" if ups else ""
        lines.append(f"{n.ljust(width)}{arrow}{what}".rstrip())
    return "\n".join(lines) + "\n"


class TerminalReporter:
    """Progress lines on stderr; plain text so logs and CI read it as well as a terminal."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        enc = (getattr(self.stream, "encoding", "") or "").lower()
        self.fancy = "utf" in enc

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


    def _sym(self, fancy: str, plain: str) -> str:
        return fancy if self.fancy else plain

    def waiting(self, message: str) -> None:
        self.say(message)

    def started(self, name: str, reasons: tuple[str, ...]) -> None:
        why = f"  ({'; '.join(reasons)})" if reasons else ""
        self.say(f"{self._sym('▶', '>')} {name}{why}")

    def finished(self, name: str, result: TargetResult) -> None:
        self.say(f"{self._sym('✔', 'ok')} {name}  {result.duration_s:.2f}s")

    def restored(self, name: str, reason: str) -> None:
        self.say(f"{self._sym('↺', '<')} {name}  ({reason})")

    def failed(self, name: str, message: str, log_tail: str, log_path: str) -> None:
        self.say(f"{self._sym('✘', 'FAILED')} {name} failed: {message}")
        for line in log_tail.splitlines():
            self.say(f"    | {line}")
        shown = os.path.relpath(log_path) if log_path else ""
        if shown:
            self.say(f"    full output: {shown}")

    def removed(self, name: str, reason: str) -> None:
        self.say(f"{self._sym('✂', '-')} {name}  ({reason})")

    def dry_run(self, name: str, verdict: Verdict) -> None:
        self.say(f"would run {name}  ({'; '.join(verdict.reasons)})")

    def warning(self, message: str) -> None:
        self.say(f"pipetool: warning: {message}")


def status_lines(verdicts: dict[str, Verdict], grouped: bool) -> list[str]:
    """A line per target not fresh, `state  name  reasons`; with `grouped` (a terminal),
    the partitions of a foreach target share one line: `stale  clean  3 of 120 stale`."""
    from .spec.partitions import template_of

    rows: list[tuple[str, str, str]] = []
    groups: dict[str, list[str]] = {}
    for n, v in verdicts.items():
        tpl = template_of(n) if grouped else None
        if tpl is not None:
            groups.setdefault(tpl, []).append(n)
            if len(groups[tpl]) == 1:
                rows.append(("", tpl, ""))  # where the group's line goes
        elif v.state != "fresh":
            rows.append((v.state, n, "; ".join(v.reasons)))
    out_rows: list[tuple[str, str, str]] = []
    for state, name, why in rows:
        if state:
            out_rows.append((state, name, why))
            continue
        members = [verdicts[m] for m in groups[name]]
        stale = sum(v.state == "stale" for v in members)
        pending = sum(v.state == "pending" for v in members)
        if stale or pending:
            counts = (f"{stale} of {len(members)} stale" + (f", {pending} pending" if pending else "") if stale
                      else f"{pending} of {len(members)} pending")
            first = next(v for v in members if v.state != "fresh")
            out_rows.append(("stale" if stale else "pending", name, f"{counts} (e.g. {'; '.join(first.reasons)})"))
    width = max((len(r[1]) for r in out_rows), default=0)
    return [f"{state:<8} {name.ljust(width)}  {why}" for state, name, why in out_rows]


def render_sync(result: SyncResult, verb: str) -> tuple[list[str], str]:
    """`push`/`pull` for the terminal: a line per target not done and why, and a summary."""
    problems = [f"pipetool: {name}: not {verb}: {why}" for name, why in sorted(result.missing.items())]
    s = result.stats
    moved = (f"{s.objects_up} object(s) uploaded ({human_bytes(s.bytes_up)})" if verb == "pushed"
             else f"{s.objects_down} object(s) downloaded ({human_bytes(s.bytes_down)})")
    extra = f", {len(result.present)} already in place" if verb == "pulled" else ""
    return problems, (f"{verb} {len(result.done)} target(s){extra}: {moved}, {s.objects_present} already "
                      f"there; {len(result.missing)} not {verb} ({result.remote})")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def headline(metrics: dict, limit: int = 3) -> str:
    """The first few numeric metrics, `acc=0.93 loss=0.21`."""
    out: list[str] = []

    def walk(prefix: str, value) -> None:
        if len(out) >= limit:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(f"{prefix}={value:.4g}" if isinstance(value, float) else f"{prefix}={value}")

    for content in metrics.values():
        walk("", content)
    return " ".join(out[:limit])


def render_runs(runs: list[dict]) -> str:
    """The history as a tree by parent, oldest first; a sweep's points (runs with a
    `sweep`) hang together under one `sweep ID  N points` node, below their base."""
    if not runs:
        return "no runs yet\n"
    ids = {r["id"] for r in runs}
    children: dict[str | None, list[dict]] = {}
    sweeps: dict[str, dict] = {}  # sweep id -> its node
    for r in runs:
        sid = r.get("sweep")
        if sid:
            node = sweeps.get(sid)
            if node is None:
                node = sweeps[sid] = {"sweep_node": sid, "id": f"sweep:{sid}", "points": []}
                children.setdefault(r["parent"] if r["parent"] in ids else None, []).append(node)
            node["points"].append(r)
            children.setdefault(node["id"], []).append(r)
            continue
        children.setdefault(r["parent"] if r["parent"] in ids else None, []).append(r)
    lines: list[str] = []

    def line(r: dict, indent: str, branch: str) -> None:
        if "sweep_node" in r:
            runs_of = r["points"]
            when = (runs_of[0]["started_at"] or "").replace("T", " ")[:16]
            latest = {json.dumps(pt["overrides"], sort_keys=True): pt for pt in runs_of}  # a point: its last run
            counts: dict[str, int] = {}
            for pt in latest.values():
                counts[pt["status"]] = counts.get(pt["status"], 0) + 1
            states = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
            resumed = f" ({len(runs_of)} runs)" if len(runs_of) > len(latest) else ""
            lines.append(f"{indent}{branch}sweep {r['sweep_node']}  {when}  {len(latest)} points{resumed}  {states}")
            return
        when = (r["started_at"] or "").replace("T", " ")[:16]
        changed = ", ".join(r["changed"][:3]) + (" …" if len(r["changed"]) > 3 else "")
        kind = "branch " if r.get("kind") == "branch" else ""
        parts = [f"{indent}{branch}{r['id']}", when, f"{kind}{r['status']}"]
        if changed:
            parts.append(changed)
        metrics = headline(r["metrics"])
        if metrics:
            parts.append(metrics)
        lines.append("  ".join(parts))

    stack: list[tuple[dict, str, str, str]] = [(r, "", "", "") for r in reversed(children.get(None, []))]
    while stack:
        r, indent, branch, child_indent = stack.pop()
        line(r, indent, branch)
        kids = children.get(r["id"], [])
        for i, k in reversed(list(enumerate(kids))):
            last = i == len(kids) - 1
            stack.append((k, child_indent, "└─ " if last else "├─ ", child_indent + ("   " if last else "│  ")))
    return "\n".join(lines) + "\n"


def render_manifest(m: dict) -> str:
    lines = [f"run {m['id']}  {m['status']}  parent {m['parent'] or '-'}",
             f"started {m['started_at']}  finished {m['finished_at'] or '-'}",
             f"argv: {' '.join(m['argv'])}"]
    if m["overrides"]:
        lines.append("overrides: " + ", ".join(f"{k}={v}" for k, v in m["overrides"].items()))
    width = max((len(n) for n in m["targets"]), default=0)
    for n, t in m["targets"].items():
        dur = f"{t['duration_s']:.2f}s" if t.get("duration_s") else ""
        lines.append(f"  {t['action']:<9} {n.ljust(width)}  {dur:>7}  {t.get('reason') or ''}".rstrip())
    for f, content in m["metrics"].items():
        lines.append(f"metrics {f}: {json.dumps(content, sort_keys=True)}")
    return "\n".join(lines) + "\n"


def render_diff(d: dict, left: str, right: str) -> str:
    lines: list[str] = []
    if d["params"]:
        lines.append(f"params ({left} -> {right}):")
        for k, (a, b) in d["params"].items():
            lines.append(f"  {k}: {json.dumps(a)} -> {json.dumps(b)}")
    for f, rows in d["metrics"].items():
        lines.append(f"metrics {f} ({left} -> {right}):")
        for k, (a, b, delta) in rows.items():
            dd = f"  ({delta:+.4g})" if isinstance(delta, (int, float)) else ""
            lines.append(f"  {k}: {json.dumps(a)} -> {json.dumps(b)}{dd}")
    if not lines:
        lines.append("no differences in params or metrics")
    return "\n".join(lines) + "\n"
