"""What a sweep tells a person: each point's events through the `Reporter` protocol, named
by the point (`[3 lr=0.1] train`), and the sweep's own events.

A reporter that has `for_point(label) -> Reporter` decides how a point's lines look (the
terminal puts the label before the symbol: `[3 lr=0.1] ▶ train`); any other reporter
gets the label before each target's name. `point_done(label, result)` and
`point_error(label, message)`, where present, hear of each point's end.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..execute.scheduler import RESTORED

if TYPE_CHECKING:
    from ..execute.scheduler import TargetResult
    from ..plan import Verdict
    from ..reporting import Reporter


class PrefixReporter:
    """A point's events for any reporter: each target named `[LABEL] NAME`."""

    def __init__(self, inner: Reporter, label: str):
        self.inner, self.prefix = inner, f"[{label}] "

    def waiting(self, message: str) -> None:
        self.inner.waiting(message)

    def started(self, name: str, reasons: tuple[str, ...]) -> None:
        self.inner.started(self.prefix + name, reasons)

    def finished(self, name: str, result: TargetResult) -> None:
        finished_or_restored(self.inner, self.prefix + name, result)

    def restored(self, name: str, reason: str) -> None:
        self.inner.restored(self.prefix + name, reason)

    def failed(self, name: str, message: str, log_tail: str, log_path: str) -> None:
        self.inner.failed(self.prefix + name, message, log_tail, log_path)

    def dry_run(self, name: str, verdict: Verdict) -> None:
        self.inner.dry_run(self.prefix + name, verdict)

    def removed(self, name: str, reason: str) -> None:
        self.inner.removed(self.prefix + name, reason)

    def warning(self, message: str) -> None:
        self.inner.warning(self.prefix + message)


def finished_or_restored(reporter: Reporter, name: str, result: TargetResult) -> None:
    """A target whose job followed another point's build ends restored, not built."""
    if result.action == RESTORED:
        reporter.restored(name, result.reason)
    else:
        reporter.finished(name, result)


def for_point(reporter: Reporter, label: str) -> Reporter:
    make = getattr(reporter, "for_point", None)
    return make(label) if callable(make) else PrefixReporter(reporter, label)


def point_done(reporter: Reporter, label: str, result: Any) -> None:
    hook = getattr(reporter, "point_done", None)
    if callable(hook):
        hook(label, result)


def point_error(reporter: Reporter, label: str, message: str) -> None:
    hook = getattr(reporter, "point_error", None)
    if callable(hook):
        hook(label, message)
    else:
        reporter.warning(f"[{label}] {message}")
