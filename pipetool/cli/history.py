"""Commands over the run history: runs, show, checkout, diff, gc, recover."""
from __future__ import annotations

import os
import sys

import typer

from ..errors import EXIT_OK
from ..jsontext import dumps
from .app import JSON, NO_WAIT, _g, app


@app.command()
def runs(
    ctx: typer.Context,
    as_json: bool = JSON,
) -> int:
    """Show the run history as a tree: id, time, status, params changed against the
    parent run, headline metrics.

    Example: pipetool runs --json | jq '.[-1].metrics'
    """
    from ..experiments import runs as api_runs
    from ..render import render_runs

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
    from ..experiments import show as api_show
    from ..render import render_manifest

    g = _g(ctx)
    m = api_show(run_id, file=g.file, cwd=g.cwd)
    if as_json:
        print(dumps(m, indent=2, sort_keys=True, default=str))
    else:
        sys.stdout.write(render_manifest(m))
    return EXIT_OK


@app.command()
def checkout(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., metavar="RUN", help="A run id, or any unique prefix of 4+ characters."),
    no_wait: bool = NO_WAIT,
) -> int:
    """Put RUN's outputs (and its records) back into the workspace from the cache; run nothing.

    Example: pipetool checkout 0mww5i && pipetool status
    """
    from ..experiments import checkout as api_checkout
    from ..render import TerminalReporter

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
    from ..experiments import diff as api_diff
    from ..render import render_diff

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
    from ..experiments import gc as api_gc
    from ..render import TerminalReporter, human_bytes

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
    from ..recovery import recover as api_recover
    from ..render import TerminalReporter
    from ..store.names import printable

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
