"""What a run is asked to do (`RunRequest`) and where it executes and shares results
(`RunConfig`, SPEC §8): the options of `run` and `branch`, made and checked once here so
that the API and the CLI take the same options and refuse the same things with the same
words. Plain values only: nothing here contacts a cluster or a remote."""
from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .spec.params import overrides_from

EXECUTORS = ("local", "dask")
SCHEDULER_ENV = "PIPETOOL_DASK_SCHEDULER"


@dataclass(frozen=True)
class RunConfig:
    executor: str = "local"  # "local" | "dask"
    scheduler: str | None = None  # a Dask scheduler address; None: a LocalCluster sized by -j
    resources: tuple[tuple[str, float], ...] = ()  # what the machine (or cluster) has
    remote: str | None = None  # --remote URL: wins over PIPETOOL_REMOTE and `remote:`
    push: bool = True  # upload what this run builds to the remote
    read_only: bool = False  # never write to the remote (jobs from untrusted forks)

    @property
    def capacity(self) -> dict[str, float]:
        return dict(self.resources)


@dataclass(frozen=True)
class RunRequest:
    """What a run is asked to do: the targets and the options `run` and `branch` share."""

    targets: tuple[str, ...] = ()  # names or out paths; none: all
    jobs: int | None = None  # None: the machine's cores (or the Dask cluster's threads)
    force: bool = False  # rebuild the named (or all selected) targets even when fresh
    keep_going: bool = False  # after a failure, go on with what does not depend on it
    dry_run: bool = False  # say what would run and why; run nothing
    overrides: dict[str, Any] = field(default_factory=dict)  # -S KEY=VALUE, parsed
    wait: bool = True  # wait for another pipetool holding the project (False: exit 3)
    argv: tuple[str, ...] = ()  # the command line the manifest records
    config: RunConfig = field(default_factory=RunConfig)


def run_request(
    targets: Iterable[str] = (), *, jobs: int | None = None, force: bool = False, keep_going: bool = False,
    dry_run: bool = False, set: Iterable[str] | Mapping[str, Any] | None = None, wait: bool = True,
    argv: Iterable[str] | None = None, executor: str = "local", scheduler: str | None = None,
    resources: Iterable[str] | Mapping[str, float] | None = None, remote: str | None = None,
    push: bool = True, read_only: bool = False,
) -> RunRequest:
    """A checked `RunRequest` from the options as the API and the CLI spell them: `set`
    ("k=v" strings or a mapping) the -S overrides, `executor="dask"` with `scheduler` (its
    address; none: a local cluster sized by `jobs`), `resources` ("gpu=2" strings or a
    mapping) what the machine has, `remote` an fsspec URL over the pipeline's remote,
    `push=False` or `read_only=True` to keep the run from uploading."""
    if jobs is not None and jobs < 1:
        raise UsageError(f"-j must be 1 or more, not {jobs}")
    return RunRequest(
        tuple(targets or ()), jobs, force, keep_going, dry_run, overrides_from(set), wait,
        tuple(argv) if argv is not None else tuple(sys.argv),
        make_config(executor, scheduler, resources, remote, push, read_only))


def parse_resources(values: Iterable[str] | Mapping[str, float] | None) -> tuple[tuple[str, float], ...]:
    """`gpu=2,mem_gb=32` (repeatable, or a mapping) -> sorted (name, amount) pairs."""
    if not values:
        return ()
    pairs: dict[str, float] = {}
    items: list[tuple[str, Any]]  # (name, amount as given: a number or its text)
    if isinstance(values, Mapping):
        items = [(str(k), v) for k, v in values.items()]
    else:
        items = []
        for text in values:
            for part in str(text).split(","):
                part = part.strip()
                if not part:
                    continue
                key, eq, value = part.partition("=")
                if not eq or not key.strip():
                    raise UsageError(f"--resources: '{part}' is not NAME=AMOUNT (e.g. gpu=2,mem_gb=32)")
                items.append((key.strip(), value.strip()))
    for name, amount in items:
        try:
            number = float(amount)
        except (TypeError, ValueError):
            raise UsageError(f"--resources: {name}={amount} is not a number") from None
        if not math.isfinite(number) or number < 0:
            raise UsageError(f"--resources: {name}={amount} must be a number of 0 or more")
        pairs[name] = number
    return tuple(sorted(pairs.items()))


def make_config(executor: str = "local", scheduler: str | None = None,
                resources: Iterable[str] | Mapping[str, float] | None = None, remote: str | None = None,
                push: bool = True, read_only: bool = False) -> RunConfig:
    if executor not in EXECUTORS:
        raise UsageError(f"--executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
    if scheduler is None and executor == "dask":
        scheduler = os.environ.get(SCHEDULER_ENV) or None
    if scheduler is not None and executor != "dask":
        raise UsageError("--scheduler is for --executor dask")
    return RunConfig(executor, scheduler, parse_resources(resources), remote or None,
                     push and not read_only, read_only)
