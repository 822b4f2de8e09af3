"""The DAG: edges from data (a dep equal to, inside, or around another target's out) and
`needs`; duplicate outs, missing deps and cycles are errors; selection of upstream closures.
"""
from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from dataclasses import dataclass

from .errors import PipelineError, UsageError
from .spec.model import Pipeline
from .spec.params import closest
from .spec.paths import is_glob, strip_dir


@dataclass(frozen=True)
class Graph:
    order: tuple[str, ...]  # a topological order (upstream first), stable by declaration
    upstream: dict[str, tuple[str, ...]]  # direct upstream targets
    downstream: dict[str, tuple[str, ...]]
    producer: dict[str, str]  # out path (no trailing "/") -> target
    dep_producers: dict[str, dict[str, tuple[str, ...]]]  # target -> dep -> its producers

    def closure_up(self, names) -> set[str]:
        seen: set[str] = set()
        stack = list(names)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.upstream[n])
        return seen

    def closure_down(self, names) -> set[str]:
        seen: set[str] = set()
        stack = list(names)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.downstream[n])
        return seen


def own_files(p: Pipeline) -> list[str]:
    """The files pipetool itself reads from the workspace (relative to the root)."""
    return [os.path.relpath(p.file, p.root).replace(os.sep, "/"), "pipetool.lock", *p.config_files]


def build_graph(p: Pipeline) -> Graph:
    producer: dict[str, str] = {}
    own = own_files(p)
    for name, t in p.targets.items():
        for out in t.outs:
            key = strip_dir(out)
            for f in own:
                if f == key or f.startswith(key + "/"):
                    raise PipelineError(
                        f"target '{name}': out '{out}' would overwrite {f}, which pipetool reads; "
                        "the pipeline file, its params files and pipetool.lock can never be outs",
                        p.where("targets", name, "outs"))
            if key in producer:
                other = producer[key]
                raise PipelineError(
                    f"out '{out}' is declared by both '{other}' and '{name}'; each out has one producer",
                    p.where("targets", name, "outs"),
                )
            producer[key] = name
    # An out inside another out's folder would let two targets write the same files.
    for key, name in producer.items():
        parent = os.path.dirname(key)
        while parent:
            if parent in producer:
                raise PipelineError(
                    f"out '{key}' of '{name}' lies inside out '{parent}/' of '{producer[parent]}'",
                    p.where("targets", name, "outs"),
                )
            parent = os.path.dirname(parent)
    # Folders that hold outs, so a dep on a folder finds the targets writing into it.
    below: dict[str, list[str]] = {}
    for key, name in producer.items():
        parent = os.path.dirname(key)
        while parent:
            below.setdefault(parent, []).append(name)
            parent = os.path.dirname(parent)

    # Folder outs (declared with a trailing "/") are the ones a glob can match inside.
    dir_outs = {strip_dir(o) for t in p.targets.values() for o in t.outs if o.endswith("/")}
    up: dict[str, list[str]] = {n: [] for n in p.targets}
    dep_producers: dict[str, dict[str, tuple[str, ...]]] = {}
    for name, t in p.targets.items():
        ups = up[name]
        seen: set[str] = set()
        for i, dep in enumerate(t.deps):
            found = _producers(dep.path, producer, below, dir_outs)
            if found:
                dep_producers.setdefault(name, {})[dep.path] = tuple(found)
            for u in found:
                if u == name:
                    raise PipelineError(
                        f"target '{name}' lists its own out '{dep.path}' as a dep",
                        p.where("targets", name, "deps", i),
                    )
                if u not in seen:
                    seen.add(u)
                    ups.append(u)
        for i, need in enumerate(t.needs):
            if need not in p.targets:
                raise PipelineError(
                    f"target '{name}' needs unknown target '{need}'{closest(need, p.targets)}",
                    p.where("targets", name, "needs", i),
                )
            if need == name:
                raise PipelineError(f"target '{name}' needs itself", p.where("targets", name, "needs", i))
            if need not in seen:
                seen.add(need)
                ups.append(need)

    order = _toposort(p, up)
    down: dict[str, list[str]] = {n: [] for n in p.targets}
    for n in order:
        for u in up[n]:
            down[u].append(n)
    return Graph(
        order=tuple(order),
        upstream={n: tuple(v) for n, v in up.items()},
        downstream={n: tuple(v) for n, v in down.items()},
        producer=producer,
        dep_producers=dep_producers,
    )


def check_sources(p: Pipeline, g: Graph, selected, exists) -> None:
    """Every dep no target produces must be on disk (`exists(path)`; globs must match)."""
    for name in selected:
        if p.targets[name].foreach is not None:
            continue  # a glob of items: matching nothing means no partitions
        produced = g.dep_producers.get(name, {})
        for i, dep in enumerate(p.targets[name].deps):
            if dep.path not in produced and not exists(dep.path):
                what = "matches no file on disk" if is_glob(dep.path) else "is neither a file on disk"
                raise PipelineError(
                    f"target '{name}' depends on '{dep.path}', which {what} nor an out of any target",
                    p.where("targets", name, "deps", i),
                )


def _producers(dep: str, producer: dict[str, str], below: dict[str, list[str]], dir_outs: set[str]) -> list[str]:
    if is_glob(dep):
        pat = strip_dir(dep).split("/")
        return sorted({
            n for out, n in producer.items()
            if _glob_match(pat, out.split("/"), below=out in dir_outs)
            or any(_glob_match(pat, a.split("/"), below=False) for a in _ancestors(out))
        })
    key = strip_dir(dep)
    found: dict[str, None] = {}  # ordered, and a folder may hold thousands of outs
    # The dep is an out or lies inside one.
    k = key
    while k:
        if k in producer:
            found[producer[k]] = None
            break
        k = os.path.dirname(k)
    # The dep is a folder that holds outs.
    for n in below.get(key, ()):
        found[n] = None
    return list(found)


def _glob_match(pat: list[str], path: list[str], below: bool) -> bool:
    """Does the glob (as segments; `*` stays in one folder, `**` spans any number)
    match `path`, or with `below`, some path inside it?"""
    if not path:
        return below or not pat or pat == ["**"]
    if not pat:
        return False
    if pat[0] == "**":
        return _glob_match(pat[1:], path, below) or _glob_match(pat, path[1:], below)
    return fnmatch.fnmatchcase(path[0], pat[0]) and _glob_match(pat[1:], path[1:], below)


def _ancestors(path: str):
    parent = os.path.dirname(path)
    while parent:
        yield parent
        parent = os.path.dirname(parent)


def _toposort(p: Pipeline, up: dict[str, list[str]]) -> list[str]:
    """Depth-first post-order in declaration order; a cycle is named in full."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    order: list[str] = []
    for start in p.targets:
        if start in state:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        state[start] = 1
        while stack:
            node, i = stack[-1]
            ups = up[node]
            if i < len(ups):
                stack[-1] = (node, i + 1)
                nxt = ups[i]
                st = state.get(nxt)
                if st == 1:
                    cyc = path[path.index(nxt):]
                    # path runs downstream -> upstream; show the data direction
                    shown = " -> ".join(reversed(cyc + [nxt]))
                    raise PipelineError(
                        f"the targets form a cycle: {shown}", p.where("targets", nxt)
                    )
                if st is None:
                    state[nxt] = 1
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                stack.pop()
                path.pop()
                state[node] = 2
                order.append(node)
    return order


def resolve_targets(p: Pipeline, g: Graph, names: list[str] | tuple[str, ...],
                    warn: Callable[[str], None] | None = None) -> list[str]:
    """Map command-line names (target names or out paths) to target names. A name that is
    a target and also an out of another target means the target; `warn` says so, and how
    to name the file instead (`./NAME`)."""
    out: list[str] = []
    for raw in names:
        if raw not in p.targets and raw in p.partitioned:  # a foreach target: all its partitions
            out.extend(n for n, t in p.targets.items() if t.template == raw and n not in out)
            continue
        owner = _out_owner(p, g, raw) if raw else None
        if raw in p.targets:
            name: str | None = raw
            if owner is not None and owner != raw and warn is not None:
                warn(f"'{raw}' names target '{raw}', not the file {raw} (an out of target '{owner}'); "
                     f"write ./{raw} for the file")
        else:
            name = owner
        if name is None:
            raise UsageError(
                f"unknown target '{raw}': not a target name nor an out of any target"
                f"{closest(raw, list(p.targets) + list(g.producer))}"
            )
        if name not in out:
            out.append(name)
    return out


def _out_owner(p: Pipeline, g: Graph, raw: str) -> str | None:
    """The target producing the out `raw` names (relative to the root, else to the cwd)."""
    for spelled in (raw, os.path.relpath(os.path.abspath(raw), p.root)):
        name = g.producer.get(strip_dir(os.path.normpath(spelled).replace(os.sep, "/")))
        if name is not None:
            return name
    return None


def select(g: Graph, names: list[str]) -> list[str]:
    """The named targets and everything they need, in topological order (all when none)."""
    if not names:
        return list(g.order)
    keep = g.closure_up(names)
    return [n for n in g.order if n in keep]
