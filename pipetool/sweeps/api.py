"""The sweep API (SPEC §10): `pipetool.sweep(...)` and `pipetool.sweep_show(...)`, what the
`pipetool sweep` command calls."""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import UsageError
from ..reporting import Reporter, or_quiet
from .runner import SweepRequest, SweepResult, check_resume_alone, run_sweep


def sweep(targets: Iterable[str] = (), *, set: Iterable[str] | Mapping[str, Any] | None = None,
          random: int | None = None, seed: int | None = None, sweep_file: str | os.PathLike[str] | None = None,
          from_run: str | None = None, resume: bool | str | None = None, file: str | None = None,
          cwd: str | None = None, reporter: Reporter | None = None, **options: Any) -> SweepResult:
    """Run one experiment per point of a parameter space, all under one `jobs` budget.

    `set`: the `-S` choices, as "KEY=CHOICES" strings (`"train.lr=0.1,0.01"`,
    `"seed=range(3)"`) or a mapping: a list is the choices, a string is read as on the
    command line, any other value is set for every point. `random`/`seed` draw that many
    points, `sweep_file` reads the space from YAML, `from_run` starts every point from
    that run's params and outputs (as `branch`). `resume=True` (the last sweep) or a sweep
    id runs the points of a recorded sweep that have no succeeded run. `options` are those
    of `pipetool.run` except `dry_run` and `force`: `jobs`, `keep_going`, `wait`, `argv`,
    `executor`, `scheduler`, `resources`, `remote`, `push`, `read_only`."""
    from ..runconfig import run_request
    from .sweepfile import sweep_space

    for name in ("dry_run", "force"):
        if options.pop(name, False):
            raise UsageError(f"sweep does not take {name}")
    targets = tuple(targets)
    if resume is not None and resume is not False:
        check_resume_alone(targets, set, random, seed, sweep_file, from_run)
        req = SweepRequest(run_request((), **options), resuming=True,
                           resume=None if resume is True else str(resume))
    else:
        space = sweep_space(choices_args(set), random, seed, sweep_file)
        req = SweepRequest(run_request(targets, **options), space=space, from_run=from_run)
    return run_sweep(req, file, cwd, or_quiet(reporter))


def choices_args(values: Iterable[str] | Mapping[str, Any] | None) -> list[str]:
    """The `-S` arguments a mapping of choices stands for."""
    if not values:
        return []
    if not isinstance(values, Mapping):
        return [str(v) for v in values]
    out: list[str] = []
    for key, v in values.items():
        if isinstance(v, str):
            out.append(f"{key}={v}")
        elif isinstance(v, (list, tuple)):
            out.append(f"{key}=choice({','.join(json.dumps(x) for x in v)})")
        else:
            out.append(f"{key}={json.dumps(v)}")
    return out


def sweep_show(sweep: str | None = None, *, sort: str | None = None, file: str | None = None,
               cwd: str | None = None) -> dict[str, Any]:
    """A sweep's points (default: the last sweep), each with its latest run, status,
    swept params and numeric metrics, in the sweep's order or sorted by `sort` (`FILE:KEY`
    highest first, `-FILE:KEY` lowest first): `{"id", "base", "status", "keys", "fixed",
    "points": [{"run", "status", "params", "metrics"}]}`."""
    from ..store import runs as store_runs
    from .show import sweep_table

    conn = _open_store(file, cwd)
    try:
        return sweep_table(conn, store_runs.resolve_sweep(conn, sweep), sort)
    finally:
        if conn is not None:
            conn.close()


def sweep_show_text(sweep: str | None = None, *, sort: str | None = None, file: str | None = None,
                    cwd: str | None = None) -> str:
    """`sweep_show` as the table a person reads."""
    from ..store import runs as store_runs
    from .show import show_text

    conn = _open_store(file, cwd)
    try:
        return show_text(conn, store_runs.resolve_sweep(conn, sweep), sort)
    finally:
        if conn is not None:
            conn.close()


def _open_store(file: str | None, cwd: str | None):
    from ..spec.loader import find_pipeline_file
    from ..store.db import open_db

    return open_db(os.path.dirname(find_pipeline_file(file, cwd)), create=False)
