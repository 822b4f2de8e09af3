"""Commands that build or judge targets: run, branch, status, check, dag."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from ..errors import EXIT_FAILED, EXIT_INVALID, EXIT_OK, UsageError
from ..jsontext import dumps
from .app import JSON, SET, TARGETS, _g, app, run_options

if TYPE_CHECKING:
    from ..render import TerminalReporter
    from ..runflow import RunResult


@app.command()
@run_options
def run(ctx: typer.Context, targets: list[str] | None = TARGETS, *, options: dict[str, Any],
        as_json: bool) -> int:
    """Build the targets and whatever they need that is stale.

    Example: pipetool run train -j 4 -S train.lr=0.1
    """
    from ..api import run as api_run
    from ..render import TerminalReporter

    g = _g(ctx)
    rep = TerminalReporter(sys.stderr)
    result = api_run(targets or (), file=g.file, cwd=g.cwd, reporter=rep, **options)
    return _finish_run(result, rep, as_json)


def _finish_run(result: RunResult, rep: TerminalReporter, as_json: bool) -> int:
    """The closing line of `run` and `branch` (and their --json)."""
    if as_json:
        print(dumps(result.to_json(), indent=2, sort_keys=True))
    counts: dict[str, int] = {}
    for r in result.targets.values():
        counts[r.action] = counts.get(r.action, 0) + 1
    if result.status == "dry-run":
        n = counts.get("would-run", 0)
        rep.say(f"dry run: {n} target(s) would run" if n else "nothing to do: all targets up to date")
    elif not counts.get("built") and not counts.get("restored") and result.status == "succeeded":
        rep.say(f"nothing to do: {counts.get('skipped', 0)} target(s) up to date (run {result.run_id})")
    else:
        parts = [f"{v} {k}" for k, v in sorted(counts.items())]
        rep.say(f"run {result.run_id} {result.status}: {', '.join(parts)}")
    return result.exit_code


@app.command()
def status(
    ctx: typer.Context,
    targets: list[str] | None = TARGETS,
    check: bool = typer.Option(False, "--check", help="Exit 1 when anything is stale or pending."),
    set_: list[str] | None = SET,
    as_json: bool = JSON,
) -> int:
    """Say what is stale or pending, and why; runs nothing.

    Example: pipetool status --check   (exit 1 when anything needs a rebuild)
    """
    from ..api import status as api_status

    g = _g(ctx)
    report = api_status(targets or (), file=g.file, cwd=g.cwd, set=set_ or ())
    if as_json:
        print(dumps(report.to_json(), indent=2))
    else:
        _print_status(report)
    return EXIT_FAILED if check and not report.up_to_date else EXIT_OK


def _print_status(report) -> None:
    from ..render import status_lines

    names = [n for n, v in report.targets.items() if v.state != "fresh"]
    for line in status_lines(report.targets, grouped=sys.stdout.isatty()):
        print(line)
    fresh = len(report.targets) - len(names)
    if not names:
        print(f"all {fresh} target(s) up to date")
    else:
        stale, pending = len(report.names("stale")), len(report.names("pending"))
        print(f"{stale} stale, {pending} pending, {fresh} fresh")


@app.command()
@run_options
def branch(
    ctx: typer.Context,
    from_run: str = typer.Option(..., "--from", metavar="RUN", help="The run to branch from."),
    targets: list[str] | None = TARGETS,
    *,
    options: dict[str, Any],
    as_json: bool,
) -> int:
    """Start a new run from RUN: put its outputs back, take its params with the -S
    overrides applied, and run what is stale against that. The new run's parent is RUN;
    branching from a failed run reruns only what did not succeed.

    Example: pipetool branch --from 0mww5i -S train.lr=0.1
    """
    from ..experiments import branch as api_branch
    from ..render import TerminalReporter

    g = _g(ctx)
    rep = TerminalReporter(sys.stderr)
    result = api_branch(from_run, targets or (), file=g.file, cwd=g.cwd, reporter=rep, **options)
    return _finish_run(result, rep, as_json)


@app.command()
def check(
    ctx: typer.Context,
    set_: list[str] | None = SET,
    as_json: bool = JSON,
) -> int:
    """Validate the pipeline without running anything: schema, params, graph, callables
    (found, with a signature pipetool can call); warn about commands that read project
    files they do not declare. Exit 2 on errors, 0 otherwise.

    Example: pipetool check && pipetool run
    """
    from ..lint import check as api_check

    g = _g(ctx)
    report = api_check(file=g.file, cwd=g.cwd, set=set_ or ())
    if as_json:
        print(dumps(report.to_json(), indent=2))
    else:
        for f in report.findings:
            print(f, file=sys.stderr if f.level == "error" else sys.stdout)
        errors = sum(f.level == "error" for f in report.findings)
        warnings = sum(f.level == "warning" for f in report.findings)
        print(f"{errors} error(s), {warnings} warning(s)")
    return EXIT_OK if report.ok else EXIT_INVALID


@app.command()
def dag(
    ctx: typer.Context,
    format: str = typer.Option("ascii", "--format", help="ascii, mermaid or dot."),
) -> int:
    """Print the target graph.

    Example: pipetool dag --format mermaid > dag.md
    """
    from ..api import dag as api_dag
    from ..render import FORMATS

    if format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    g = _g(ctx)
    sys.stdout.write(api_dag(file=g.file, cwd=g.cwd, format=format))
    return EXIT_OK
