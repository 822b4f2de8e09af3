"""The `pipetool` command: a thin typer skin over the Python API (parse, call, render)."""
from __future__ import annotations

import json
import os
import sys
from typing import List, Optional

import typer

from . import __version__
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, PipetoolError, UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="pipetool: a content-hash Make for ML and data pipelines.\n\n"
    "Declare targets, commands and params in pipeline.yaml; `pipetool run` runs only what is stale.",
)


class Globals:
    def __init__(self, directory: Optional[str], file: Optional[str]):
        self.cwd = directory
        self.file = file


def _version(value: bool) -> None:
    if value:
        print(f"pipetool {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    directory: Optional[str] = typer.Option(None, "-C", "--directory", metavar="DIR",
                                            help="Run as if started in DIR."),
    file: Optional[str] = typer.Option(None, "-f", "--file", metavar="FILE",
                                       help="Pipeline file (default: pipeline.yaml here or above)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    if directory is not None and not os.path.isdir(directory):
        raise UsageError(f"-C {directory}: no such directory")
    ctx.obj = Globals(directory, file)


def _g(ctx: typer.Context) -> Globals:
    return ctx.obj


TARGETS = typer.Argument(None, metavar="[TARGET]...", help="Target names or out paths (none: all).")
SET = typer.Option(None, "-S", "--set", metavar="KEY=VALUE",
                   help="Override a param for this invocation (repeatable), e.g. -S train.lr=0.1.")
JSON = typer.Option(False, "--json", help="Machine-readable output on stdout.")


@app.command()
def run(
    ctx: typer.Context,
    targets: Optional[List[str]] = TARGETS,
    jobs: int = typer.Option(os.cpu_count() or 1, "-j", "--jobs", min=1, help="Targets run at once."),
    set_: Optional[List[str]] = SET,
    dry_run: bool = typer.Option(False, "-n", "--dry-run", help="Print what would run and why; run nothing."),
    force: bool = typer.Option(False, "--force", help="Rebuild the named targets (or all selected) even when fresh."),
    keep_going: bool = typer.Option(False, "-k", "--keep-going",
                                    help="After a failure, go on with what does not depend on it."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Exit 3 at once if another pipetool holds the project."),
    as_json: bool = JSON,
) -> int:
    """Build the targets and whatever they need that is stale.

    Example: pipetool run train -j 4 -S train.lr=0.1
    """
    from .api import run as api_run
    from .render import TerminalReporter

    g = _g(ctx)
    rep = TerminalReporter(sys.stderr)
    result = api_run(targets or (), jobs=jobs, force=force, keep_going=keep_going, dry_run=dry_run,
                     set=set_ or (), file=g.file, cwd=g.cwd, wait=not no_wait, reporter=rep,
                     argv=["pipetool"] + sys.argv[1:])
    if as_json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=True))
    counts: dict[str, int] = {}
    for r in result.targets.values():
        counts[r.action] = counts.get(r.action, 0) + 1
    if result.status == "dry-run":
        n = counts.get("would-run", 0)
        rep._say(f"dry run: {n} target(s) would run" if n else "nothing to do: all targets up to date")
    elif counts.get("built", 0) == 0 and result.status == "succeeded":
        rep._say(f"nothing to do: {counts.get('skipped', 0)} target(s) up to date")
    else:
        parts = [f"{v} {k}" for k, v in sorted(counts.items())]
        rep._say(f"run {result.run_id} {result.status}: {', '.join(parts)}")
    return result.exit_code


@app.command()
def status(
    ctx: typer.Context,
    targets: Optional[List[str]] = TARGETS,
    check: bool = typer.Option(False, "--check", help="Exit 1 when anything is stale or pending."),
    set_: Optional[List[str]] = SET,
    as_json: bool = JSON,
) -> int:
    """Say what is stale or pending, and why; runs nothing.

    Example: pipetool status --check   (exit 1 when anything needs a rebuild)
    """
    from .api import status as api_status

    g = _g(ctx)
    report = api_status(targets or (), file=g.file, cwd=g.cwd, set=set_ or ())
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print_status(report)
    return EXIT_FAILED if check and not report.up_to_date else EXIT_OK


def _print_status(report) -> None:
    names = [n for n, v in report.targets.items() if v.state != "fresh"]
    width = max((len(n) for n in names), default=0)
    for n in names:
        v = report.targets[n]
        print(f"{v.state:<8} {n.ljust(width)}  {'; '.join(v.reasons)}")
    fresh = len(report.targets) - len(names)
    if not names:
        print(f"all {fresh} target(s) up to date")
    else:
        stale, pending = len(report.names("stale")), len(report.names("pending"))
        print(f"{stale} stale, {pending} pending, {fresh} fresh")


@app.command()
def dag(
    ctx: typer.Context,
    format: str = typer.Option("ascii", "--format", help="ascii, mermaid or dot."),
) -> int:
    """Print the target graph.

    Example: pipetool dag --format mermaid > dag.md
    """
    from .api import dag as api_dag
    from .render import FORMATS

    if format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    g = _g(ctx)
    sys.stdout.write(api_dag(file=g.file, cwd=g.cwd, format=format))
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one paragraph on stderr and an exit status."""
    try:  # newer typer releases vendor click
        from typer._click import exceptions as click_exc
    except ImportError:
        from click import exceptions as click_exc

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="pipetool", standalone_mode=False)
    except PipetoolError as exc:
        print(f"pipetool: error: {exc.render()}", file=sys.stderr)
        code = exc.exit_code
    except click_exc.Exit as exc:
        code = exc.exit_code
    except click_exc.ClickException as exc:
        exc.show()
        code = EXIT_INVALID if exc.exit_code == 2 else exc.exit_code
    except (click_exc.Abort, KeyboardInterrupt):
        print("pipetool: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.exit(code if isinstance(code, int) else EXIT_OK)
