"""A target's fingerprint and the trace it was made from (to explain what changed).

fingerprint = hash(code part, declared params' values, deps' content hashes, env values).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ..digests import hash_bytes, hash_strings
from ..spec.paths import is_glob
from .hashing import Hasher
from ..spec.model import Pipeline, Target
from ..spec.params import lookup


@dataclass(frozen=True)
class Trace:
    """What one fingerprint covers; stored with each record so a change can be named."""

    # "cmd:<command as written>" (the values it interpolates are among `params`, so this
    # is equivalent to hashing the substituted text while naming the param that moved),
    # "python:<ref>@<hash of code_files>" or "version:<code_version>"
    code: str
    params: dict[str, Any]
    deps: dict[str, str | None]
    env: dict[str, str | None]  # hashed values: secrets never reach the lock file
    # python: what `code` covers, by name (codehash.code_entries): "src.train:train",
    # "src.util:scale", "const src.train:EPOCHS" -> digests, "pkg numpy" -> its version
    code_files: dict[str, str | None] | None = None

    @cached_property
    def fingerprint(self) -> str:
        parts = [self.code, canonical(self.params) if self.params else "{}"]
        for mapping in (self.deps, self.env):
            parts.append(str(len(mapping)))
            for k in sorted(mapping):
                parts.append(k)
                parts.append(mapping[k] or "-")
        return hash_strings(parts)

    def to_dict(self) -> dict[str, Any]:
        d = {"code": self.code, "params": self.params, "deps": self.deps, "env": self.env}
        if self.code_files:
            d["code_files"] = self.code_files
        return d


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def code_part(p: Pipeline, t: Target, hasher: Hasher) -> tuple[str, dict[str, str | None] | None]:
    """The code part of the fingerprint, and for callables the entries it covers; a
    target's checks are part of its code (a new or edited check reruns the target)."""
    code, entries = _own_code(p, t)
    if not t.checks:
        return code, entries
    from .codehash import code_entries, resolve_callable

    parts = [code]
    entries = dict(entries or {})
    for i, c in enumerate(t.checks):
        if c.cmd is not None:
            parts.append("check cmd:" + c.cmd)
            continue
        path = resolve_callable(p.root, c.python, p.where("targets", t.name, "checks", i))
        sub = code_entries(p.root, c.python, path)
        parts.append(f"check python:{c.python}@{hash_strings(f'{k}={v}' for k, v in sorted(sub.items()))}")
        entries.update({f"check {k}": v for k, v in sub.items()})
    return "\n".join(parts), entries or None


def _own_code(p: Pipeline, t: Target) -> tuple[str, dict[str, str | None] | None]:
    if t.code_version is not None:
        return "version:" + t.code_version, None
    if t.cmd_template is not None:
        return "cmd:" + t.cmd_template, None
    assert t.python is not None
    from .codehash import code_entries, resolve_callable

    path = resolve_callable(p.root, t.python, p.where("targets", t.name, "python"))
    entries = code_entries(p.root, t.python, path)
    return f"python:{t.python}@{hash_strings(f'{k}={v}' for k, v in sorted(entries.items()))}", entries


# Script digests by byte digest, for this process; the stat cache keeps them across runs
# under a key no relative path can take ("/ast/<python>/<byte digest>").
_SCRIPT_MEMO: dict[str, str] = {}
_PY = "%d.%d" % sys.version_info[:2]


def dep_digest(hasher: Hasher, path: str, mode: str = "auto") -> str | None:
    """A dep's digest: a `.py` file (or `hash: ast`) by its normalized AST, so comments,
    docstrings and formatting do not count; anything else, or `hash: bytes`, or a script
    that does not parse, by its bytes."""
    if mode == "bytes" or path.endswith("/") or is_glob(path) or not (mode == "ast" or path.endswith(".py")):
        return hasher.digest(path)
    raw = hasher.digest(path)
    if raw is None:
        return None
    memo = _SCRIPT_MEMO.get(raw)
    if memo is not None:
        return memo if memo != "bytes" else raw
    key = f"/ast/{_PY}/{raw}"
    cache = hasher.cache
    entry = cache.get(key) if cache is not None else None
    if entry is not None:
        digest = entry[5]
    else:
        from .pyast import source_ast_digest

        try:
            with open(os.path.join(hasher.root, path), "rb") as f:
                data = f.read()
        except OSError:  # a folder named x.py, or gone since: its bytes' digest stands
            return raw
        if hash_bytes(data) != raw:  # rewritten since it was hashed: judged by its bytes
            return raw
        ast_d = source_ast_digest(data, path)
        digest = "bytes" if ast_d is None else "ast:" + ast_d
        if cache is not None and ast_d is not None:
            from ..store.statcache import StatEntry

            cache.put(key, StatEntry(0, 0, 0, 0, 0, digest))
    _SCRIPT_MEMO[raw] = digest
    return digest if digest != "bytes" else raw


def observe(p: Pipeline, t: Target, hasher: Hasher) -> Trace:
    """The trace of `t` as the workspace stands now."""
    params = {k: lookup(p.params, k) for k in t.params}
    deps = {d.path: dep_digest(hasher, d.path, d.hash_mode) for d in t.deps}
    env = {name: (hash_bytes(os.environ[name].encode()) if name in os.environ else None) for name in t.env}
    code, files = code_part(p, t, hasher)
    return Trace(code, params, deps, env, files)


def observe_outs(t: Target, hasher: Hasher) -> dict[str, str | None]:
    return {o: hasher.digest(o) for o in t.outs}
