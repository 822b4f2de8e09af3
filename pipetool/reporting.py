"""What pipetool tells a person while it works: one `Reporter` protocol for every command.

Library code never prints: it calls the reporter it was given. The CLI passes
`render.TerminalReporter`; the Python API takes any object with these methods, or none
(`QuietReporter`: progress is dropped, warnings still reach stderr, since a warning
means something was not done and must not vanish silently).
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .execute.scheduler import TargetResult
    from .plan import Verdict


class Reporter(Protocol):
    """Events of a run (and of the commands that wait for the project lock)."""

    def waiting(self, message: str) -> None:
        """Another pipetool holds the project: we wait for it (`message` names it)."""

    def started(self, name: str, reasons: tuple[str, ...]) -> None:
        """A target was launched, for these reasons."""

    def finished(self, name: str, result: TargetResult) -> None:
        """A target was built (its checks passed)."""

    def restored(self, name: str, reason: str) -> None:
        """A target's outputs came from the cache or the remote instead of a build."""

    def failed(self, name: str, message: str, log_tail: str, log_path: str) -> None:
        """A target (or one of its checks) failed; the end of its log and where it is."""

    def dry_run(self, name: str, verdict: Verdict) -> None:
        """`run -n`: this target would run, for the verdict's reasons."""

    def removed(self, name: str, reason: str) -> None:
        """A partition whose item is gone: its outs were taken out of the workspace."""

    def warning(self, message: str) -> None:
        """Something was not done (not cached, not uploaded, not put back); the run goes on."""


class QuietReporter:
    """The Python API's default: no progress, warnings on stderr."""

    def waiting(self, message: str) -> None:
        pass

    def started(self, name: str, reasons: tuple[str, ...]) -> None:
        pass

    def finished(self, name: str, result: TargetResult) -> None:
        pass

    def restored(self, name: str, reason: str) -> None:
        pass

    def failed(self, name: str, message: str, log_tail: str, log_path: str) -> None:
        pass

    def dry_run(self, name: str, verdict: Verdict) -> None:
        pass

    def removed(self, name: str, reason: str) -> None:
        pass

    def warning(self, message: str) -> None:
        print(f"pipetool: warning: {message}", file=sys.stderr, flush=True)


def or_quiet(reporter: Reporter | None) -> Reporter:
    return reporter if reporter is not None else QuietReporter()
