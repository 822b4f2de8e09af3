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
from dataclasses import dataclass

from ..hashing import BLOCK, listing_digest

FICLONE = 0x40049409  # linux/fs.h: share the source's blocks (btrfs, xfs, ...)


class CacheMiss(Exception):
    """An object is missing or does not match its hash; `reason` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_reflink_works = True  # until a filesystem says otherwise


def copy_file(src: str, dst: str) -> None:
    """Copy bytes: reflink if possible, else copy_file_range, else a plain copy."""
    global _reflink_works
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        if _reflink_works:
            try:
                fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
                return
            except OSError as exc:
                if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS):
                    _reflink_works = False
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
            if isinstance(exc, OSError) and exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            fin.seek(0)
            fout.seek(0)
            fout.truncate()
        shutil.copyfileobj(fin, fout, BLOCK)


def file_hash(path: str) -> str:
    from ..hashing import hash_file_contents

    return hash_file_contents(path, os.stat(path).st_size)


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
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tmp = f"{dst}.{os.getpid()}.tmp"
        copy_file(src, tmp)
        # The copy is checked, so a file changed between its hashing and this copy is
        # never stored under the wrong name (nor later pushed anywhere under it).
        if file_hash(tmp) != digest:
            os.unlink(tmp)
            raise CacheMiss(f"{os.path.relpath(src, self.root)} changed while it was being stored")
        os.chmod(tmp, 0o444)
        os.replace(tmp, dst)
        return os.path.getsize(dst)

    def store_out(self, rel: str, digest: str, listing: dict[str, str] | None) -> int:
        """Store one out: a file, or a folder given with its listing (path -> digest)."""
        path = os.path.join(self.root, rel.rstrip("/"))
        if listing is None:
            return self.store_file(path, digest)
        added = 0
        for sub, fdigest in listing.items():
            if fdigest.startswith(("link:", "special")) or not fdigest:
                raise CacheMiss(f"{rel} holds {sub}, which is not a regular file: not cached")
            added += self.store_file(os.path.join(path, sub), fdigest)
        added += self._store_bytes(digest, _listing_bytes(listing))
        return added

    def _store_bytes(self, digest: str, data: bytes) -> int:
        dst = self.path_of(digest)
        if os.path.exists(dst):
            return 0
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tmp = f"{dst}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o444)
        os.replace(tmp, dst)
        return len(data)

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

    def restore_file(self, digest: str, dst: str) -> None:
        """Copy an object to `dst` (atomically), verified against its digest."""
        obj = self.path_of(digest)
        if not os.path.exists(obj):
            raise CacheMiss(f"cache object {digest[:12]} is missing")
        parent = os.path.dirname(dst)
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".{os.path.basename(dst)}.pipetool-tmp")
        copy_file(obj, tmp)
        if file_hash(tmp) != digest:
            os.unlink(tmp)
            self._drop(obj)
            raise CacheMiss(f"cache object {digest[:12]} is corrupt (removed)")
        os.chmod(tmp, 0o644)
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        os.replace(tmp, dst)

    def restore_out(self, rel: str, digest: str, is_dir: bool) -> None:
        path = os.path.join(self.root, rel.rstrip("/"))
        if not is_dir:
            self.restore_file(digest, path)
            return
        listing = self.listing(digest)
        for sub, fdigest in listing.items():  # every object first: all or nothing
            if not self.has(fdigest):
                raise CacheMiss(f"cache object {fdigest[:12]} ({rel.rstrip('/')}/{sub}) is missing")
        staging = path.rstrip("/") + ".pipetool-tmp"
        if os.path.lexists(staging):
            shutil.rmtree(staging)
        try:
            for sub, fdigest in listing.items():
                self.restore_file(fdigest, os.path.join(staging, sub))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        os.replace(staging, path)

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


def _listing_bytes(listing: dict[str, str]) -> bytes:
    return json.dumps(dict(sorted(listing.items())), separators=(",", ":")).encode("utf-8")


def _dir_digest_of(data: bytes) -> str:
    """A stored listing's folder digest, computed as the hasher does for folders."""
    return listing_digest(json.loads(data.decode("utf-8")))
