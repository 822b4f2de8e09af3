"""YAML text -> plain Python values plus the line/column of every key and value.

Scalars resolve by the YAML 1.2 core schema (only true/false are booleans, `1e-3` is a
number), duplicate keys are errors, and what aliases and nesting can expand to is bounded.
"""
from __future__ import annotations

import functools
import math
import re
from typing import Any

from ..errors import PipelineError, Where

MAX_DEPTH = 64
MAX_NODES = 200_000

_INT10 = re.compile(r"[-+]?[0-9]+\Z")
_INT8 = re.compile(r"0o[0-7]+\Z")
_INT16 = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(nan|NaN|NAN)\Z")

_STD = "tag:yaml.org,2002:"


def core_scalar(text: str) -> Any:
    """Resolve a plain scalar by the YAML 1.2 core schema."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT10.match(text):
        return int(text)
    if _INT8.match(text):
        return int(text, 0)
    if _INT16.match(text):
        return int(text, 0)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN.match(text):
        return math.nan
    return text


_PLAIN = "!pipetool/plain"


@functools.cache
def _loader() -> Any:
    """A safe loader whose only implicit resolution tags every plain scalar `_PLAIN`:
    we resolve plain scalars by the 1.2 core schema ourselves, and a written `!!str`
    keeps its tag (anchors and odd line endings included). Made once per process."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader: Any = type("PlainLoader", (base,), {"yaml_implicit_resolvers": {}})
    loader.add_implicit_resolver(_PLAIN, re.compile(r".*", re.DOTALL), None)
    return loader


Marks = dict  # path tuple -> (Where of the key or None, Where of the value)


def parse_yaml(data: bytes, filename: str, want_marks: bool = True) -> tuple[Any, Marks]:
    """Parse one YAML document; errors name the file, line and column."""
    import yaml

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PipelineError(f"not UTF-8 text (byte {exc.start}): {exc.reason}", Where(filename)) from None
    try:
        node = yaml.compose(text, Loader=_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Where(filename, mark.line + 1, mark.column + 1) if mark else Where(filename)
        problem = exc.problem or exc.context or "malformed YAML"
        raise PipelineError(f"malformed YAML: {problem}", where) from None
    except yaml.YAMLError as exc:
        raise PipelineError(f"malformed YAML: {exc}", Where(filename)) from None
    marks: Marks = {}
    if node is None:
        return None, marks
    budget = [MAX_NODES]
    value = _convert(node, (), filename, marks if want_marks else None, 0, budget, None)
    return value, marks


def _where(filename: str, node) -> Where:
    m = node.start_mark
    return Where(filename, m.line + 1, m.column + 1)


def _convert(node, path: tuple, filename: str, marks, depth: int, budget: list, keynode) -> Any:
    import yaml

    budget[0] -= 1
    if budget[0] < 0:
        raise PipelineError(
            f"document expands to more than {MAX_NODES} nodes (aliases?)", _where(filename, node)
        )
    if depth > MAX_DEPTH:
        raise PipelineError(f"nesting deeper than {MAX_DEPTH} levels", _where(filename, node))
    if marks is not None:
        marks[path] = (_where(filename, keynode) if keynode is not None else None, _where(filename, node))
    if isinstance(node, yaml.ScalarNode):
        tag = node.tag
        if tag == _PLAIN:
            return core_scalar(node.value)
        if tag in (_STD + "str", "!"):
            return node.value
        if tag in (_STD + "int", _STD + "float", _STD + "bool", _STD + "null"):
            return core_scalar(node.value)
        raise PipelineError(f"unsupported YAML tag {tag}", _where(filename, node))
    if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) and node.tag not in (_STD + "seq", _STD + "map"):
        raise PipelineError(f"unsupported YAML tag {node.tag}", _where(filename, node))
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(child, path + (i,), filename, marks, depth + 1, budget, None)
            for i, child in enumerate(node.value)
        ]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            if knode.tag == _PLAIN and knode.value == "<<":
                raise PipelineError("YAML merge keys (<<) are not supported", _where(filename, knode))
            if not isinstance(knode, yaml.ScalarNode):
                raise PipelineError("mapping keys must be plain strings", _where(filename, knode))
            key = knode.value
            if key in out:
                raise PipelineError(f"duplicate key '{key}'", _where(filename, knode))
            out[key] = _convert(vnode, path + (key,), filename, marks, depth + 1, budget, knode)
        return out
    raise PipelineError("unsupported YAML node", _where(filename, node))


def locate(marks: Marks, filename: str, path: tuple, key: bool = False) -> Where:
    """The place of `path` (or of its nearest ancestor present in the file)."""
    p = tuple(path)
    while p not in marks and p:
        p = p[:-1]
    entry = marks.get(p)
    if entry is None:
        return Where(filename)
    kw, vw = entry
    return (kw or vw) if key else vw
