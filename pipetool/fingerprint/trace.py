"""A target's fingerprint and the trace it was made from (to explain what changed).

fingerprint = hash(code part, declared params' values, deps' content hashes, env values).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from ..digests import hash_bytes, hash_strings
from ..spec.model import Pipeline, Target
from ..spec.params import lookup
from ..spec.paths import is_glob
from .hashing import Hasher

CodeKind = Literal["cmd", "python", "version"]
CODE_KINDS: tuple[CodeKind, ...] = ("cmd", "python", "version")
CHECK_LINE = "\ncheck "


@dataclass(frozen=True)
class CodePart:
    """The code part of a fingerprint as a value. Stored as one string (`Trace.code`):
    "cmd:<command as written>" (the values it interpolates are among the params, so this
    is equivalent to hashing the substituted text while naming the param that moved),
    "python:<ref>@<digest of its code closure>" or "version:<code_version>", followed by a
    "check cmd:<command>" or "check python:<ref>@<digest>" line per check."""

    kind: CodeKind
    text: str  # the command, "ref@digest", or the code_version
    checks: tuple[str, ...] = ()  # each check's line without its "check " prefix

    def render(self) -> str:
        return "".join([f"{self.kind}:{self.text}", *(CHECK_LINE + c for c in self.checks)])

    @property
    def ref(self) -> str:
        """A callable's "module:function" (python kind)."""
        return self.text.rpartition("@")[0]

    @classmethod
    def parse(cls, code: str) -> CodePart | None:
        """The part `render` wrote; None for anything else (a record without code)."""
        own, _, checks = code.partition(CHECK_LINE)
        kind, sep, text = own.partition(":")
        for k in CODE_KINDS:
            if sep and kind == k:
                return cls(k, text, tuple(checks.split(CHECK_LINE)) if checks else ())
        return None


@dataclass(frozen=True)
class Trace:
    """What one fingerprint covers; stored with each record so a change can be named."""

    code: str  # CodePart.render(): kept as the string the fingerprint and the lock hold
    params: dict[str, Any]
    deps: dict[str, str | None]
    env: dict[str, str | None]  # hashed values: secrets never reach the lock file
    # python: what `code` covers, by name (codehash.code_entries): "src.train:train",
    # "src.util:scale", "const src.train:EPOCHS" -> digests, "pkg numpy" -> its version
    code_files: dict[str, str | None] | None = None
    # A partition's item, as a 1-tuple (an item may be null); None for a plain target,
    # whose fingerprint is then what it always was.
    item: tuple[Any] | None = None

    @cached_property
    def fingerprint(self) -> str:
        parts = [self.code, canonical(self.params) if self.params else "{}"]
        for mapping in (self.deps, self.env):
            parts.append(str(len(mapping)))
            for k in sorted(mapping):
                parts.append(k)
                parts.append(mapping[k] or "-")
        if self.item is not None:
            parts += ["item", canonical(self.item[0])]
        return hash_strings(parts)

    @property
    def code_part(self) -> CodePart:
        part = CodePart.parse(self.code)
        assert part is not None, self.code
        return part

    def to_dict(self) -> dict[str, Any]:
        d = {"code": self.code, "params": self.params, "deps": self.deps, "env": self.env}
        if self.code_files:
            d["code_files"] = self.code_files
        if self.item is not None:
            d["item"] = self.item[0]
        return d


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def code_part(p: Pipeline, t: Target) -> tuple[CodePart, dict[str, str | None] | None]:
    """The code part of the fingerprint, and for callables the entries it covers; a
    target's checks are part of its code (a new or edited check reruns the target)."""
    kind, text, entries = _own_code(p, t)
    if not t.checks:
        return CodePart(kind, text), entries
    from .codehash import code_entries
    from .modules import resolve_callable

    checks = []
    entries = dict(entries or {})
    for i, c in enumerate(t.checks):
        if c.python is None:
            checks.append("cmd:" + (c.cmd or ""))
            continue
        path = resolve_callable(p.root, c.python, p.where("targets", t.name, "checks", i))
        sub = code_entries(p.root, c.python, path)
        checks.append(f"python:{c.python}@{_closure_digest(sub)}")
        entries.update({f"check {k}": v for k, v in sub.items()})
    return CodePart(kind, text, tuple(checks)), entries or None


def _closure_digest(entries: dict[str, str | None]) -> str:
    return hash_strings(f"{k}={v}" for k, v in sorted(entries.items()))


def _own_code(p: Pipeline, t: Target) -> tuple[CodeKind, str, dict[str, str | None] | None]:
    if t.code_version is not None:
        return "version", t.code_version, None
    if t.cmd_template is not None:
        return "cmd", t.cmd_template, None
    assert t.python is not None
    from .codehash import code_entries
    from .modules import resolve_callable

    path = resolve_callable(p.root, t.python, p.where("targets", t.name, "python"))
    entries = code_entries(p.root, t.python, path)
    return "python", f"{t.python}@{_closure_digest(entries)}", entries


# Script digests by byte digest, for this process; the stat cache keeps them across runs
# under a key no relative path can take ("/ast/<python>/<byte digest>").
_SCRIPT_MEMO: dict[str, str] = {}
_PY = f"{sys.version_info[0]}.{sys.version_info[1]}"


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
        digest = entry.digest
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
    code, files = code_part(p, t)
    return Trace(code.render(), params, deps, env, files, (t.item,) if t.template is not None else None)


def observe_outs(t: Target, hasher: Hasher) -> dict[str, str | None]:
    return {o: hasher.digest(o) for o in t.outs}
