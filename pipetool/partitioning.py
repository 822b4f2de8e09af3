"""Partitions against the workspace: a glob placeholder expanded from the files on disk,
and the partitions whose items are gone (SPEC §10).

The spec makes partitions from items (`spec/partitions.py`); this module decides when
from which files, and which recorded partitions no longer have an item. Both `status` (from
the files as they are) and a run (once the target writing a glob's files is done) use it.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping

from .fingerprint.hashing import Hasher
from .graph import Graph, build_graph
from .spec.loader import expand_glob
from .spec.model import Pipeline, Target
from .spec.partitions import template_of
from .store.records import Record


def glob_items(p: Pipeline, name: str, hasher: Hasher) -> list[str]:
    """The files the placeholder `name`'s glob matches now (folders are not items)."""
    t = p.targets[name]
    assert t.foreach is not None
    root = p.root
    return [m for m in hasher.glob_paths(t.foreach) if os.path.isfile(os.path.join(root, m))]


def expand(p: Pipeline, names: Iterable[str], hasher: Hasher) -> tuple[Pipeline, list[str]]:
    """`p` with the placeholders `names` replaced by their partitions for the files on disk
    (a placeholder whose glob matches nothing is dropped); the partitions added, in order."""
    targets: dict[str, Target] = {}
    added: list[str] = []
    todo = set(names)
    for n, t in p.targets.items():
        if n in todo and t.foreach is not None:
            parts = expand_glob(p, n, glob_items(p, n, hasher))
            targets.update(parts)
            added += list(parts)
        else:
            targets[n] = t
    return dataclasses.replace(p, targets=targets, order=tuple(targets)), added


def expand_all(p: Pipeline, hasher: Hasher) -> Pipeline:
    """Every placeholder whose glob matches files now, expanded (what `status` shows); one
    that matches nothing stays, pending on the target that writes its files."""
    ready = [n for n, t in p.targets.items() if t.foreach is not None and glob_items(p, n, hasher)]
    return expand(p, ready, hasher)[0] if ready else p


def graph_of(p: Pipeline, derived: Graph | None) -> Graph:
    """The graph of `p`: `derived` when `p` is the pipeline as loaded, else built anew."""
    return derived if derived is not None else build_graph(p)


def has_placeholders(p: Pipeline) -> bool:
    return any(t.foreach is not None for t in p.targets.values())


def vanished(p: Pipeline, records: Mapping[str, Record], templates: Iterable[str],
             unknown: Iterable[str] | None = None) -> dict[str, str]:
    """Recorded partitions of `templates` whose item is gone: name -> KEY. A template whose
    items are `unknown` yet (by default: one still standing as a placeholder) has none."""
    pending = set(unknown) if unknown is not None else {t for t in p.partitioned if t in p.targets}
    known = {t for t in templates if t in p.partitioned and t not in pending}
    out: dict[str, str] = {}
    for name in records:
        tpl = template_of(name)
        if tpl in known and name not in p.targets:
            out[name] = name[len(tpl) + 1:-1]
    return out


def template_names(p: Pipeline, selected: Iterable[str]) -> set[str]:
    """The foreach targets `selected` holds partitions (or the placeholder) of."""
    out: set[str] = set()
    for n in selected:
        t = p.targets[n]
        if t.template is not None:
            out.add(t.template)
        elif t.foreach is not None:
            out.add(n)
    return out
