"""Commands that sync with the remote cache: push, pull."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from ..errors import EXIT_FAILED, EXIT_OK
from ..jsontext import dumps
from .app import JSON, NO_WAIT, REMOTE, _g, app

if TYPE_CHECKING:
    from ..remote.pushpull import SyncResult


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
    from ..remote.pushpull import push as api_push
    from ..render import TerminalReporter

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
    from ..remote.pushpull import pull as api_pull
    from ..render import TerminalReporter

    g = _g(ctx)
    r = api_pull(targets or (), remote=remote, jobs=jobs, file=g.file, cwd=g.cwd, wait=not no_wait,
                 reporter=TerminalReporter(sys.stderr))
    if as_json:
        print(dumps(r.to_json(), indent=2, sort_keys=True))
    _print_sync(r, "pulled", as_json)
    return EXIT_FAILED if r.missing else EXIT_OK


def _print_sync(result: SyncResult, verb: str, as_json: bool) -> None:
    """Each target not done on stderr, then the summary (on stderr too under --json)."""
    from ..render import render_sync

    problems, summary = render_sync(result, verb)
    for line in problems:
        print(line, file=sys.stderr)
    print(summary, file=sys.stderr if as_json else sys.stdout)
