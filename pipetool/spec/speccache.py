"""`.pipetool/spec.cache`: the validated pipeline kept between commands, as plain JSON.

JSON cannot run code when read, whoever wrote the file. The key (format, pipetool
version, the model's field names, the pipeline schema, the pipeline file's bytes and its
identity on this machine: device, inode and ctime) is checked before anything else in the
file is used; the identity makes a cache planted beside a checked-out pipeline file (its
ctime is when it was checked out here) never match. The frozen model is rebuilt from the
plain data by the dataclasses' type hints; only the classes in `_CLASSES` are rebuilt,
and a derived value of any other type is simply not kept. Best effort throughout: an
unreadable, foreign or malformed cache is ignored and rewritten.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import types
import typing
from collections.abc import Callable
from typing import Any

from .. import __version__
from ..digests import hash_bytes, hash_strings
from .model import Check, Dep, Target

FORMAT = "json-1"  # bump when what the cache files hold changes


@functools.cache
def _classes() -> dict[str, type]:
    from ..graph import Graph

    return {c.__name__: c for c in (Target, Dep, Check, Graph)}


def cache_key(data: bytes, root: str, ident: tuple[int, int, int], schema: bytes) -> str:
    shape = ",".join(f.name for f in dataclasses.fields(Target))
    parts = [FORMAT, __version__, shape, root, ":".join(map(str, ident)), hash_bytes(schema), hash_bytes(data)]
    return hash_strings(parts)


# -- plain data <-> the model --------------------------------------------------------------

class _Bad(ValueError):
    """The cache holds something its key promised it would not."""


def encode(value: Any) -> Any:
    """Dataclasses as lists of their fields, tuples as lists; mapping keys must be strings."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if _classes().get(type(value).__name__) is not type(value):
            raise _Bad(f"{type(value).__name__} is not kept in the spec cache")
        return [encode(getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _Bad("a mapping with keys that are not strings")
        return {k: encode(v) for k, v in value.items()}
    raise _Bad(f"a {type(value).__name__}")


def _as_read(v: Any) -> Any:
    return v


def decoder(hint: Any) -> Callable[[Any], Any]:
    """A function rebuilding a value of type `hint` from what `encode` wrote."""
    return _rebuild(hint) or _as_read


@functools.cache
def _rebuild(hint: Any) -> Callable[[Any], Any] | None:
    """What turns plain data back into `hint`: None where JSON's own value is it (scalars,
    `Any`). Only containers and dataclasses are rebuilt; scalars are taken as written, the
    key having been checked first (a file that does not fit raises, and is ignored)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in (str, int, bool, Any, type(None)):
        return None
    if hint is float:
        return float
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"cannot rebuild {hint}")
        if _rebuild(inner[0]) is None:
            return None
        dec = decoder(inner[0])
        return lambda v: None if v is None else dec(v)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if _rebuild(args[0]) is None:
            return tuple
        item = decoder(args[0])
        return lambda v: tuple([item(x) for x in v])
    if origin is tuple:
        decs = [decoder(a) for a in args]
        return lambda v: tuple([d(x) for d, x in zip(decs, v, strict=True)])
    if origin is list:
        if _rebuild(args[0]) is None:
            return _list
        item = decoder(args[0])
        return lambda v: [item(x) for x in _list(v)]
    if origin is dict and args[0] is str:
        if _rebuild(args[1]) is None:
            return _dict
        val = decoder(args[1])
        return lambda v: {k: val(x) for k, x in _dict(v).items()}
    if isinstance(hint, type) and _classes().get(hint.__name__) is hint:
        return _dataclass(hint)
    raise TypeError(f"cannot rebuild {hint}")


def _dataclass(cls: type) -> Callable[[Any], Any]:
    """As pickle does it: a bare instance given its fields' values as its __dict__ (a frozen
    dataclass's __init__ costs a call per field; a 1000-target no-op loads 1000 of them)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    convert = [(i, d) for i, f in enumerate(dataclasses.fields(cls)) if (d := _rebuild(hints[f.name])) is not None]
    if hasattr(cls, "__slots__") or hasattr(cls, "__post_init__"):
        raise TypeError(f"cannot rebuild {cls.__name__}")
    new, setattr_ = object.__new__, object.__setattr__

    def build(v: Any) -> Any:
        if type(v) is not list or len(v) != len(names):
            raise _Bad(f"not the {len(names)} fields of a {cls.__name__}")
        for i, d in convert:
            v[i] = d(v[i])
        obj: Any = new(cls)
        setattr_(obj, "__dict__", dict(zip(names, v)))
        return obj
    return build


def _list(v: Any) -> list:
    if type(v) is not list:
        raise _Bad("not a list")
    return v


def _dict(v: Any) -> dict:
    if type(v) is not dict:
        raise _Bad("not a mapping")
    return v


def _decode_derived(saved: Any) -> dict[str, Any]:
    """{name: [class name, fields]} -> {name: value}; an entry that does not rebuild is dropped."""
    out: dict[str, Any] = {}
    for name, (cls_name, data) in _dict(saved).items():
        cls = _classes().get(cls_name)
        if cls is not None:
            try:
                out[name] = decoder(cls)(data)
            except (_Bad, TypeError, ValueError, AttributeError):
                pass
    return out


# -- the files -------------------------------------------------------------------------------

@dataclasses.dataclass
class SpecCache:
    """The validated file's top level, keyed by `key`; the effective params and the targets
    built from them, keyed by `model_key` (the params before overrides, the overrides and the
    params schema's digest); things derived from the targets (the graph); and the whole
    document (needed only to build targets anew) in a second file. A no-op skips YAML, both
    schemas and path checks alike."""

    path: str
    key: str = ""
    head: dict[str, Any] | None = None  # the document without its targets
    model_key: str = ""
    targets: dict[str, Target] | None = None
    derived: dict[str, Any] | None = None
    params: dict[str, Any] | None = None  # the effective params (schema defaults in, validated)
    # The partitions of foreach globs made so far: foreach target -> item -> partition. A
    # partition is a function of the model and its item, so a status over 10,000 files
    # makes only the partitions of files it has not seen before.
    partitions: dict[str, dict[str, Target]] | None = None

    def read(self, key: str) -> None:
        """Take what the main file holds if it was written under `key`; else start empty."""
        self.key = key
        saved = _read_json(self.path)
        if not isinstance(saved, dict) or saved.get("key") != key:
            return
        try:
            head, params = _dict(saved["head"]), saved["params"]
            targets = None
            if params is not None:
                dec = decoder(Target)
                targets = {t.name: t for t in (dec(x) for x in _list(saved["targets"]))}
                params = _dict(params)
            derived = _decode_derived(saved["derived"]) if targets is not None else None
            partitions = None
            if targets is not None and isinstance(saved.get("partitions"), dict):
                dec = decoder(Target)
                partitions = {tpl: {k: dec(x) for k, x in _dict(parts).items()}
                              for tpl, parts in _dict(saved["partitions"]).items()}
        except (_Bad, KeyError, TypeError, ValueError, AttributeError):
            return
        self.head, self.model_key, self.targets, self.params, self.derived, self.partitions = (
            head, str(saved.get("model_key", "")), targets, params, derived, partitions)

    def read_doc(self) -> dict | None:
        saved = _read_json(self.path + ".doc")
        if isinstance(saved, dict) and saved.get("key") == self.key and isinstance(saved.get("doc"), dict):
            return saved["doc"]
        return None

    def write(self, doc: dict | None = None) -> None:
        if doc is not None:
            _write_json(self.path + ".doc", {"key": self.key, "doc": doc})
        derived = {}
        for name, value in (self.derived or {}).items():
            try:
                derived[name] = [type(value).__name__, encode(value)]
            except _Bad:
                pass  # not kept: built again by the next command that needs it
        try:
            targets = [encode(t) for t in (self.targets or {}).values()]
            partitions = {tpl: {k: encode(t) for k, t in parts.items()}
                          for tpl, parts in (self.partitions or {}).items()}
        except _Bad:
            return
        _write_json(self.path, {"key": self.key, "head": self.head, "model_key": self.model_key,
                                "targets": targets, "params": self.params, "derived": derived,
                                "partitions": partitions})


def _read_json(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return None


def _write_json(path: str, value: Any) -> None:
    """Atomic and best effort: a read-only project or a full disk only loses the shortcut."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
