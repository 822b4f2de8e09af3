"""A target's fingerprint and the trace it was made from (to explain what changed).

fingerprint = hash(code part, declared params' values, deps' content hashes, env values).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from .codehash import resolve_callable
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

    @property
    def fingerprint(self) -> str:
        return hash_strings([self.code, canonical(self.params), canonical(self.deps), canonical(self.env)])

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "params": self.params, "deps": self.deps, "env": self.env}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Trace":
        return Trace(d.get("code", ""), d.get("params", {}), d.get("deps", {}), d.get("env", {}))


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def code_part(p: Pipeline, t: Target, hasher: Hasher) -> str:
    if t.code_version is not None:
        return "version:" + t.code_version
    if t.cmd_template is not None:
        return "cmd:" + t.cmd_template
    assert t.python is not None
    path = resolve_callable(p.root, t.python, p.where("targets", t.name, "python"))
    rel = os.path.relpath(path, p.root)
    if rel.startswith(".."):
        digest = _installed_digest(path)
    else:
        digest = hasher.file_digest(rel.replace(os.sep, "/"))
    return f"python:{t.python}@{digest}"


def _installed_digest(path: str) -> str | None:
    with open(path, "rb") as f:
        return hash_bytes(f.read())


def observe(p: Pipeline, t: Target, hasher: Hasher) -> Trace:
    """The trace of `t` as the workspace stands now."""
    params = {k: lookup(p.params, k) for k in t.params}
    deps = {d.path: hasher.digest(d.path) for d in t.deps}
    env = {name: (hash_bytes(os.environ[name].encode()) if name in os.environ else None) for name in t.env}
    return Trace(code_part(p, t, hasher), params, deps, env)


def observe_outs(t: Target, hasher: Hasher) -> dict[str, str | None]:
    return {o: hasher.digest(o) for o in t.outs}
