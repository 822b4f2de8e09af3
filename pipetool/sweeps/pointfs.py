"""A point's workspace as hashing and the cache see it: sharing by reference.

- `PointStats`: the stat cache of a point. It reads the project's rows (a file a point
  reads through a link has the project's size, times and inode, so it costs no rehash)
  and keeps its own in memory: a sweep never writes the project's stat rows for files
  that are not the project's.
- `PointHasher`: hashes the point's folder exactly as the project's (a linked folder is
  walked as the folder it stands for, not as a link).
- `PointCache`: the project's cache, seen from a point's folder: outputs are stored into
  the project's objects, and restored as links to those read-only objects (a folder out:
  a real folder of links), not copies. Each object is verified against its name once per
  sweep (those this sweep stored were verified as they were stored).
"""
from __future__ import annotations

import errno
import os
import shutil
import stat as statmod
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..fingerprint.hashing import Hasher, racy_window_ns
from ..store.cache import Cache, CacheMiss, ObjectSource, _umask, file_hash
from ..store.failures import raise_write_error, remove_quietly
from ..store.names import printable
from ..store.statcache import StatCache, StatEntry


class PointStats(StatCache):
    """The project's stat rows, read-only, under the point's own (kept in memory)."""

    def __init__(self, base: StatCache):
        super().__init__(None)
        self._base = base
        self._own: dict[str, StatEntry] = {}

    def get(self, path: str) -> StatEntry | None:
        own = self._own.get(path)
        return own if own is not None else self._base.get(path)

    def put(self, path: str, entry: StatEntry) -> None:
        self._own[path] = entry

    def flush(self) -> None:
        """Nothing is written: the point's rows describe files that are not the project's."""


@dataclass
class PointHasher(Hasher):
    """Hashes a point's folder; a link the forest made to one of the project's folders is
    walked as that folder (the project hashes it so: the same digest)."""

    project_root: str = ""

    def _dir_entries(self, key: str) -> list[tuple[str, os.stat_result | None]]:
        out: list[tuple[str, os.stat_result | None]] = []
        stack = [key]
        base = os.path.join(self.project_root, "")
        while stack:
            d = stack.pop()
            with os.scandir(self._abs(d)) as it:
                for e in it:
                    rel = f"{d}/{e.name}" if d else e.name
                    if e.is_dir(follow_symlinks=False) or (
                            e.is_symlink() and _readlink(e.path) == base + rel and e.is_dir()):
                        stack.append(rel)
                        continue
                    try:
                        st = e.stat()
                    except OSError:  # a broken link or a link loop
                        st = None
                    out.append((rel, st if st is not None and statmod.S_ISREG(st.st_mode) else None))
        out.sort(key=lambda x: x[0])
        return out


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


@dataclass
class Verified:
    """The objects checked against their names during one sweep (shared by its points)."""

    digests: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __contains__(self, digest: object) -> bool:
        return digest in self.digests

    def add(self, digest: str) -> None:
        with self.lock:
            self.digests.add(digest)


@dataclass
class PointCache(Cache):
    """The cache of the project under `state_root`, seen from the point folder `root`."""

    state_root: str = ""
    verified: Verified = field(default_factory=Verified)
    stats: PointStats | None = None  # told the digest of each file linked in (no rehash)

    @property
    def objects(self) -> str:
        return os.path.join(self.state_root, ".pipetool", "cache", "objects")

    def store_file(self, src: str, digest: str) -> int:
        added = super().store_file(src, digest)
        if added:  # copied and checked against its name just now
            self.verified.add(digest)
        return added

    def _usable(self, digest: str) -> None:
        """The object exists and (once per sweep) matches its name; else CacheMiss."""
        if digest in self.verified:
            return
        obj = self.path_of(digest)
        try:
            ok = file_hash(obj) == digest
        except FileNotFoundError:
            raise CacheMiss(f"cache object {digest[:12]} is missing") from None
        if not ok:
            self._drop(obj)
            raise CacheMiss(f"cache object {digest[:12]} is corrupt (removed)")
        self.verified.add(digest)

    def restore_outs(self, outs: dict[str, str], dirs: Iterable[str], execs: Iterable[str] = (),
                     source: ObjectSource | None = None) -> None:
        """Put a target's outs in the point's folder as links to the cache's objects, all or
        nothing (each out made beside its place, then moved in). A file with an execute bit
        is copied (the objects are read-only, their mode is not the file's); what comes from
        a remote is moved in from where it was downloaded, as a run does."""
        real_root = os.path.join(os.path.realpath(self.root), "")
        for rel in outs:  # never through a link into the project
            folder = os.path.realpath(os.path.join(self.root, os.path.dirname(rel.rstrip("/"))))
            if not os.path.join(folder, "").startswith(real_root):
                raise OSError(errno.EPERM, f"{printable(rel)} would be put through a link, into {folder}")
        if source is not None:
            super().restore_outs(outs, dirs, execs, source)
            return
        dirs, execs = set(dirs), set(execs)
        files: dict[str, list[tuple[str, str]]] = {}  # out -> (path below it or "", digest)
        for rel, digest in outs.items():
            files[rel] = sorted(self.listing(digest).items()) if rel in dirs else [("", digest)]
            for _, d in files[rel]:
                self._usable(d)
        umask = _umask()
        staged: list[tuple[str, str]] = []  # (staging path, final path)
        try:
            for rel, entries in files.items():
                key = rel.rstrip("/")
                path = os.path.join(self.root, key)
                stage = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.pipetool-tmp")
                _remove(stage)
                staged.append((stage, path))
                if rel in dirs:
                    os.makedirs(stage)
                for sub, d in entries:
                    name = f"{key}/{sub}" if sub else key
                    self._place(d, os.path.join(stage, sub) if sub else stage, name in execs, umask)
        except BaseException as exc:
            for stage, _ in staged:
                _remove(stage, quietly=True)
            if isinstance(exc, OSError) and staged:
                raise_write_error(exc, staged[-1][0], f"{', '.join(printable(k) for k in outs)} linked from "
                                  "the cache into a sweep point's workspace", read_only_too=False)
            raise
        for stage, path in staged:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path) and os.path.isdir(stage):
                os.unlink(path)
            os.replace(stage, path)
        for rel, entries in files.items():
            for sub, d in entries:
                self._seed(f"{rel.rstrip('/')}/{sub}" if sub else rel.rstrip("/"), d)

    def _place(self, digest: str, dst: str, executable: bool, umask: int) -> None:
        if executable:
            self.stage(digest, dst, True, umask)
            return
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.symlink(self.path_of(digest), dst)

    def _seed(self, rel: str, digest: str) -> None:
        """Tell the point's stat cache the digest of a file linked in, when the object is
        safely older than now (the racy-clean rule): hashing it again would only reread it."""
        if self.stats is None:
            return
        try:
            st = os.stat(os.path.join(self.root, rel))
        except OSError:
            return
        now = time.time_ns()
        if st.st_ctime_ns + racy_window_ns(st.st_ctime_ns) < now:
            self.stats.put(rel, StatEntry(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, now, digest))


def _remove(path: str, quietly: bool = False) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=quietly)
    elif os.path.lexists(path):
        if quietly:
            remove_quietly(path)
        else:
            os.unlink(path)
