"""`params_schema:` (SPEC §9): a JSON Schema for the effective params.

The schema is a file (JSON or YAML, relative to the project root) or an inline mapping.
Its `default`s fill params that are missing, nested objects included; then the effective
params (`params`, `params_files`, `-S`, defaults) are validated with jsonschema and every
violation is listed with its param path. jsonschema is imported only to validate, which
the loader does only when the params or the schema changed since the last load.
"""
from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..digests import hash_bytes
from ..errors import PipelineError, WhereLike
from .paths import normalize

MAX_DEPTH = 32  # how deep `$ref`s are followed when filling defaults


@dataclass
class SchemaSource:
    """Where the schema comes from and a digest of it; parsed only when `load()` is called."""

    label: str  # "params schema schema/params.json" or "the inline params_schema"
    digest: str
    _data: bytes | None
    _inline: Any
    where: WhereLike
    path: str | None = None  # relative to the root, for a file
    _parsed: Any = None

    def load(self) -> dict[str, Any]:
        if self._parsed is None:
            if self._data is None:
                self._parsed = self._inline
            else:
                self._parsed = _parse(self._data, self.path or "", self.label, self.where)
            if not isinstance(self._parsed, dict):
                raise PipelineError(
                    f"{self.label} must be a JSON Schema object (a mapping), "
                    f"not {type(self._parsed).__name__}", self.where)
        return self._parsed


def schema_source(value: Any, root: str, where: WhereLike) -> SchemaSource | None:
    """The `params_schema` value of the pipeline file: a path or an inline mapping."""
    if value is None:
        return None
    if isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, default=str)
        return SchemaSource("the inline params_schema", hash_bytes(text.encode()), None, value, where)
    norm = normalize(value, root, "params schema", where)
    try:
        with open(os.path.join(root, norm), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise PipelineError(f"params schema '{norm}' does not exist", where) from None
    except IsADirectoryError:
        raise PipelineError(f"params schema '{norm}' is a folder, not a file", where) from None
    except OSError as exc:
        raise PipelineError(f"params schema '{norm}' cannot be read: {exc.strerror}", where) from None
    if os.path.splitext(norm)[1].lower() not in (".json", ".yaml", ".yml"):
        raise PipelineError(f"params schema '{norm}' must end in .json, .yaml or .yml", where)
    return SchemaSource(f"params schema {norm}", hash_bytes(data), data, None, where, norm)


def _parse(data: bytes, path: str, label: str, where: WhereLike) -> Any:
    if path.lower().endswith(".json"):
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PipelineError(f"{label} is not valid JSON: {exc}", where) from None
    from .yamlread import parse_yaml

    value, _ = parse_yaml(data, path, want_marks=False)
    return value


# -- defaults --------------------------------------------------------------------------


def _deref(schema: Any, root: dict[str, Any], depth: int = 0) -> Any:
    """Follow a local `$ref` ("#/$defs/x", "#/definitions/x", "#"); others are left as is."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and depth < MAX_DEPTH:
        ref = schema["$ref"]
        if not ref.startswith("#"):
            return schema
        node: Any = root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return schema
        schema, depth = node, depth + 1
    return schema


def _property_schemas(schema: Any, root: dict[str, Any], depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(name, subschema) of every property an object schema declares, `allOf` included."""
    schema = _deref(schema, root)
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return
    props = schema.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            yield name, _deref(sub, root)
    for sub in schema.get("allOf") or ():
        yield from _property_schemas(sub, root, depth + 1)


def apply_defaults(params: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`params` with the schema's `default`s filled in where a key is missing, nested
    objects included (a missing object whose properties have defaults is created)."""
    return _fill(params, schema, schema, 0)


def _fill(instance: dict[str, Any], schema: Any, root: dict[str, Any], depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        return instance
    out = dict(instance)
    for name, sub in _property_schemas(schema, root):
        if not isinstance(sub, dict):
            continue
        if name not in out:
            if "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            else:
                filled = _fill({}, sub, root, depth + 1)
                if filled:
                    out[name] = filled
                continue
        if isinstance(out[name], dict):
            out[name] = _fill(out[name], sub, root, depth + 1)
    return out


def declared_paths(schema: dict[str, Any]) -> list[tuple[str, ...]]:
    """Every key path the schema declares (("train",), ("train", "lr")): `-S` may set them."""
    out: list[tuple[str, ...]] = []

    def walk(s: Any, prefix: tuple[str, ...], depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        for name, sub in _property_schemas(s, schema):
            path = prefix + (name,)
            if path not in out:
                out.append(path)
            walk(sub, path, depth + 1)

    walk(schema, (), 0)
    return out


def declared_keys(schema: dict[str, Any]) -> list[str]:
    """The dotted spelling of `declared_paths` (`train`, `train.lr`)."""
    return [".".join(p) for p in declared_paths(schema)]


# -- validation ------------------------------------------------------------------------


def param_path(path) -> str:
    """`train.lr`, `layers[2]`: the same spelling the pipeline file's errors use."""
    from .validate import dotted

    return dotted(path)


def _line(err) -> tuple[str, str]:
    """(param path, message) of one violation."""
    path = list(err.absolute_path)
    message = err.message
    if err.validator == "required" and isinstance(err.instance, dict):
        missing = next((k for k in err.validator_value or () if k not in err.instance and repr(k) in message), None)
        if missing is not None:
            return param_path(path + [missing]), "is required but missing"
    return param_path(path), message


def validate_params(params: dict[str, Any], source: SchemaSource) -> None:
    """Raise one PipelineError listing every violation (`train.lr: -1 is less than the
    minimum of 0`), sorted by param path."""
    from jsonschema import exceptions, validators

    schema = source.load()
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        at = param_path(exc.absolute_path)
        raise PipelineError(f"{source.label} is not a valid JSON Schema: {exc.message}"
                            f"{'' if at == '(top level)' else f' (at {at})'}", source.where) from None
    try:
        errors = list(cls(schema).iter_errors(params))
    except Exception as exc:  # an unresolvable $ref and the like (referencing's errors)
        raise PipelineError(f"{source.label} cannot be used: {exc}", source.where) from None
    if not errors:
        return
    lines = sorted({_line(e) for e in errors}, key=lambda x: (x[0], x[1]))
    n = len(lines)
    head = f"the params do not match {source.label} ({n} problem{'s' if n > 1 else ''}):"
    raise PipelineError(head + "".join(f"\n  {p}: {m}" for p, m in lines))


def effective_params(
    params: dict[str, Any],
    overrides: dict[str, Any],
    source: SchemaSource | None,
    apply_overrides: Callable[..., dict[str, Any]],
) -> dict[str, Any]:
    """Defaults, then `-S` (which may name any key the schema declares), then defaults
    again (an override may replace a subtree), then validation. A default must be a JSON
    value like any param (the other sources are checked as they are read)."""
    if source is None:
        return apply_overrides(params, overrides)
    from .jsonvalues import plain

    schema = source.load()
    params = plain(apply_defaults(params, schema), f"a default in {source.label}", source.where)
    params = apply_overrides(params, overrides, declared_paths(schema) if overrides else ())
    params = plain(apply_defaults(params, schema), f"a default in {source.label}", source.where)
    validate_params(params, source)
    return params
