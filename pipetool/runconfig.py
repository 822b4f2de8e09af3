"""Where a run executes and how it shares results (SPEC §8): the executor, the resource
slots, the remote and the upload policy — the options of `run` and `branch`, checked once
here so that the API and the CLI refuse the same things with the same words."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable, Mapping

from .errors import UsageError

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

    def resolve_jobs(self, jobs: int | None, root: str) -> int:
        """-j, or when none is given this machine's cores (a LocalCluster gets that many
        workers). An external Dask cluster is checked here, before the run is recorded:
        reachable, with workers, each seeing `root`; -j defaults to its worker threads."""
        if self.executor == "dask":
            from .execute.dask import preflight

            threads = preflight(self.scheduler, root)
            if threads:
                return jobs or threads
        return jobs or os.cpu_count() or 1


def parse_resources(values: Iterable[str] | Mapping[str, float] | None) -> tuple[tuple[str, float], ...]:
    """`gpu=2,mem_gb=32` (repeatable, or a mapping) -> sorted (name, amount) pairs."""
    if not values:
        return ()
    pairs: dict[str, float] = {}
    if isinstance(values, Mapping):
        items = [(str(k), v) for k, v in values.items()]
    else:
        items = []
        for text in values:
            for part in str(text).split(","):
                part = part.strip()
                if not part:
                    continue
                name, eq, amount = part.partition("=")
                if not eq or not name.strip():
                    raise UsageError(f"--resources: '{part}' is not NAME=AMOUNT (e.g. gpu=2,mem_gb=32)")
                items.append((name.strip(), amount.strip()))
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
