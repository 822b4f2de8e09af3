"""A job's log file, written so that a failing disk never costs the job its result.

The file is created on the first byte (most targets print nothing, and creating a file
is not free). When a write fails (a full disk, a file-size limit, an I/O error), what
was written is kept, the rest of the output is discarded (the caller keeps draining the
child's pipe, so the child never blocks on it), and the log ends with a one-line note
saying why. When there is no room for the note, the end of the log is cut to make some.
"""
from __future__ import annotations

import os

# How far back the end of a full log may be cut to make room for the note: past a page,
# so a filesystem that frees whole blocks or pages has one to give back.
NOTE_ROOM = 8192


def truncation_note(reason: str) -> bytes:
    return f"[pipetool: log truncated: {reason}]\n".encode()


class LogSink:
    """Output bytes into one log file; `close()` adds the note if any write failed."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None
        self.error: str | None = None  # why the log stopped being written
        self.written = 0

    def write(self, data: bytes) -> None:
        """Append `data`; never raises (after a failure, the bytes are discarded)."""
        if self.error is not None or not data:
            return
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                self.written += n
                view = view[n:]
        except OSError as exc:
            self.error = exc.strerror or str(exc)

    def close(self) -> None:
        """Close the file, ending it with the note when output was lost."""
        if self.fd is None:
            return
        try:
            if self.error is not None:
                self._add_note(truncation_note(self.error))
        finally:
            os.close(self.fd)
            self.fd = None

    def _add_note(self, note: bytes) -> None:
        """Append the note on a line of its own; without room for it, cut the end (back to
        a line's start) first."""
        assert self.fd is not None
        fd = self.fd
        for cut in (0, len(note) + 1, NOTE_ROOM):
            try:
                size = os.fstat(fd).st_size
                if cut:  # back to the start of the line the cut falls in
                    size = max(0, size - cut)
                    tail = os.pread(fd, min(size, NOTE_ROOM), size - min(size, NOTE_ROOM))
                    size -= len(tail) - (tail.rfind(b"\n") + 1)
                    os.ftruncate(fd, size)
                last = os.pread(fd, 1, size - 1) if size else b"\n"
                data = note if last == b"\n" else b"\n" + note
                if os.pwrite(fd, data, size) == len(data):
                    return
            except OSError:
                continue
