"""Where a run's jobs execute: how many at once, and the executor that runs them.

The one place that contacts a Dask cluster before a run is recorded (`resolve_jobs`) and
that chooses between the local and the Dask executor (`make_executor`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from ..runconfig import RunConfig
from .jobs import Executor


def resolve_jobs(config: RunConfig, jobs: int | None, root: str) -> int:
    """-j, or when none is given this machine's cores (a LocalCluster gets that many
    workers). An external Dask cluster is checked here, before the run is recorded:
    reachable, with workers, each seeing `root`; -j defaults to its worker threads."""
    if config.executor == "dask":
        from .dask import preflight

        threads = preflight(config.scheduler, root)
        if threads:
            return jobs or threads
    return jobs or os.cpu_count() or 1


def make_executor(config: RunConfig, root: str, jobs: int,
                  needs: Mapping[str, tuple[tuple[str, float], ...]]) -> Executor:
    """The executor for `config` (`needs`: each target's declared resources)."""
    if config.executor == "dask":
        from .dask import DaskExecutor

        return DaskExecutor(root, jobs, config.scheduler, dict(needs))
    from .local import LocalExecutor

    return LocalExecutor(jobs)
