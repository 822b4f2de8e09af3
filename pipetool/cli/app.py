"""The typer app, the global options, and the options commands share (`run_options`)."""
from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

import typer

from .. import __version__
from ..errors import UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="pipetool: a content-hash Make for ML and data pipelines.\n\n"
    "Declare targets, commands and params in pipeline.yaml; `pipetool run` runs only what is stale.",
)


class Globals:
    def __init__(self, directory: str | None, file: str | None):
        self.cwd = directory
        self.file = file


def _version(value: bool) -> None:
    if value:
        print(f"pipetool {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    directory: str | None = typer.Option(None, "-C", "--directory", metavar="DIR",
                                            help="Run as if started in DIR."),
    file: str | None = typer.Option(None, "-f", "--file", metavar="FILE",
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
NO_WAIT = typer.Option(False, "--no-wait", help="Exit 3 at once if another pipetool holds the project.")
REMOTE = typer.Option(None, "--remote", metavar="URL",
                      help="Remote cache (an fsspec URL); wins over $PIPETOOL_REMOTE and `remote:`.")


# The options `run` and `branch` share: declared once, added to each command by
# `run_options`, and handed to the API as the keywords of `runconfig.run_request`.
_RUN_OPTIONS: list[tuple[str, Any, Any]] = [  # (parameter, type, typer option)
    ("jobs", int | None, typer.Option(
        None, "-j", "--jobs", min=1, show_default=False, help="Targets run at once (default: the number of cores).")),
    ("set_", list[str] | None, SET),
    ("dry_run", bool, typer.Option(False, "-n", "--dry-run", help="Print what would run and why; run nothing.")),
    ("force", bool, typer.Option(
        False, "--force", help="Rebuild the named targets (or all selected) even when fresh.")),
    ("keep_going", bool, typer.Option(
        False, "-k", "--keep-going", help="After a failure, go on with what does not depend on it.")),
    ("no_wait", bool, NO_WAIT),
    ("as_json", bool, JSON),
    # Beyond one machine (SPEC §8): where targets run, and the remote cache.
    ("executor", str, typer.Option("local", "--executor", metavar="local|dask", help="Where targets run.")),
    ("scheduler", str | None, typer.Option(
        None, "--scheduler", metavar="ADDRESS",
        help="Dask scheduler address (default: $PIPETOOL_DASK_SCHEDULER, else a local cluster sized by -j).")),
    ("resources", list[str] | None, typer.Option(
        None, "--resources", metavar="NAME=N,...",
        help="What the machine has, e.g. gpu=2,mem_gb=32: a target's resources are held while it runs.")),
    ("remote", str | None, REMOTE),
    ("no_push", bool, typer.Option(False, "--no-push", help="Do not upload what this run builds to the remote.")),
    ("read_only", bool, typer.Option(
        False, "--read-only", help="Never write to the remote (e.g. CI jobs from forks).")),
]


def run_options(command: Callable[..., int]) -> Callable[..., int]:
    """Give a command the options `run` and `branch` share; it receives them as `options`
    (the API's keywords) and `as_json`."""
    sig = inspect.signature(command)
    own = [prm for prm in sig.parameters.values() if prm.name not in ("options", "as_json")]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=tp)
             for name, tp, opt in _RUN_OPTIONS]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        v = {name: kwargs.pop(name) for name, _, _ in _RUN_OPTIONS}
        options = {"jobs": v["jobs"], "set": v["set_"] or (), "dry_run": v["dry_run"], "force": v["force"],
                   "keep_going": v["keep_going"], "wait": not v["no_wait"], "argv": ["pipetool", *sys.argv[1:]],
                   "executor": v["executor"], "scheduler": v["scheduler"], "resources": v["resources"],
                   "remote": v["remote"], "push": not v["no_push"], "read_only": v["read_only"]}
        return command(*args, options=options, as_json=v["as_json"], **kwargs)

    wrapper.__signature__ = sig.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**{k: a for k, a in command.__annotations__.items() if k not in ("options", "as_json")},
                               **{name: tp for name, tp, _ in _RUN_OPTIONS}}
    return wrapper
