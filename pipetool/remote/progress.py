"""Transfer progress on a terminal: bytes, rate and time left; nothing when not a terminal."""
from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from .transfer import Progress


class TerminalProgress(Progress):
    """A rich progress bar, started on the first bytes to move, gone when closed."""

    def __init__(self, label: str, stream: TextIO | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        self._bar: Any = None
        self._task: Any = None
        self._lock = threading.Lock()

    def add(self, total_bytes: int) -> None:
        if total_bytes <= 0:
            return
        with self._lock:
            if self._bar is None:
                from rich.console import Console
                from rich.progress import (BarColumn, DownloadColumn, Progress as Bar, TextColumn,
                                           TimeRemainingColumn, TransferSpeedColumn)

                self._bar = Bar(TextColumn(self.label), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                TimeRemainingColumn(), console=Console(file=self.stream), transient=True)
                self._task = self._bar.add_task(self.label, total=0)
                self._bar.start()
            total = self._bar.tasks[0].total or 0
            self._bar.update(self._task, total=total + total_bytes)

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, nbytes)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None


def progress_for(label: str, stream: TextIO | None = None) -> Progress:
    """A progress bar when `stream` (stderr by default) is a terminal, else a silent one."""
    stream = stream or sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return TerminalProgress(label, stream) if tty else Progress()
