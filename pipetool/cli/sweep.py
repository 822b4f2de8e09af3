"""`pipetool sweep` and `pipetool sweep show` (SPEC §10).

`show` is the first word of `sweep`, not a subcommand of a group (a group would take every
target name for a subcommand): `pipetool sweep show …` shows, any other first word is a
target. A target literally named `show` is named by its out path instead.
"""
from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

import click
import typer
from typer.core import TyperCommand

from ..errors import EXIT_OK
from ..jsontext import dumps
from ..render import TerminalReporter
from .app import _RUN_OPTIONS, JSON, TARGETS, _g, app

if TYPE_CHECKING:
    from ..execute.scheduler import TargetResult
    from ..runflow import RunResult

_SHOW_ARGS = "pipetool.sweep_show"
_OPTION = {name: opt for name, _, opt in _RUN_OPTIONS}


class _SweepCommand(TyperCommand):
    """`sweep show ARGS` is handed to the `show` command whole; `--resume` followed by
    an option (or nothing) resumes the last sweep."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] == "show":
            ctx.meta[_SHOW_ARGS] = args[1:]
            args = []
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--":
                break
            if arg == "--resume" and (i + 1 == len(args) or args[i + 1].startswith("-")):
                args[i] = "--resume=last"
        return super().parse_args(ctx, args)


@app.command(cls=_SweepCommand)
def sweep(
    ctx: typer.Context,
    targets: list[str] | None = TARGETS,
    set_: list[str] | None = typer.Option(
        None, "-S", "--set", metavar="KEY=CHOICES",
        help="A param's choices (repeatable): 0.1,0.01 or range(1,5) or choice(a,b); with --random also "
             "uniform(A,B), loguniform(A,B), randint(A,B). One value sets it for every point."),
    random_n: int | None = typer.Option(None, "--random", metavar="N", help="Draw N distinct points."),
    seed: int | None = typer.Option(None, "--seed", metavar="S", help="The seed of --random's draws."),
    sweep_file: str | None = typer.Option(None, "--sweep", metavar="FILE",
                                          help="Read the space from YAML: grid:, list: or random:."),
    from_run: str | None = typer.Option(None, "--from", metavar="RUN",
                                        help="Start every point from RUN's params and outputs (as branch)."),
    resume: str | None = typer.Option(
        None, "--resume", metavar="[SWEEP]", is_flag=False, flag_value="last",
        help="Run the points of SWEEP (default: the last sweep) that have no succeeded run."),
    jobs: int | None = _OPTION["jobs"],
    keep_going: bool = _OPTION["keep_going"],
    no_wait: bool = _OPTION["no_wait"],
    as_json: bool = JSON,
    executor: str = _OPTION["executor"],
    scheduler: str | None = _OPTION["scheduler"],
    resources: list[str] | None = _OPTION["resources"],
    remote: str | None = _OPTION["remote"],
    no_push: bool = _OPTION["no_push"],
    read_only: bool = _OPTION["read_only"],
) -> int:
    """Run one experiment per point of a parameter space: every point a run (parent: the
    workspace's run, or --from RUN) in a workspace of its own under .pipetool/sweeps/, all
    under one -j, work the points share done once. The project's files and pipetool.lock
    are not changed. Exit 0 when every point succeeded, 1 when any failed.

    Examples: pipetool sweep -S train.lr=0.001,0.01,0.1 -S train.epochs=5,10 -j 4

              pipetool sweep show --sort metrics/train.json:acc   (a target named show: give its out path)
    """
    from ..sweeps.api import sweep as api_sweep
    from ..sweeps.api import sweep_show_text

    g = _g(ctx)
    show_args = ctx.meta.get(_SHOW_ARGS)
    if show_args is not None:
        command = typer.main.get_command(_show_app)
        return command.main(args=show_args, prog_name="pipetool sweep show", standalone_mode=False, obj=g)
    rep = SweepTerminalReporter(sys.stderr)
    options: dict[str, Any] = {
        "jobs": jobs, "keep_going": keep_going, "wait": not no_wait, "argv": ["pipetool", *sys.argv[1:]],
        "executor": executor, "scheduler": scheduler, "resources": resources, "remote": remote,
        "push": not no_push, "read_only": read_only}
    result = api_sweep(targets or (), set=set_ or (), random=random_n, seed=seed, sweep_file=sweep_file,
                       from_run=from_run, resume=resume, file=g.file, cwd=g.cwd, reporter=rep, **options)
    if as_json:
        print(dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        if result.resumed and not result.points:
            rep.say(f"nothing to resume: every point of sweep {result.sweep_id} succeeded")
        sys.stdout.write(sweep_show_text(result.sweep_id, file=g.file, cwd=g.cwd))
    counts: dict[str, int] = {}
    for p in result.points:
        counts[p.status] = counts.get(p.status, 0) + 1
    if result.points:
        rep.say(f"sweep {result.sweep_id} {result.status}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return result.exit_code


_show_app = typer.Typer(add_completion=False, rich_markup_mode=None,
                        context_settings={"help_option_names": ["-h", "--help"]})


@_show_app.command()
def show(
    ctx: typer.Context,
    sweep_ref: str | None = typer.Argument(None, metavar="[SWEEP]", help="A sweep id or prefix (default: the last)."),
    sort: str | None = typer.Option(None, "--sort", metavar="[-]FILE:KEY",
                                    help="Sort by this metric, highest first (-FILE:KEY: lowest first)."),
    as_json: bool = JSON,
) -> int:
    """A sweep's points: each one's latest run, status, swept params and metrics.

    Example: pipetool sweep show --sort metrics/train.json:acc
    """
    from ..sweeps.api import sweep_show, sweep_show_text

    g = ctx.obj
    if as_json:
        print(dumps(sweep_show(sweep_ref, sort=sort, file=g.file, cwd=g.cwd), indent=2, sort_keys=True))
    else:
        sys.stdout.write(sweep_show_text(sweep_ref, sort=sort, file=g.file, cwd=g.cwd))
    return EXIT_OK


class SweepTerminalReporter(TerminalReporter):
    """Progress lines of every point, each named by its point: `[3 lr=0.1] ▶ train`; one
    line at a time whichever thread says it."""

    def __init__(self, stream: Any = None, prefix: str = "", lock: Any = None):
        super().__init__(stream)
        self.prefix = prefix
        self.lock = lock or threading.Lock()

    def say(self, text: str) -> None:
        with self.lock:
            self.stream.write("".join(f"{self.prefix}{line}\n" for line in text.split("\n")))
            self.stream.flush()

    def for_point(self, label: str) -> SweepTerminalReporter:
        return SweepTerminalReporter(self.stream, f"[{label}] ", self.lock)

    def finished(self, name: str, result: TargetResult) -> None:
        if result.action == "restored":  # its job followed another point's build
            self.restored(name, result.reason)
        else:
            super().finished(name, result)

    def point_done(self, label: str, result: RunResult) -> None:
        counts: dict[str, int] = {}
        for r in result.targets.values():
            counts[r.action] = counts.get(r.action, 0) + 1
        parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        self.say(f"[{label}] run {result.run_id} {result.status}" + (f": {parts}" if parts else ""))

    def point_error(self, label: str, message: str) -> None:
        self.say(f"[{label}] pipetool: error: {message}")
