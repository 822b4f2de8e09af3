"""Effective params: inline `params`, then `params_files` in order, then `-S` overrides."""
from __future__ import annotations

import copy
import difflib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import PipelineError, UsageError, Where, WhereLike

MISSING = object()


class AmbiguousParam(PipelineError):
    """A dotted key names both a key spelled with a dot and a nested key (exit 2)."""


def resolve(params: dict[str, Any], key: str) -> tuple[str, ...] | None:
    """The keys `key` names, level by level: at each level a key spelled exactly as the rest
    of the path (dots included, `a.b`) or as its next segments, then on below; None when
    nothing matches; AmbiguousParam when two paths match (`a.b` and `a` → `b`)."""
    if "." not in key:
        return (key,) if key in params else None
    parts = key.split(".")
    found: list[tuple[str, ...]] = []

    def walk(node: Any, i: int, path: tuple[str, ...]) -> None:
        if i == len(parts):
            found.append(path)
            return
        if not isinstance(node, dict):
            return
        for j in range(len(parts), i, -1):
            k = ".".join(parts[i:j])
            if k in node and len(found) < 2:
                walk(node[k], j, path + (k,))

    walk(params, 0, ())
    if len(found) > 1:
        a, b = (" → ".join(f"'{k}'" for k in p) for p in found[:2])
        raise AmbiguousParam(f"param '{key}' is ambiguous: it names both {a} and {b}; rename one of them")
    return found[0] if found else None


def lookup(params: dict[str, Any], key: str) -> Any:
    """The value at dotted `key` (see `resolve`), or MISSING."""
    path = resolve(params, key)
    if path is None:
        return MISSING
    node: Any = params
    for part in path:
        node = node[part]
    return node


def known_keys(params: dict[str, Any], prefix: str = "") -> list[str]:
    """Every key path, subtrees included (`train`, `train.lr`)."""
    out: list[str] = []
    for k, v in params.items():
        path = f"{prefix}{k}"
        out.append(path)
        if isinstance(v, dict):
            out.extend(known_keys(v, path + "."))
    return out


def closest(key: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean X?)' hint, or '' when nothing is close."""
    cands = list(candidates)
    match = difflib.get_close_matches(key, cands, n=1, cutoff=0.5)
    if match:
        return f" (did you mean '{match[0]}'?)"
    if cands:
        shown = ", ".join(sorted(cands)[:8])
        return f" (known: {shown}{', …' if len(cands) > 8 else ''})"
    return " (no params are declared)"


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def read_params_file(path: str, shown: str, where: WhereLike, kind: str = "params file") -> dict[str, Any]:
    """A YAML, JSON or TOML file holding a mapping of params."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise PipelineError(f"{kind} '{shown}' does not exist", where) from None
    except OSError as exc:
        raise PipelineError(f"{kind} '{shown}' cannot be read: {exc.strerror}", where) from None
    ext = os.path.splitext(path)[1].lower()
    if ext in (".yaml", ".yml"):
        from .yamlread import parse_yaml

        value, _ = parse_yaml(data, shown, want_marks=False)
    elif ext == ".json":
        try:
            value = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PipelineError(f"{kind} is not valid JSON: {exc}", Where(shown)) from None
    elif ext == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:
            import tomli as tomllib
        try:
            value = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PipelineError(f"{kind} is not valid TOML: {exc}", Where(shown)) from None
    else:
        raise PipelineError(
            f"{kind} '{shown}' must end in .yaml, .yml, .json or .toml", where
        )
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PipelineError(f"{kind} must hold a mapping, not {type(value).__name__}", Where(shown))
    return value


_COMMENT = re.compile(r"[ \t]#")


def parse_override_value(text: str) -> Any:
    """A `-S` value, read as the value of a key in a YAML file: a 1.2 core-schema scalar
    (`1e-3` a number, only true/false booleans), or a quoted or flow value; a `#` after a
    blank starts a comment (`-S "a=1 # why"` sets 1, `-S a=x#y` the string `x#y`)."""
    from .yamlread import core_scalar, parse_yaml

    stripped = text.strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes of another encoding on the command line
        raise UsageError(f"-S value {text!r} is not UTF-8 text") from None
    if stripped[:1] in ("[", "{", "'", '"'):
        try:
            value, _ = parse_yaml(stripped.encode(), "-S", want_marks=False)
        except PipelineError as exc:
            raise UsageError(f"-S value {text!r} is not valid YAML: {exc.message}") from None
        return value
    comment = _COMMENT.search(text)
    return core_scalar((text[:comment.start()] if comment else text).strip())


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-S takes KEY=VALUE (e.g. -S train.lr=0.1), got {pair!r}")
        out[key] = parse_override_value(value)
    return out


def overrides_from(set_: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """`-S` overrides as the API takes them: "key=value" strings, or a mapping of values."""
    if not set_:
        return {}
    if isinstance(set_, Mapping):
        return dict(set_)
    return parse_overrides(list(set_))


def apply_overrides(
    params: dict[str, Any], overrides: dict[str, Any], declared: Iterable[tuple[str, ...] | str] = ()
) -> dict[str, Any]:
    """Set each dotted key; a key not already known is an error naming the closest one.

    `declared`: paths (or dotted keys) of further keys that may be set though no param holds
    them yet (those a params schema declares); the mappings above them are created as needed."""
    if not overrides:
        return params
    result = copy.deepcopy(params)
    spelled: dict[str, list[tuple[str, ...]]] = {}
    for d in declared:
        parts = tuple(d.split(".")) if isinstance(d, str) else tuple(d)
        spelled.setdefault(".".join(parts), []).append(parts)
    for key, value in overrides.items():
        try:
            path = resolve(params, key)
        except AmbiguousParam as exc:
            raise UsageError(f"-S {key}: {exc.message}") from None
        if path is None:
            paths = spelled.get(key, [])
            if not paths:
                keys = known_keys(params)
                raise UsageError(f"-S {key}: unknown param{closest(key, keys + sorted(set(spelled) - set(keys)))}")
            if len(paths) > 1:
                a, b = (" → ".join(f"'{k}'" for k in p) for p in paths[:2])
                raise UsageError(f"-S {key}: the params schema declares both {a} and {b}; rename one of them")
            path = paths[0]
        node = result
        for i, part in enumerate(path[:-1]):
            if part not in node:
                node[part] = {}
            elif not isinstance(node[part], dict):
                raise UsageError(f"-S {key}: param {'.'.join(path[: i + 1])} is not a mapping")
            node = node[part]
        node[path[-1]] = value
    return result
