"""JSON Schema validation of the raw document, with errors placed at file:line:column."""
from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ..errors import PipelineError, Where

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "pipeline.schema.json")
MAX_SHOWN = 6


@lru_cache(maxsize=1)
def schema_bytes() -> bytes:
    with open(SCHEMA_PATH, "rb") as f:
        return f.read()


def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_bytes()))


def dotted(path) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "(top level)"


def _describe(err) -> tuple[tuple, str, bool]:
    """(path to point at, message, point at the key rather than the value)."""
    path = tuple(err.absolute_path)
    v = err.validator
    schema = err.schema if isinstance(err.schema, dict) else {}
    if v == "additionalProperties" and isinstance(err.instance, dict):
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in allowed)
        key = extra[0] if extra else ""
        hint = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.5)
        where_text = f"in {dotted(path)}" if path else "at the top level"
        msg = f"unknown field '{key}' {where_text}"
        msg += f" (did you mean '{hint[0]}'?)" if hint else f" (allowed: {', '.join(sorted(allowed))})"
        return path + (key,), msg, True
    if v == "required":
        return path, f"{dotted(path)}: {err.message.replace(' is a required property', '')} is required", False
    if v == "type":
        expected = schema.get("type")
        exp = " or ".join(expected) if isinstance(expected, list) else str(expected)
        exp = {"array": "a list", "object": "a mapping", "string": "a string"}.get(exp, exp)
        got = type(err.instance).__name__
        got = {"list": "a list", "dict": "a mapping", "str": "a string", "NoneType": "empty"}.get(got, got)
        return path, f"{dotted(path)} must be {exp}, not {got}", False
    if (v == "oneOf" and path and path[-2:-1] == ("deps",)) or (len(path) >= 2 and path[-2] == "deps"):
        return path, f"{dotted(path)} must be a path or {{path: P, hash: bytes}}", False
    if v == "pattern" and len(path) >= 1 and path[-1] == "python":
        return path, f"{dotted(path)} must be 'module:function' (e.g. src.train:train), not {err.instance!r}", False
    if v == "propertyNames" or (v == "pattern" and path and path[0] == "targets" and len(path) == 1):
        return path, f"invalid target name {err.instance!r}: use letters, digits, '_', '.', '-'", True
    if v == "minProperties" and path == ("targets",):
        return path, "targets: declare at least one target", False
    if v == "const" and path == ("version",):
        return path, f"version must be 1, not {err.instance!r}", False
    return path, f"{dotted(path)}: {err.message}", False


def validate_document(doc: Any, locate: Callable[[tuple, bool], Where]) -> None:
    """Raise one PipelineError listing every schema violation with its place."""
    if not isinstance(doc, dict):
        raise PipelineError("the pipeline file must be a mapping with a 'targets' key", locate((), False))
    errors = sorted(_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    lines = []
    for err in errors[:MAX_SHOWN]:
        path, msg, at_key = _describe(err)
        lines.append(f"{locate(path, at_key)}: {msg}")
    more = len(errors) - MAX_SHOWN
    if more > 0:
        lines.append(f"… and {more} more")
    if len(lines) == 1:
        raise PipelineError(lines[0])
    raise PipelineError("the pipeline file is invalid:\n  " + "\n  ".join(lines))
