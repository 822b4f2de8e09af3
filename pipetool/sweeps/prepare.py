"""Every point of a sweep loaded and checked before anything runs (SPEC §10).

A point's effective params are the base params (the pipeline's, or a `--from` run's),
then the sweep's single values (`Space.fixed`), then the point's values: loaded like `run
-S` (the params schema included), its selection resolved and checked like a run's
(callables, outs inside the root, resources). Any problem is the user's error, exit 2,
naming the point: `point 3 (train.lr=-1): …`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PipelineError, UsageError
from ..graph import Graph, build_graph
from ..jsontext import dumps
from ..partitioning import template_names
from ..project import Project
from ..spec.loader import load
from ..spec.model import Pipeline
from ..spec.partitions import template_of
from .space import Point


@dataclass
class PreparedPoint:
    """A point ready to run: its pipeline (and graph), what to run, and how to name it."""

    point: Point
    number: int  # 1-based, in the sweep's order
    overrides: dict[str, Any]  # fixed + the point's values: its run's `overrides`
    proj: Project  # the project as this point's params make it (root: the project's)
    selected: list[str]
    templates: set[str]

    @property
    def label(self) -> str:
        """`3 lr=0.1 epochs=5`: how progress lines name the point."""
        return f"{self.number} " + " ".join(f"{k}={value_text(v)}" for k, v in short_keys(self.point.values).items())

    @property
    def described(self) -> str:
        """`point 3 (train.lr=-1)`: how errors name the point."""
        values = ", ".join(f"{k}={value_text(v)}" for k, v in self.point.values.items())
        return f"point {self.number} ({values})" if values else f"point {self.number}"


def value_text(v: Any) -> str:
    """A value as a person reads it in a label (strings bare, the rest as JSON)."""
    return v if isinstance(v, str) else dumps(v, default=str)


def short_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    """Each key by its last segment (`lr`), unless two keys share it (then in full)."""
    last = [k.rpartition(".")[2] for k in values]
    return {(s if last.count(s) == 1 else k): v for k, s, v in zip(values, last, values.values())}


def _graph_of(p: Pipeline) -> Graph:
    return p.derived("graph", lambda: build_graph(p))


def prepare_points(points: list[Point], fixed: dict[str, Any], targets: tuple[str, ...], base: Project,
                   base_params: dict[str, Any] | None, capacity: Mapping[str, float],
                   warn: Callable[[str], None], numbers: list[int] | None = None) -> list[PreparedPoint]:
    """Load and check every point (`numbers`: their 1-based places in the sweep, when only
    some points are prepared, as by `--resume`). `base` is the opened project: its store
    and its hasher, whose digests of the sources every point shares."""
    from ..prerun import check_callables, check_outs_inside, check_resources

    p0 = base.pipeline
    out: list[PreparedPoint] = []
    warned = False
    for i, point in enumerate(points):
        number = numbers[i] if numbers is not None else point.index + 1
        overrides = {**fixed, **point.values}
        shell = PreparedPoint(point, number, overrides, base, [], set())
        try:
            p = load(p0.file, None, overrides, base_params)
            proj = Project(p, _graph_of(p), base.conn, base.stat_cache, base.hasher)
            proj.expand(sorted({tpl for n in targets if (tpl := template_of(n)) is not None}))
            _, selected = proj.selection(list(targets), None if warned else warn)
            warned = True
            p = proj.pipeline
            check_callables(p, selected)
            check_outs_inside(p, selected)
            check_resources(p, selected, capacity)
        except (PipelineError, UsageError) as exc:  # the point's own params or selection
            cls = UsageError if isinstance(exc, UsageError) else PipelineError
            raise cls(f"{shell.described}: {exc.render()}") from None
        templates = set(p.partitioned) if not targets else (
            template_names(p, selected) | {n for n in targets if n in p.partitioned})
        out.append(dataclasses.replace(shell, proj=proj, selected=selected, templates=templates))
    return out
