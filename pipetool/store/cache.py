"""The content-addressed cache under `.pipetool/cache/`: outputs stored by content hash.

Files are objects named by their xxh3-128 digest; a folder is an object too, a JSON
listing (relative path -> file digest) named by the folder's digest. Objects are
written by copy (a reflink where the filesystem can, `copy_file_range` otherwise),
read-only, never hard-linked to the workspace, so editing a workspace file cannot
corrupt the cache. Every restore verifies the object against its name; a corrupt
object is removed and reported, never used.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import stat as statmod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ..digests import listing_digest
from ..fingerprint.hashing import BLOCK
from .failures import raise_write_error, remove_quietly
from .names import printable

FICLONE = 0x40049409  # linux/fs.h: share the source's blocks (btrfs, xfs, ...)


class CacheMiss(Exception):
    """An object is missing or does not match its hash; `reason` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Reflink:
    """Whether reflinks are worth trying in this process: until a filesystem says no."""

    works = True


def copy_file(src: str, dst: str) -> None:
    """Copy bytes: reflink if possible, else copy_file_range, else a plain copy."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        if _Reflink.works:
            try:
                fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
                return
            except OSError as exc:
                if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS):
                    _Reflink.works = False
        size = os.fstat(fin.fileno()).st_size
        try:
            copied = 0
            while copied < size:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), size - copied)
                if n == 0:
                    break
                copied += n
            if copied == size:
                return
            fin.seek(copied)
            fout.seek(copied)
        except (AttributeError, OSError) as exc:
            unsupported = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)
            if isinstance(exc, OSError) and exc.errno not in unsupported:
                raise
            fin.seek(0)
            fout.seek(0)
            fout.truncate()
        shutil.copyfileobj(fin, fout, BLOCK)


def file_hash(path: str) -> str:
    from ..fingerprint.hashing import hash_file_contents

    return hash_file_contents(path, os.stat(path).st_size)


class ObjectSource(Protocol):
    """Where a restore takes objects from: this cache, or verified downloads (remote)."""

    def listing(self, digest: str) -> dict[str, str]: ...
    def stage(self, digest: str, staged: str, executable: bool, umask: int) -> None: ...


@dataclass
class Cache:
    root: str  # the project root

    @property
    def objects(self) -> str:
        return os.path.join(self.root, ".pipetool", "cache", "objects")

    def path_of(self, digest: str) -> str:
        return os.path.join(self.objects, digest[:2], digest[2:])

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path_of(digest))

    # -- storing -------------------------------------------------------------------
    def store_file(self, src: str, digest: str) -> int:
        """Put a workspace file in the cache under `digest` (already computed by the
        caller); returns the bytes added (0 when already there)."""
        dst = self.path_of(digest)
        if os.path.exists(dst):
            return 0
        tmp = f"{dst}.{os.getpid()}.tmp"
        rel = printable(os.path.relpath(src, self.root))
        try:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            copy_file(src, tmp)
            # The copy is checked, so a file changed between its hashing and this copy is
            # never stored under the wrong name (nor later pushed anywhere under it).
            if file_hash(tmp) != digest:
                os.unlink(tmp)
                raise CacheMiss(f"{rel} changed while it was being stored")
            os.chmod(tmp, 0o444)
            os.replace(tmp, dst)
        except OSError as exc:
            remove_quietly(tmp)
            if exc.filename is not None and os.fsdecode(exc.filename) == src:
                raise  # the workspace file, not the cache: the caller's business
            raise_write_error(exc, dst, f"the cache copy of {rel}")
        return os.path.getsize(dst)

    def store_out(self, rel: str, digest: str, listing: dict[str, str] | None) -> int:
        """Store one out: a file, or a folder given with its listing (path -> digest)."""
        path = os.path.join(self.root, rel.rstrip("/"))
        if listing is None:
            return self.store_file(path, digest)
        added = 0
        for sub, fdigest in listing.items():
            if fdigest.startswith(("link:", "special")) or not fdigest:
                raise CacheMiss(f"{rel} holds {printable(sub)}, which is not a regular file: not cached")
            added += self.store_file(os.path.join(path, sub), fdigest)
        added += self._store_bytes(digest, _listing_bytes(listing))
        return added

    def _store_bytes(self, digest: str, data: bytes) -> int:
        dst = self.path_of(digest)
        if os.path.exists(dst):
            return 0
        tmp = f"{dst}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o444)
            os.replace(tmp, dst)
        except OSError as exc:
            remove_quietly(tmp)
            raise_write_error(exc, dst, f"the cache copy of a folder listing ({digest[:12]})")
        return len(data)

    def admit(self, tmp: str, digest: str, is_listing: bool) -> bool:
        """Move a downloaded file into the cache if its bytes match `digest`; otherwise
        delete it and say no."""
        return admit_verified(tmp, self.path_of(digest), digest, is_listing)

    def temp_path(self, digest: str, tag: str) -> str:
        """Where a download of `digest` is written before `admit` (skipped by housekeeping)."""
        dst = self.path_of(digest)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        return f"{dst}.{os.getpid()}-{tag}.tmp"

    def size_of(self, digest: str) -> int:
        return os.path.getsize(self.path_of(digest))

    # -- restoring -----------------------------------------------------------------
    def listing(self, digest: str) -> dict[str, str]:
        """The folder listing stored under `digest` (verified)."""
        obj = self.path_of(digest)
        try:
            with open(obj, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise CacheMiss(f"cache object {digest[:12]} is missing") from None
        if _dir_digest_of(data) != digest:
            self._drop(obj)
            raise CacheMiss(f"cache object {digest[:12]} is corrupt (removed)")
        return json.loads(data.decode("utf-8"))

    def peek_listing(self, digest: str, size: int) -> dict[str, str] | None:
        """The listing stored under `digest` if that object is a folder listing, else None
        (never removes anything: for housekeeping, which looks at every kind of object)."""
        if not size or size > 64 * 1024 * 1024:
            return None
        try:
            with open(self.path_of(digest), "rb") as f:
                if f.read(1) != b"{":
                    return None
                f.seek(0)
                data = f.read()
            if _dir_digest_of(data) == digest:
                return json.loads(data.decode("utf-8"))
        except (OSError, ValueError, AttributeError, TypeError):
            return None
        return None

    def stage(self, digest: str, staged: str, executable: bool, umask: int) -> None:
        """Copy an object to `staged`, verified against its digest, with the mode a new
        file gets here (executable when it was)."""
        obj = self.path_of(digest)
        if not os.path.exists(obj):
            raise CacheMiss(f"cache object {digest[:12]} is missing")
        os.makedirs(os.path.dirname(staged), exist_ok=True)
        copy_file(obj, staged)
        if file_hash(staged) != digest:
            os.unlink(staged)
            self._drop(obj)
            raise CacheMiss(f"cache object {digest[:12]} is corrupt (removed)")
        os.chmod(staged, (0o777 if executable else 0o666) & ~umask)

    def restore_outs(self, outs: dict[str, str], dirs: Iterable[str], execs: Iterable[str] = (),
                     source: ObjectSource | None = None) -> None:
        """Put a target's outs back, all or nothing: every out is staged (copied and
        verified) beside its place first, and only then are they moved in. `source`:
        where the objects come from (default: this cache)."""
        src = source or self
        dirs, execs = set(dirs), set(execs)
        umask = _umask()
        staged: list[tuple[str, str]] = []  # (staging path, final path)
        try:
            for rel, digest in outs.items():
                key = rel.rstrip("/")
                path = os.path.join(self.root, key)
                stage = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.pipetool-tmp")
                if os.path.isdir(stage) and not os.path.islink(stage):
                    shutil.rmtree(stage)
                elif os.path.lexists(stage):
                    os.unlink(stage)
                staged.append((stage, path))
                if rel in dirs:
                    listing = src.listing(digest)
                    os.makedirs(stage)
                    for sub, fdigest in listing.items():
                        src.stage(fdigest, os.path.join(stage, sub), f"{key}/{sub}" in execs, umask)
                else:
                    src.stage(digest, stage, key in execs, umask)
        except BaseException as exc:
            for stage, _ in staged:
                if os.path.isdir(stage) and not os.path.islink(stage):
                    shutil.rmtree(stage, ignore_errors=True)
                elif os.path.lexists(stage):
                    remove_quietly(stage)
            if isinstance(exc, OSError) and staged:
                outs_named = ", ".join(printable(k) for k in outs)
                raise_write_error(exc, staged[-1][0], f"{outs_named} put back from the cache (the workspace "
                                  "keeps what it held)", read_only_too=False)
            raise
        for stage, path in staged:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path) and os.path.isdir(stage):
                os.unlink(path)
            os.replace(stage, path)

    def _drop(self, obj: str) -> None:
        try:
            os.chmod(obj, 0o644)
            os.unlink(obj)
        except OSError:
            pass

    # -- housekeeping ----------------------------------------------------------------
    def all_objects(self) -> dict[str, int]:
        """digest -> size of every object."""
        out: dict[str, int] = {}
        base = self.objects
        if not os.path.isdir(base):
            return out
        for d in os.scandir(base):
            if not d.is_dir():
                continue
            for e in os.scandir(d.path):
                if e.name.endswith(".tmp"):
                    continue
                st = e.stat(follow_symlinks=False)
                if statmod.S_ISREG(st.st_mode):
                    out[d.name + e.name] = st.st_size
        return out

    def remove(self, digest: str) -> None:
        self._drop(self.path_of(digest))


def _umask() -> int:
    """The process umask, read without setting it where the kernel tells it (setting it,
    even for an instant, could hand 0 to a command spawned meanwhile)."""
    try:
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith("Umask:"))
        return int(line.split()[1], 8)
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def executables(root: str, outs: Iterable[str], dirs: Iterable[str]) -> list[str]:
    """The files among (and inside) `outs` with an execute bit: the cache keeps bytes by
    content, so the mode travels beside them, in the run-cache entry."""
    found: list[str] = []
    dirs = set(dirs)
    for rel in outs:
        key = rel.rstrip("/")
        path = os.path.join(root, key)
        if rel in dirs:
            for base, _, files in os.walk(path):
                for name in files:
                    full = os.path.join(base, name)
                    if os.stat(full).st_mode & 0o111:
                        found.append(os.path.relpath(full, root).replace(os.sep, "/"))
        elif os.stat(path).st_mode & 0o111:
            found.append(key)
    return sorted(found)


def admit_verified(tmp: str, dst: str, digest: str, is_listing: bool) -> bool:
    """Move a downloaded file to `dst` (read-only) if its bytes match `digest` (a folder
    listing by its folder digest, naming only files inside the folder); otherwise delete
    it and say no."""
    try:
        if is_listing:
            with open(tmp, "rb") as f:
                data = f.read()
            ok = _dir_digest_of(data) == digest and _safe_listing(json.loads(data.decode("utf-8")))
        else:
            ok = file_hash(tmp) == digest
    except (OSError, ValueError, AttributeError, TypeError):
        ok = False
    if not ok:
        os.unlink(tmp)
        return False
    os.chmod(tmp, 0o444)
    os.replace(tmp, dst)
    return True


def _safe_listing(listing: object) -> bool:
    """A listing from elsewhere (a remote) names only plain files inside its folder."""
    if not isinstance(listing, dict):
        return False
    for sub, digest in listing.items():
        parts = sub.split("/") if isinstance(sub, str) else [""]
        if (sub.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in sub
                or not isinstance(digest, str) or not digest.isalnum()):
            return False
    return True


def _listing_bytes(listing: dict[str, str]) -> bytes:
    return json.dumps(dict(sorted(listing.items())), separators=(",", ":")).encode("utf-8")


def _dir_digest_of(data: bytes) -> str:
    """A stored listing's folder digest, computed as the hasher does for folders."""
    return listing_digest(json.loads(data.decode("utf-8")))
