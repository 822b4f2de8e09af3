"""An opened project: the loaded pipeline, its graph, the store and a hasher over them;
used as a context manager (`with open_project(...) as proj:`), which closes the store."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .fingerprint.hashing import Hasher
from .graph import Graph, build_graph, check_sources, resolve_targets, select
from .spec.loader import load
from .spec.model import Pipeline
from .store.db import StoreConnection, open_db
from .store.failures import ReadOnlyError, StoreWriteError
from .store.lockfile import read_lock
from .store.records import Record, load_records
from .store.statcache import StatCache


@dataclass
class Project:
    pipeline: Pipeline
    graph: Graph
    conn: StoreConnection | None
    stat_cache: StatCache
    hasher: Hasher

    @property
    def root(self) -> str:
        return self.pipeline.root

    def records(self) -> dict[str, Record]:
        return load_records(self.conn, lambda: read_lock(self.root), self.pipeline.targets)

    def selection(self, names: Iterable[str] | None,
                  warn: Callable[[str], None] | None = None) -> tuple[list[str], list[str]]:
        """(resolved names, selected targets in topological order); the selection's
        deps that no target produces must exist (hashed here, memoized for later). `warn`
        hears of a name that is a target and another target's out."""
        asked = list(names or ())
        resolved = resolve_targets(self.pipeline, self.graph, asked, warn)
        selected = select(self.graph, resolved) if resolved or not asked else []  # a foreach with no items
        check_sources(self.pipeline, self.graph, selected, lambda d: self.hasher.digest(d) is not None)
        return resolved, selected

    def expand(self, names: Iterable[str] | None = None) -> None:
        """Replace foreach placeholders by their partitions for the files on disk: those
        `names` (foreach target names), or every one whose glob matches files now."""
        from .partitioning import expand, expand_all

        if names is None:
            p = expand_all(self.pipeline, self.hasher)
        else:
            todo = [n for n in names if n in self.pipeline.targets and self.pipeline.targets[n].foreach]
            p = expand(self.pipeline, todo, self.hasher)[0] if todo else self.pipeline
        if p is not self.pipeline:
            self.pipeline, self.graph = p, build_graph(p)

    def close(self) -> None:
        """Write back what was hashed and close the store (what `with` does on exit)."""
        self.stat_cache.flush()
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_project(
    file: str | None = None, cwd: str | None = None, overrides: dict[str, Any] | None = None,
    base_params: dict[str, Any] | None = None,
) -> Project:
    p = load(file, cwd, overrides, base_params)
    g = p.derived("graph", lambda: build_graph(p))
    try:
        conn = open_db(p.root, create=True)  # read-only media: opened read-only, or None when absent
    except (ReadOnlyError, StoreWriteError):
        conn = None  # a new store that cannot be made (a full disk): status answers from pipetool.lock
    cache = StatCache(conn)
    return Project(p, g, conn, cache, Hasher(p.root, cache))


def ensure_dir(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path
