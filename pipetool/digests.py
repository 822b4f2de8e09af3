"""xxh3-128 digests of bytes, string sequences and folder listings: the one hash pipetool
uses for content, fingerprints and cache keys."""
from __future__ import annotations

from collections.abc import Iterable

import xxhash


def hash_bytes(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def hash_strings(parts: Iterable[str]) -> str:
    """Order-sensitive hash of a sequence of strings (NUL-separated)."""
    h = xxhash.xxh3_128()
    for p in parts:
        h.update(p.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()


def listing_digest(listing: dict[str, str]) -> str:
    """A folder's digest from its listing (relative path -> digest), in path order."""
    h = xxhash.xxh3_128(b"dir\0")
    for sub in sorted(listing):
        h.update(sub.encode("utf-8", "surrogateescape") + b"\0")
        h.update(listing[sub].encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()
