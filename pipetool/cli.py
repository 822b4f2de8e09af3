"""The `pipetool` command: a thin typer skin over the Python API (parse, call, render)."""
from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from . import __version__
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, PipetoolError, UsageError
from .jsontext import dumps

if TYPE_CHECKING:
    from .remote.pushpull import SyncResult
    from .render import TerminalReporter
    from .runflow import RunResult

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


@app.command()
@run_options
def run(ctx: typer.Context, targets: list[str] | None = TARGETS, *, options: dict[str, Any],
        as_json: bool) -> int:
    """Build the targets and whatever they need that is stale.

    Example: pipetool run train -j 4 -S train.lr=0.1
    """
    from .api import run as api_run
    from .render import TerminalReporter

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
    from .api import status as api_status

    g = _g(ctx)
    report = api_status(targets or (), file=g.file, cwd=g.cwd, set=set_ or ())
    if as_json:
        print(dumps(report.to_json(), indent=2))
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
def runs(
    ctx: typer.Context,
    as_json: bool = JSON,
) -> int:
    """Show the run history as a tree: id, time, status, params changed against the
    parent run, headline metrics.

    Example: pipetool runs --json | jq '.[-1].metrics'
    """
    from .experiments import runs as api_runs
    from .render import render_runs

    g = _g(ctx)
    if as_json:
        print(dumps(api_runs(file=g.file, cwd=g.cwd, full=True), indent=2, sort_keys=True, default=str))
    else:
        sys.stdout.write(render_runs(api_runs(file=g.file, cwd=g.cwd)))
    return EXIT_OK


@app.command()
def show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., metavar="RUN", help="A run id, or any unique prefix of 4+ characters."),
    as_json: bool = JSON,
) -> int:
    """Print one run's manifest: params, overrides, what each target did and why, metrics.

    Example: pipetool show 0mww5i
    """
    from .experiments import show as api_show
    from .render import render_manifest

    g = _g(ctx)
    m = api_show(run_id, file=g.file, cwd=g.cwd)
    if as_json:
        print(dumps(m, indent=2, sort_keys=True, default=str))
    else:
        sys.stdout.write(render_manifest(m))
    return EXIT_OK


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
    from .experiments import branch as api_branch
    from .render import TerminalReporter

    g = _g(ctx)
    rep = TerminalReporter(sys.stderr)
    result = api_branch(from_run, targets or (), file=g.file, cwd=g.cwd, reporter=rep, **options)
    return _finish_run(result, rep, as_json)


@app.command()
def checkout(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., metavar="RUN", help="A run id, or any unique prefix of 4+ characters."),
    no_wait: bool = NO_WAIT,
) -> int:
    """Put RUN's outputs (and its records) back into the workspace from the cache; run nothing.

    Example: pipetool checkout 0mww5i && pipetool status
    """
    from .experiments import checkout as api_checkout
    from .render import TerminalReporter

    g = _g(ctx)
    pb = api_checkout(run_id, file=g.file, cwd=g.cwd, wait=not no_wait, reporter=TerminalReporter(sys.stderr))
    print(f"checked out run {pb.run_id}: {len(pb.restored)} target(s) restored, "
          f"{len(pb.unchanged)} already in place, {len(pb.missing)} not in the cache")
    return EXIT_OK


@app.command()
def diff(
    ctx: typer.Context,
    left: str = typer.Argument(..., metavar="RUN", help="The left side."),
    right: str | None = typer.Argument(None, metavar="[RUN]", help="The right side (default: the workspace)."),
    as_json: bool = JSON,
) -> int:
    """Compare two runs (or a run and the workspace): params that differ, metrics side
    by side with deltas.

    Example: pipetool diff 0mww5i 0mww6k --json
    """
    from .experiments import diff as api_diff
    from .render import render_diff

    g = _g(ctx)
    d = api_diff(left, right, file=g.file, cwd=g.cwd)
    if as_json:
        print(dumps(d, indent=2, sort_keys=True, default=str))
    else:
        sys.stdout.write(render_diff(d, left, right or "workspace"))
    return EXIT_OK


@app.command()
def gc(
    ctx: typer.Context,
    keep_last: int = typer.Option(10, "--keep-last", min=0, metavar="N", help="Keep what the last N runs refer to."),
    keep: list[str] | None = typer.Option(None, "--keep", metavar="RUN",
                                          help="Also keep this run's outputs (repeatable)."),
    dry_run: bool = typer.Option(False, "-n", "--dry-run", help="Say what would be removed; remove nothing."),
    no_wait: bool = NO_WAIT,
) -> int:
    """Remove cache objects that no kept run and not the workspace refer to.

    Example: pipetool gc --keep-last 5 --keep 0mww5i -n
    """
    from .experiments import gc as api_gc
    from .render import TerminalReporter, human_bytes

    g = _g(ctx)
    r = api_gc(keep_last=keep_last, keep=keep or (), dry_run=dry_run, file=g.file, cwd=g.cwd,
               wait=not no_wait, reporter=TerminalReporter(sys.stderr))
    verb = "would remove" if r.dry_run else "removed"
    print(f"{verb} {r.removed} object(s), {human_bytes(r.freed_bytes)}; kept {r.kept} "
          f"(referenced by {len(r.kept_runs)} run(s) and the workspace)")
    return EXIT_OK


@app.command()
def recover(
    ctx: typer.Context,
    no_wait: bool = NO_WAIT,
    as_json: bool = JSON,
) -> int:
    """Rebuild a damaged store (.pipetool/state.db) from the run manifests, pipetool.lock
    and the cache: the damaged file is set aside (kept, never deleted), the runs, the
    workspace's records and the run cache come back; what cannot is said.

    Example: pipetool recover && pipetool runs
    """
    from .recovery import recover as api_recover
    from .render import TerminalReporter
    from .store.names import printable

    g = _g(ctx)
    r = api_recover(file=g.file, cwd=g.cwd, wait=not no_wait, reporter=TerminalReporter(sys.stderr))
    if as_json:
        print(dumps(r.to_json(), indent=2, sort_keys=True))
        return EXIT_OK
    if r.damage is None:
        print(f"{r.store} is not damaged (PRAGMA quick_check: ok): nothing to recover"
              if os.path.exists(r.store) else "no store and no run manifests: nothing to recover")
        return EXIT_OK
    print(f"{r.store}: {r.damage}")
    for moved in r.set_aside:
        print(f"set aside (kept, not deleted): {moved}")
    print(f"recovered {len(r.runs)} run(s) from their manifest files"
          + (f"; {len(r.runs_lost)} not: {'; '.join(r.runs_lost.values())}" if r.runs_lost else ""))
    print(f"recovered the records of {len(r.records)} target(s) from pipetool.lock"
          + (f"; judged afresh: {'; '.join(f'{printable(n)} ({w})' for n, w in r.records_left.items())}"
             if r.records_left else ""))
    print(f"recovered {r.cache_entries} run-cache entr{'y' if r.cache_entries == 1 else 'ies'}"
          + (f"; {len(r.cache_left)} not: {'; '.join(f'{n}: {w}' for n, w in r.cache_left.items())}"
             if r.cache_left else ""))
    print(f"the workspace's run: {r.head or 'none'}")
    print(f"lost: {'; '.join(r.lost)}")
    return EXIT_OK


TRANSFER_JOBS = typer.Option(16, "-j", "--jobs", min=1, help="Transfers in flight at once.")


@app.command()
def push(
    ctx: typer.Context,
    run_id: str | None = typer.Argument(None, metavar="[RUN]", help="The run to push (default: the last run)."),
    remote: str | None = REMOTE,
    jobs: int = TRANSFER_JOBS,
    no_wait: bool = NO_WAIT,
    as_json: bool = JSON,
) -> int:
    """Upload a run's outputs and run-cache entries to the remote (what it has is skipped).

    Example: pipetool push --remote s3://bucket/cache
    """
    from .remote.pushpull import push as api_push
    from .render import TerminalReporter

    g = _g(ctx)
    r = api_push(run_id, remote=remote, jobs=jobs, file=g.file, cwd=g.cwd, wait=not no_wait,
                 reporter=TerminalReporter(sys.stderr))
    if as_json:
        print(dumps(r.to_json(), indent=2, sort_keys=True))
    _print_sync(r, "pushed", as_json)
    return EXIT_OK


@app.command()
def pull(
    ctx: typer.Context,
    targets: list[str] | None = typer.Argument(None, metavar="[TARGET]...",
                                                  help="Targets whose outputs to put back (none: all)."),
    remote: str | None = REMOTE,
    jobs: int = TRANSFER_JOBS,
    no_wait: bool = NO_WAIT,
    as_json: bool = JSON,
) -> int:
    """Put back the outputs pipetool.lock records, from the remote: a fresh clone is then
    up to date without building anything. Exit 1 when some could not be had.

    Example: git clone REPO && cd REPO && pipetool pull && pipetool status --check
    """
    from .remote.pushpull import pull as api_pull
    from .render import TerminalReporter

    g = _g(ctx)
    r = api_pull(targets or (), remote=remote, jobs=jobs, file=g.file, cwd=g.cwd, wait=not no_wait,
                 reporter=TerminalReporter(sys.stderr))
    if as_json:
        print(dumps(r.to_json(), indent=2, sort_keys=True))
    _print_sync(r, "pulled", as_json)
    return EXIT_FAILED if r.missing else EXIT_OK


def _print_sync(result: SyncResult, verb: str, as_json: bool) -> None:
    """Each target not done on stderr, then the summary (on stderr too under --json)."""
    from .render import render_sync

    problems, summary = render_sync(result, verb)
    for line in problems:
        print(line, file=sys.stderr)
    print(summary, file=sys.stderr if as_json else sys.stdout)


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
    from .lint import check as api_check

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
    from .api import dag as api_dag
    from .render import FORMATS

    if format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    g = _g(ctx)
    sys.stdout.write(api_dag(file=g.file, cwd=g.cwd, format=format))
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one paragraph on stderr and an exit status."""
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
