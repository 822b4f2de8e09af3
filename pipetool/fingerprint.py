"""A target's fingerprint and the trace it was made from (to explain what changed).

fingerprint = hash(code part, declared params' values, deps' content hashes, env values).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .codehash import module_closure, resolve_callable
from .hashing import Hasher, hash_bytes, hash_strings
from .spec.model import Pipeline, Target
from .spec.params import lookup


@dataclass(frozen=True)
class Trace:
    """What one fingerprint covers; stored with each record so a change can be named."""

    # "cmd:<command as written>" (the values it interpolates are among `params`, so this
    # is equivalent to hashing the substituted text while naming the param that moved),
    # "python:<ref>@<module hash>" or "version:<code_version>"
    code: str
    params: dict[str, Any]
    deps: dict[str, str | None]
    env: dict[str, str | None]  # hashed values: secrets never reach the lock file
    code_files: dict[str, str | None] | None = None  # python: module files behind `code`

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
    """The code part of the fingerprint, and for callables the module files it covers."""
    if t.code_version is not None:
        return "version:" + t.code_version, None
    if t.cmd_template is not None:
        return "cmd:" + t.cmd_template, None
    assert t.python is not None
    path = resolve_callable(p.root, t.python, p.where("targets", t.name, "python"))
    files: dict[str, str | None] = {}
    for f in module_closure(p.root, path):
        rel = os.path.relpath(f, p.root).replace(os.sep, "/")
        files[rel] = hasher.file_digest(rel)
    if not files:  # a callable of an installed package counts by its module's bytes
        files["installed:" + t.python.partition(":")[0]] = _installed_digest(path)
    return f"python:{t.python}@{hash_strings(f'{k}={v}' for k, v in sorted(files.items()))}", files


def _installed_digest(path: str) -> str | None:
    with open(path, "rb") as f:
        return hash_bytes(f.read())


def observe(p: Pipeline, t: Target, hasher: Hasher) -> Trace:
    """The trace of `t` as the workspace stands now."""
    params = {k: lookup(p.params, k) for k in t.params}
    deps = {d.path: hasher.digest(d.path) for d in t.deps}
    env = {name: (hash_bytes(os.environ[name].encode()) if name in os.environ else None) for name in t.env}
    code, files = code_part(p, t, hasher)
    return Trace(code, params, deps, env, files)


def observe_outs(t: Target, hasher: Hasher) -> dict[str, str | None]:
    return {o: hasher.digest(o) for o in t.outs}
