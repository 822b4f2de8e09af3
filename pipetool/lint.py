"""`pipetool check`: everything that can be known about a pipeline without running it.

Errors (exit 2) are what `run` would refuse anyway: the schema, params (and their schema),
the graph, callables that cannot be found or called with what pipetool offers. Warnings
and notes point at likely mistakes: a command that reads a project file it does not
declare (so editing that file would not rerun it), an out that no target consumes.
"""
from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import PipetoolError
from .spec.params import overrides_from
from .spec.paths import inside, is_glob, strip_dir


@dataclass
class Finding:
    level: str  # "error" | "warning" | "info"
    message: str
    target: str | None = None

    def __str__(self) -> str:
        where = f"target '{self.target}': " if self.target else ""
        return f"{self.level}: {where}{self.message}"


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    def to_json(self) -> dict:
        return {"ok": self.ok, "findings": [f.__dict__ for f in self.findings]}


def check(*, file: str | None = None, cwd: str | None = None, set=None) -> CheckReport:
    """Validate the pipeline, its params and its callables; run nothing, write nothing
    but pipetool's own caches."""
    from .graph import check_sources
    from .prerun import check_callables
    from .project import open_project

    report = CheckReport()
    try:
        proj = open_project(file, cwd, overrides_from(set))
    except PipetoolError as exc:
        report.findings.append(Finding("error", exc.render()))
        return report
    with proj:
        p, g = proj.pipeline, proj.graph
        selected = list(g.order)

        def exists(dep: str) -> bool:
            return proj.hasher.digest(dep) is not None

        steps: tuple[Callable[[str], None], ...] = (
            lambda n: check_sources(p, g, [n], exists), lambda n: check_callables(p, [n]))
        for name in selected:  # one finding per target, so every problem is listed
            for step in steps:
                try:
                    step(name)
                except PipetoolError as exc:
                    report.findings.append(Finding("error", exc.render()))
        for name in selected:
            report.findings.extend(_undeclared_reads(p, name))
        report.findings.extend(_unconsumed_outs(p, g))
    return report


_REDIRECT = re.compile(r"^(?:\d*>>?|\d*>\||&>>?|\d*<>)")  # an output redirection operator


def _redirect_targets(words: list[str]) -> set[int]:
    """Indexes of the words a command writes to through a redirection: the word after a
    lone operator (`>`, `2>>`, `&>`), or a word that starts with one (`2>log.txt`)."""
    out: set[int] = set()
    for i, w in enumerate(words):
        m = _REDIRECT.match(w)
        if m is None:
            continue
        if m.end() == len(w):
            out.add(i + 1)
        elif not w[m.end():].startswith("&"):  # `2>&1` duplicates a descriptor, names no file
            out.add(i)
    return out


def _undeclared_reads(p, name: str) -> list[Finding]:
    t = p.targets[name]
    if t.cmd is None:
        return []
    try:
        words = shlex.split(t.cmd, comments=True)
    except ValueError:
        words = t.cmd.split()
    covered = [d.path for d in t.deps] + list(t.outs)
    found: list[Finding] = []
    seen: set[str] = set()
    written = _redirect_targets(words)
    for i, w in enumerate(words):
        if i in written:  # `> log.txt`, `2>> err.log`: what the command writes, never a dep
            continue
        if w.startswith("<") and not w.startswith("<<"):  # `<input.csv`: read, so still a dep to check
            w = w[1:]
        w = w.split("=", 1)[-1] if w.startswith("--") and "=" in w else w
        if not w or w.startswith("-") or is_glob(w) or "$" in w or os.path.isabs(w):
            continue
        rel = os.path.normpath(w).replace(os.sep, "/")
        if rel in seen or rel.startswith(("..", ".pipetool")):
            continue
        seen.add(rel)
        if not os.path.isfile(os.path.join(p.root, rel)):
            continue
        if any(inside(rel, c) for c in covered if not is_glob(c)):
            continue
        import fnmatch

        if any(fnmatch.fnmatchcase(rel, c.rstrip("/")) for c in covered if is_glob(c)):
            continue
        found.append(Finding("warning", f"its command mentions {rel}, which is not a declared dep: "
                                        f"editing it would not rerun the target", name))
    return found


def _unconsumed_outs(p, g) -> list[Finding]:
    """Outs no dep reads: none equal to, inside, or around them. Linear in the paths: each
    consumed dep contributes itself and its folders, each out looks up itself and its folders."""
    consumed: set[str] = set()  # deps some target reads from another target's outs
    for deps in g.dep_producers.values():
        consumed.update(strip_dir(d) for d in deps if not is_glob(d))
    at_or_above = {a for d in consumed for a in _self_and_folders(d)}  # a dep is at or below each
    found: list[Finding] = []
    for name, t in p.targets.items():
        for out in t.outs:
            if out in t.metrics:
                continue
            key = strip_dir(out)
            if key in at_or_above or any(f in consumed for f in _self_and_folders(key)):
                continue
            found.append(Finding("info", f"out {out} is consumed by no target (a final result?)", name))
    return found


def _self_and_folders(path: str) -> list[str]:
    """`a/b/c` -> [`a/b/c`, `a/b`, `a`]."""
    out = [path]
    while "/" in path:
        path = path.rpartition("/")[0]
        out.append(path)
    return out
