"""Content hashes (xxh3-128) of files, directories and globs, gated by a stat cache.

The stat cache maps a path to (size, mtime_ns, ctime_ns, inode) and the digest seen then;
an entry is trusted only when the file's last change (ctime, which follows every write and
every mtime reset) is safely older than the moment it was hashed
(git's "racily clean" rule), so a same-size rewrite within one timestamp tick is still seen.
Within one invocation no file is stat'ed or hashed twice (`Hasher` memoizes).
"""
from __future__ import annotations

import glob as globmod
import os
import stat as statmod
import threading
import time
from dataclasses import dataclass, field

import xxhash

from ..digests import listing_digest
from ..errors import PipelineError
from ..spec.paths import is_glob
from ..store.names import printable
from ..store.statcache import StatCache, StatEntry

BLOCK = 8 * 1024 * 1024
SMALL = 1024 * 1024  # read whole files up to this size
# An entry whose mtime is within a window of the moment it was hashed may hide a same-size
# rewrite in the same timestamp tick, so it is rehashed. The window must exceed the
# filesystem's timestamp granularity: a whole-second mtime suggests a coarse filesystem
# (ext3, HFS+, FAT: 2 s); otherwise timestamps come from the kernel's coarse clock
# (a jiffy, at most 10 ms), and 100 ms leaves a wide margin.
RACY_WINDOW_NS = 100_000_000
RACY_WINDOW_COARSE_NS = 2_000_000_000


def racy_window_ns(mtime_ns: int) -> int:
    return RACY_WINDOW_COARSE_NS if mtime_ns % 1_000_000_000 == 0 else RACY_WINDOW_NS
MISSING = None

_buffers = threading.local()  # one block buffer per thread (transfers hash in parallel)


def hash_file_contents(path: str, size_hint: int = -1) -> str:
    """Hash a file: small ones in one read, large ones in big blocks into one reused
    buffer (no per-byte Python work, no allocation per block)."""
    with open(path, "rb", buffering=0) as f:
        if 0 <= size_hint <= SMALL:
            return xxhash.xxh3_128_hexdigest(f.read())
        h = xxhash.xxh3_128()
        buf = getattr(_buffers, "block", None)
        if buf is None:
            buf = _buffers.block = bytearray(BLOCK)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
        return h.hexdigest()


@dataclass
class Hasher:
    """Hashes workspace paths relative to `root`, memoized for one invocation."""

    root: str
    cache: StatCache | None = None
    _memo: dict[str, str | None] = field(default_factory=dict)
    _glob_memo: dict[str, str | None] = field(default_factory=dict)
    _spelled: dict[str, str | None] = field(default_factory=dict)  # digest() by its argument
    _now_ns: int = field(default_factory=time.time_ns)

    def __post_init__(self) -> None:
        self._prefix = os.path.join(self.root, "")

    def _abs(self, rel: str) -> str:
        return self._prefix + rel

    def forget(self, rel: str) -> None:
        """Drop memoized digests at or below `rel` (it is about to be rewritten)."""
        key = rel.rstrip("/")
        for memo in (self._memo, self._spelled):
            memo.pop(key, None)
            if memo.pop(key + "/", None) is not None or rel.endswith("/"):
                prefix = key + "/"
                for k in [k for k in memo if k.startswith(prefix)]:
                    del memo[k]
        self._glob_memo.clear()  # a glob may match what is rewritten

    def assume(self, rel: str, digest: str | None) -> None:
        """Answer `digest` for `rel` from now on, whatever is on disk (a dry run of a
        branch judges against the outputs the branched run had)."""
        self._memo[rel.rstrip("/")] = digest
        self._memo[rel.rstrip("/") + "/"] = digest
        self._spelled[rel] = digest

    def file_digest(self, rel: str, st: os.stat_result | None = None) -> str | None:
        """Digest of one regular file, or None when it does not exist."""
        memo = self._memo
        if rel in memo:
            return memo[rel]
        if st is None:
            st = self._stat(rel)
            if st is None:
                memo[rel] = None
                return None
        if not statmod.S_ISREG(st.st_mode):
            raise PipelineError(f"'{printable(rel)}' is not a regular file or folder (a pipe, socket or device?)")
        digest = None
        cache = self.cache
        if cache is not None:
            entry = cache.get(rel)
            if (
                entry is not None
                and entry.size == st.st_size
                and entry.mtime_ns == st.st_mtime_ns
                and entry.ctime_ns == st.st_ctime_ns
                and entry.inode == st.st_ino
                and st.st_ctime_ns + racy_window_ns(st.st_ctime_ns) < entry.hashed_at_ns
            ):
                digest = entry.digest
        if digest is None:
            hashed_at = time.time_ns()
            digest = hash_file_contents(self._abs(rel), st.st_size)
            if cache is not None:
                cache.put(rel, StatEntry(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, hashed_at, digest))
        memo[rel] = digest
        return digest

    def path_digest(self, rel: str) -> str | None:
        """Digest of a file or a directory (every file below, with relative paths)."""
        memo = self._memo
        key = rel if not rel.endswith("/") else rel.rstrip("/")
        dkey = key + "/"
        if dkey in memo:
            return memo[dkey]
        if key in memo:
            return memo[key]
        st = self._stat(key)
        if st is None:
            memo[key] = None
            return None
        if statmod.S_ISDIR(st.st_mode):
            digest = self._dir_digest(key)
            memo[dkey] = digest
            return digest
        return self.file_digest(key, st)

    def _stat(self, rel: str) -> os.stat_result | None:
        """stat() following symlinks; None when absent, an error when unreadable."""
        try:
            return os.stat(self._abs(rel))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise PipelineError(f"'{printable(rel)}' cannot be read: {exc.strerror}") from None

    def _dir_entries(self, key: str) -> list[tuple[str, os.stat_result | None]]:
        """Every file below a folder (symlinks to files followed, folders below walked
        without following links); what cannot be read as a file stands as None."""
        out: list[tuple[str, os.stat_result | None]] = []
        stack = [key]
        while stack:
            d = stack.pop()
            with os.scandir(self._abs(d)) as it:
                for e in it:
                    rel = f"{d}/{e.name}" if d else e.name
                    if e.is_dir(follow_symlinks=False):
                        stack.append(rel)
                        continue
                    try:
                        st = e.stat()
                    except OSError:  # a broken link or a link loop
                        st = None
                    out.append((rel, st if st is not None and statmod.S_ISREG(st.st_mode) else None))
        out.sort(key=lambda x: x[0])
        return out

    def dir_listing(self, key: str) -> dict[str, str]:
        """Relative path -> digest of every file below a folder; an entry that is not a
        readable file (a broken link, a link loop, a pipe) maps to "link:TARGET" or
        "special", so changing it is a change too."""
        listing: dict[str, str] = {}
        n = len(key.rstrip("/")) + 1
        for rel, st in self._dir_entries(key.rstrip("/")):
            if st is None:
                try:
                    listing[rel[n:]] = "link:" + os.readlink(self._abs(rel))
                except OSError:
                    listing[rel[n:]] = "special"
            else:
                listing[rel[n:]] = self.file_digest(rel, st) or ""
        return listing

    def _dir_digest(self, key: str) -> str:
        return listing_digest(self.dir_listing(key))

    def glob_paths(self, pattern: str) -> list[str]:
        root = self.root
        matches = globmod.glob(pattern, root_dir=root, recursive=True)
        return sorted(m.replace(os.sep, "/") for m in matches)

    def glob_digest(self, pattern: str) -> str | None:
        """Digest of the matched paths and their contents; None when nothing matches."""
        if pattern in self._glob_memo:
            return self._glob_memo[pattern]
        paths = self.glob_paths(pattern)
        if not paths:
            self._glob_memo[pattern] = None
            return None
        h = xxhash.xxh3_128(b"glob\0")
        for p in paths:
            h.update(p.encode("utf-8", "surrogateescape") + b"\0")
            h.update((self.path_digest(p) or "").encode() + b"\0")
        digest = h.hexdigest()
        self._glob_memo[pattern] = digest
        return digest

    def digest(self, rel: str) -> str | None:
        """Digest of a dep or out spelled as in pipeline.yaml (file, dir/ or glob)."""
        spelled = self._spelled
        if rel in spelled:
            return spelled[rel]
        if is_glob(rel):
            return self.glob_digest(rel)
        d = spelled[rel] = self.path_digest(rel)
        return d
