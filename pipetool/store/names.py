"""File and target names as the store keeps and shows them: any bytes a filesystem allows.

pipetool holds a name as `str` decoded with surrogateescape (what `os.scandir` and
`os.fsdecode` give), so a name that is not valid UTF-8 (`b"caf\\xe9.txt"`) carries lone
surrogates. SQLite's TEXT cannot take them: such a name is stored as the name's bytes
(a BLOB) and read back to the same `str`; JSON files keep them as `\\udcXX` escapes,
which round-trip.
"""
from __future__ import annotations

import os


def to_db(name: str) -> str | bytes:
    """The value SQLite stores for `name`: itself when it is UTF-8, else its bytes
    (one name always maps to the same value, so it works as a key)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return _bytes(name)
    return name


def _bytes(name: str) -> bytes:
    try:
        return os.fsencode(name)
    except UnicodeEncodeError:  # a surrogate no filesystem gave (a hand-written JSON escape)
        return name.encode("utf-8", "surrogatepass")


def from_db(value: str | bytes) -> str:
    """The name `to_db` stored."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def printable(name: str) -> str:
    """`name` for a message: bytes that are not UTF-8 shown as `\\xe9`, so printing never fails."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return _bytes(name).decode("utf-8", "backslashreplace")
    return name
