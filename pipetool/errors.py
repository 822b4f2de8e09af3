"""Typed errors that carry a message written for the user; the CLI renders them once."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_BUSY = 3
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Where:
    """A place in a file: what a user needs to find the offending text."""

    file: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


# A place, or a function finding it: finding one may mean parsing the file again for its
# line marks, which only the error path should pay for.
WhereLike = Where | Callable[[], Where | None] | None


class PipetoolError(Exception):
    """Base of every error meant for the user (never shown with a traceback)."""

    exit_code = EXIT_INVALID

    def __init__(self, message: str, where: WhereLike = None):
        self.message = message
        self.where = where() if callable(where) else where
        super().__init__(self.render())

    def render(self) -> str:
        if self.where is None:
            return self.message
        return f"{self.where}: {self.message}"


class PipelineError(PipetoolError):
    """The pipeline file, its params or its graph are invalid: nothing was run (exit 2)."""


class UsageError(PipetoolError):
    """The command line asked for something that does not exist or does not fit (exit 2)."""


class StateError(PipetoolError):
    """The `.pipetool/` store is unreadable or of another format version (exit 2)."""


class BusyError(PipetoolError):
    """Another pipetool process holds the project and we were told not to wait (exit 3)."""

    exit_code = EXIT_BUSY
