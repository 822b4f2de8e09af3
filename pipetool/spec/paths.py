"""Project-relative path spelling: normalize, and refuse anything outside the root."""
from __future__ import annotations

import os
import posixpath

from ..errors import PipelineError, WhereLike

GLOB_CHARS = frozenset("*?[")


def is_glob(path: str) -> bool:
    return not GLOB_CHARS.isdisjoint(path)


def normalize(raw: str, root: str, what: str, where: WhereLike) -> str:
    """`raw` as a posix path relative to `root`; a trailing "/" (directory) is kept."""
    text = raw.strip()
    if not text:
        raise PipelineError(f"{what} is an empty path", where)
    if "\0" in text:
        raise PipelineError(f"{what} {raw!r} contains a NUL character", where)
    is_dir = text.endswith(("/", os.sep))
    if os.path.isabs(text):
        rel = os.path.relpath(text, root)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            raise PipelineError(f"{what} '{raw}' lies outside the project root {root}", where)
        text = rel.replace(os.sep, "/")
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../"):
        raise PipelineError(f"{what} '{raw}' escapes the project root through '..'", where)
    if norm == ".":
        raise PipelineError(f"{what} '{raw}' is the project root itself; name a file or folder inside it", where)
    if norm == ".pipetool" or norm.startswith(".pipetool/"):
        raise PipelineError(f"{what} '{raw}' lies inside pipetool's own state folder .pipetool/", where)
    return norm + "/" if is_dir else norm


def strip_dir(path: str) -> str:
    return path.removesuffix("/")


def inside(path: str, folder: str) -> bool:
    """True when `path` equals `folder` or lies below it (both normalized)."""
    p, f = strip_dir(path), strip_dir(folder)
    return p == f or p.startswith(f + "/")
