"""Downloads waiting for their target: verified objects under `.pipetool/tmp/`, moved
into the workspace by a rename when their target is restored.

Restoring from a remote so writes each byte once, as a plain `aws s3 sync` would (a
copy into the local cache and another into the workspace measured twice as slow on a
disk that writes at a few hundred MB/s). The remote, not the local cache, keeps them.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
from collections import Counter

from ..store.cache import Cache, admit_verified, copy_file


class Staging:
    """Where downloads land (and what a restore takes from: staged objects, else the cache)."""

    def __init__(self, root: str, cache: Cache):
        self.dir = os.path.join(root, ".pipetool", "tmp", f"remote-{os.getpid()}-{secrets.token_hex(3)}")
        self.cache = cache
        self.uses: Counter[str] = Counter()  # outs still to be made from each staged object
        self._lock = threading.Lock()

    def path_of(self, digest: str) -> str:
        return os.path.join(self.dir, digest)

    def has(self, digest: str) -> bool:
        return self.cache.has(digest) or os.path.exists(self.path_of(digest))

    def temp_path(self, digest: str, tag: str) -> str:
        os.makedirs(self.dir, exist_ok=True)
        return f"{self.path_of(digest)}.{tag}.tmp"

    def admit(self, tmp: str, digest: str, is_listing: bool) -> bool:
        return admit_verified(tmp, self.path_of(digest), digest, is_listing)

    # -- the ObjectSource a restore reads ----------------------------------------------
    def listing(self, digest: str) -> dict[str, str]:
        path = self.path_of(digest)
        if not os.path.exists(path):
            return self.cache.listing(digest)
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))  # verified when it was admitted

    def stage(self, digest: str, staged: str, executable: bool, umask: int) -> None:
        """The object at `staged`: moved there when this is its last use, else copied."""
        path = self.path_of(digest)
        if not os.path.exists(path):
            self.cache.stage(digest, staged, executable, umask)
            return
        os.makedirs(os.path.dirname(staged), exist_ok=True)
        with self._lock:
            self.uses[digest] -= 1
            last = self.uses[digest] <= 0
        if last:
            os.replace(path, staged)
        else:
            copy_file(path, staged)
        os.chmod(staged, (0o777 if executable else 0o666) & ~umask)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
