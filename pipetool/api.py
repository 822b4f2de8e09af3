"""The Python API: everything the CLI does, as functions returning plain data."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .judge import judge_workspace
from .plan import FRESH, State, Verdict
from .project import open_project
from .reporting import QuietReporter, Reporter, or_quiet
from .spec.loader import load as _load
from .spec.model import Pipeline
from .spec.params import overrides_from

if TYPE_CHECKING:  # the run path's modules load only when something runs
    from .runflow import RunResult


def load(file: str | None = None, cwd: str | None = None,
         set: Iterable[str] | Mapping[str, Any] | None = None) -> Pipeline:
    """Load and validate a pipeline (`set`: `-S` overrides as "k=v" strings or a dict)."""
    return _load(file, cwd, overrides_from(set))


@dataclass
class StatusReport:
    targets: dict[str, Verdict]

    def names(self, state: State) -> list[str]:
        return [n for n, v in self.targets.items() if v.state == state]

    @property
    def up_to_date(self) -> bool:
        return all(v.state == FRESH for v in self.targets.values())

    def to_json(self) -> dict[str, Any]:
        return {"targets": {n: {"state": v.state, "reasons": list(v.reasons)} for n, v in self.targets.items()}}


def status(
    targets: Iterable[str] = (), *, file: str | None = None, cwd: str | None = None,
    set: Iterable[str] | Mapping[str, Any] | None = None,
) -> StatusReport:
    """What is stale or pending among the targets (all when none) and why; runs nothing."""
    from .partitioning import template_names

    with open_project(file, cwd, overrides_from(set)) as proj:
        proj.expand()  # foreach globs over the files there now
        p = proj.pipeline
        names = list(targets)
        _, selected = proj.selection(names, QuietReporter().warning)
        templates = {*p.partitioned} if not names else (
            template_names(p, selected) | {n for n in names if n in p.partitioned})
        return StatusReport(judge_workspace(p, proj.graph, proj.hasher, selected, proj.records(), templates))


def run(targets: Iterable[str] = (), *, file: str | None = None, cwd: str | None = None,
        reporter: Reporter | None = None, **options: Any) -> RunResult:
    """Build the targets (all when none) and whatever they need that is stale.

    `options` are those of `runconfig.run_request`: `jobs`, `force`, `keep_going`,
    `dry_run`, `set` (-S overrides), `wait`, `argv`, and where the run executes and
    shares results: `executor` ("local" or "dask"), `scheduler`, `resources`, `remote`,
    `push`, `read_only`. `reporter` hears of each target (default: only warnings)."""
    from .runconfig import run_request
    from .runflow import start_run

    request = run_request(targets, **options)
    with open_project(file, cwd, request.overrides) as proj:
        return start_run(proj, request, or_quiet(reporter))


def dag(*, file: str | None = None, cwd: str | None = None, format: str = "ascii") -> str:
    """The graph as text: ascii, mermaid or dot."""
    from .graph import build_graph
    from .render import render_dag

    p = _load(file, cwd)
    return render_dag(p, p.derived("graph", lambda: build_graph(p)), format)
