"""Clearing a target's outs before it runs without losing what nobody can restore.

A command's outs are removed before it runs, so that one which fails to write an out is
caught. What is removed must be restorable: a file is *known* when its content is the
one the target's record holds for that path, or its content is in the cache. Anything
else (data placed by hand inside an out folder, a result edited by hand, a file from
before the project used pipetool) is moved aside under `.pipetool/displaced/RUN/`,
keeping its path, and the run says so; nothing is ever deleted that pipetool could not
put back.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from .errors import EXIT_FAILED, PipetoolError
from .fingerprint.hashing import Hasher
from .spec.model import Target
from .store.cache import Cache
from .store.records import Record

DISPLACED_DIR = os.path.join(".pipetool", "displaced")


class OutsError(PipetoolError):
    """A target's old outs could not be cleared; the target fails, nothing is lost."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class Displaced:
    """Files moved aside (paths relative to the root), and the folder they went to."""

    files: tuple[str, ...]
    to: str  # relative to the root


def unknown_files(t: Target, record: Record | None, hasher: Hasher, cache: Cache) -> list[str]:
    """The files in `t`'s existing outs whose content neither its record nor the cache holds."""
    unknown: list[str] = []
    for out in t.outs:
        key = out.rstrip("/")
        path = os.path.join(hasher.root, key)
        if not os.path.lexists(path):
            continue
        recorded = record.outs.get(out) if record is not None else None
        if os.path.isdir(path) and not os.path.islink(path):
            if recorded is not None and hasher.digest(out) == recorded:
                continue  # exactly what the target last wrote
            listing = (cache.peek_listing(recorded, cache.size_of(recorded)) if recorded else None) or {}
            for sub, digest in hasher.dir_listing(out).items():
                if listing.get(sub) != digest and not _cached(cache, digest):
                    unknown.append(f"{key}/{sub}")
            continue
        try:
            now = hasher.digest(out)
        except PipetoolError:  # not a regular file (a pipe, a socket): never ours
            now = None
        if now is not None and (now == recorded or _cached(cache, now)):
            continue
        unknown.append(key)
    return unknown


def protect(t: Target, record: Record | None, hasher: Hasher, cache: Cache, displace_id: str,
            warn: Callable[[str], None]) -> None:
    """Move the files in `t`'s outs that nobody could restore out of the way of a build or a
    restore (under `.pipetool/displaced/ID/`), and say so through `warn`."""
    unknown = unknown_files(t, record, hasher, cache)
    if not unknown:
        return
    moved = move_aside(hasher.root, unknown, displace_id)
    for o in t.outs:
        hasher.forget(o)
    warn(f"{t.name}: moved {len(unknown)} file(s) pipetool did not build out of the way, to {moved.to}/: "
         f"{_some(unknown)}")


def _cached(cache: Cache, digest: str) -> bool:
    return len(digest) == 32 and cache.has(digest)  # "link:…", "special": never cached


def move_aside(root: str, files: list[str], run_id: str) -> Displaced:
    """Move `files` under `.pipetool/displaced/RUN/`, keeping their paths; all or none
    (on failure the ones already moved go back)."""
    to = os.path.join(DISPLACED_DIR, run_id)
    moved: list[tuple[str, str]] = []
    try:
        for rel in files:
            src, dst = os.path.join(root, rel), os.path.join(root, to, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.rename(src, dst)  # same filesystem as the project: .pipetool/ lies inside it
            moved.append((src, dst))
    except OSError as exc:
        for src, dst in reversed(moved):
            try:
                os.rename(dst, src)
            except OSError:
                pass
        raise OutsError(
            f"cannot move aside files pipetool did not build ({exc.strerror}): "
            f"{_some(files)}; nothing was deleted") from None
    return Displaced(tuple(files), to)


def clear_outs(root: str, t: Target, hasher: Hasher) -> None:
    """Remove `t`'s outs (all restorable by now) and make their parent folders."""
    for o in t.outs:
        path = os.path.join(root, o.rstrip("/"))
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
            os.makedirs(os.path.dirname(path) or root, exist_ok=True)
        except OSError as exc:
            raise OutsError(f"cannot clear its out {o} before running ({exc.strerror})") from None
        hasher.forget(o)


def _some(files: list[str], shown: int = 5) -> str:
    more = f" and {len(files) - shown} more" if len(files) > shown else ""
    return ", ".join(files[:shown]) + more
