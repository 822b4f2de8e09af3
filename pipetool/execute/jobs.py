"""What the scheduler hands an executor, and what comes back: plain, picklable data."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class JobKey:
    """What a job runs: a target's own command, or its `check`-th check (0-based)."""

    target: str
    check: int | None = None

    @property
    def log_name(self) -> str:
        """TARGET.log, or TARGET.check-N.log for the target's Nth check; a partition's KEY
        may hold "/" (`clean[out/shards/a.csv]`), kept in one file name as %2F."""
        name = self.target.replace("%", "%25").replace("/", "%2F")
        return f"{name}.log" if self.check is None else f"{name}.check-{self.check}.log"

    def __str__(self) -> str:
        return self.target if self.check is None else f"{self.target}-check-{self.check}"


@dataclass(frozen=True)
class Job:
    key: JobKey
    cwd: str  # project root
    env: dict[str, str]  # variables added to the environment (PIPETOOL_*)
    log_path: str  # stdout and stderr, together, in the order written
    cmd: str | None = None  # run with bash -c
    python: str | None = None  # "module:function"
    kwargs: dict[str, Any] = field(default_factory=dict)  # candidate keyword arguments
    ambiguous: tuple[str, ...] = ()  # param names two declared params both claim


@dataclass(frozen=True)
class Outcome:
    key: JobKey
    ok: bool
    message: str = ""  # why it failed, in one line
    duration_s: float = 0.0


class Executor(Protocol):
    """Submit jobs, then collect them in completion order; a Dask backend plugs in here."""

    def submit(self, job: Job) -> None: ...

    def wait_next(self) -> Outcome: ...

    def cancel_all(self) -> None: ...

    def close(self) -> None: ...
