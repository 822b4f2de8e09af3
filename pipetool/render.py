"""Text for people: the DAG (ascii, mermaid, dot) and the terminal progress reporter."""
from __future__ import annotations

import json
import os
import sys
from typing import TextIO

from .graph import Graph
from .spec.model import Pipeline

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

    def __init__(self, stream: TextIO | None = None, root: str = ""):
        self.stream = stream or sys.stderr
        self.root = root
        enc = (getattr(self.stream, "encoding", "") or "").lower()
        self.fancy = "utf" in enc
        self.counts = {"built": 0, "failed": 0}

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _sym(self, fancy: str, plain: str) -> str:
        return fancy if self.fancy else plain

    def waiting(self, message: str) -> None:
        self._say(message)

    def started(self, name: str, reasons: tuple[str, ...]) -> None:
        why = f"  ({'; '.join(reasons)})" if reasons else ""
        self._say(f"{self._sym('▶', '>')} {name}{why}")

    def finished(self, name: str, result) -> None:
        self.counts["built"] += 1
        self._say(f"{self._sym('✔', 'ok')} {name}  {result.duration_s:.2f}s")

    def restored(self, name: str, reason: str) -> None:
        self.counts["restored"] = self.counts.get("restored", 0) + 1
        self._say(f"{self._sym('↺', '<')} {name}  ({reason})")

    def failed(self, name: str, message: str, log_tail: str, log_path: str) -> None:
        self.counts["failed"] += 1
        self._say(f"{self._sym('✘', 'FAILED')} {name} failed: {message}")
        for line in log_tail.splitlines():
            self._say(f"    | {line}")
        shown = os.path.relpath(log_path) if log_path else ""
        if shown:
            self._say(f"    full output: {shown}")

    def dry_run(self, name: str, verdict) -> None:
        self._say(f"would run {name}  ({'; '.join(verdict.reasons)})")
