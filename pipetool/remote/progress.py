"""Transfer progress on a terminal: bytes, rate and time left; nothing when not a terminal."""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from .transfer import Progress


class TerminalProgress(Progress):
    """A rich progress bar (objects, bytes, rate, time left), started when the first
    objects are queued, gone when closed. Time left comes from the objects' pace: their
    sizes are not known before they arrive."""

    def __init__(self, label: str, stream: TextIO | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        self._bar: Any = None
        self._task: Any = None
        self._bytes = 0
        self._start = 0.0
        self._lock = threading.Lock()

    def add(self, objects: int) -> None:
        if objects <= 0:
            return
        with self._lock:
            if self._bar is None:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
                from rich.progress import Progress as Bar

                self._bar = Bar(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[moved]}"), TimeRemainingColumn(),
                                console=Console(file=self.stream), transient=True)
                self._task = self._bar.add_task(self.label, total=0, moved="")
                self._start = time.monotonic()
                self._bar.start()
            self._bar.update(self._task, total=(self._bar.tasks[0].total or 0) + objects)

    def advance(self, nbytes: int) -> None:
        if self._bar is None:
            return
        from ..render import human_bytes

        with self._lock:
            self._bytes += nbytes
            rate = self._bytes / max(time.monotonic() - self._start, 1e-3)
            moved = f"{human_bytes(self._bytes)} {human_bytes(int(rate))}/s"
        self._bar.update(self._task, advance=1, moved=moved)

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
