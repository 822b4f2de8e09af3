"""`foreach` (SPEC §10): one partition `NAME[KEY]` per item, each a target of its own.

The items come from a param holding a list or a mapping (`foreach: ${grid.seeds}`), an
inline list or mapping, or a glob of files (`foreach: out/shards/*.csv`). Param and inline
items are known when the pipeline is loaded, so their partitions are made then; a glob's
are made from the files on disk when they are needed (`expand_glob`), which for a glob
over another target's outs is once that target is done, during the run. Until then the
foreach target stands in the graph as a placeholder: it depends on the glob (so on the
target whose outs it reads) and holds the folders its partitions write into (so a fan-in
over them waits for it).

In a partition, `${item}` is the item (a glob's: the file's path), `${item.name}`,
`${item.stem}`, `${item.suffix}` and `${item.parent}` a path's parts, `${item.K}` a field of
a mapping item, and `${key}` the KEY: the path for a glob, the mapping's key, a list
item's scalar rendering (its index when it is not a scalar).
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import Any

from ..errors import PipelineError, WhereLike
from .interpolate import render_value
from .paths import is_glob

_PLACE = re.compile(r"\$\{\s*(item(?:\.[^}\s]+)?|key)\s*\}")
_WHOLE_PARAM = re.compile(r"^\$\{\s*([^}]+?)\s*\}$")


def is_param_ref(foreach: Any) -> str | None:
    """The param key when `foreach` is one whole `${a.b}`, else None."""
    if isinstance(foreach, str):
        m = _WHOLE_PARAM.match(foreach.strip())
        if m and not m.group(1).startswith(("item", "key")):
            return m.group(1)
    return None


def items_of(value: Any, name: str, where: WhereLike) -> list[tuple[str, Any]]:
    """(KEY, item) for a list or a mapping; duplicate KEYs are an error."""
    if isinstance(value, dict):
        pairs = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        pairs = [(render_value(v) if _scalar(v) else str(i), v) for i, v in enumerate(value)]
    else:
        raise PipelineError(f"target '{name}': foreach must be a list, a mapping or a glob, "
                            f"not {render_value(value)!r}", where)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise PipelineError(f"target '{name}': foreach has the item '{key}' twice; items must be distinct",
                                where)
        seen.add(key)
    return pairs


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def item_vars(key: str, item: Any, is_path: bool) -> dict[str, Any]:
    """What `${item…}` and `${key}` stand for in one partition."""
    out: dict[str, Any] = {"item": item, "key": key}
    if is_path:
        base = posixpath.basename(item)
        stem, dot, suffix = base.rpartition(".")
        out.update({"item.name": base, "item.stem": stem if dot and stem else base,
                    "item.suffix": "." + suffix if dot and stem else "", "item.parent": posixpath.dirname(item)})
    elif isinstance(item, dict):
        _flatten(item, "item", out)
    return out


def _flatten(value: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in value.items():
        out[f"{prefix}.{k}"] = v
        if isinstance(v, dict):
            _flatten(v, f"{prefix}.{k}", out)


def fill(text: str, vars_: dict[str, Any] | None, name: str, where: WhereLike) -> str:
    """`${item…}`/`${key}` in a path, a param name or a description, as plain text."""
    if not vars_ or "${" not in text:
        return text

    def sub(m: re.Match[str]) -> str:
        ref = m.group(1)
        if ref not in vars_:
            raise PipelineError(f"target '{name}': '${{{ref}}}': the item has no such part", where)
        return render_value(vars_[ref])

    return _PLACE.sub(sub, text)


def mentions_item(text: str) -> bool:
    return bool(_PLACE.search(text))


def static_folder(path: str) -> str | None:
    """The folder an out pattern writes into before its first `${…}`: `out/clean/` for
    `out/clean/${item.stem}.parquet`; None when the pattern starts with one."""
    head = path.split("${", 1)[0]
    folder = head.rpartition("/")[0]
    return folder + "/" if folder else None


def glob_keys(paths: list[str]) -> list[tuple[str, Any]]:
    """(KEY, item) for the files a glob matched: both the path."""
    return [(p, p) for p in paths]


def partition_name(name: str, key: str) -> str:
    return f"{name}[{key}]"


def template_of(target_name: str) -> str | None:
    """`clean` for `clean[out/shards/a.csv]`; None for a plain target name."""
    if target_name.endswith("]") and "[" in target_name:
        return target_name.split("[", 1)[0]
    return None


def check_glob(pattern: str, name: str, where: WhereLike) -> None:
    if not is_glob(pattern):
        return
    if mentions_item(pattern):
        raise PipelineError(f"target '{name}': foreach cannot use ${{item}} or ${{key}} itself", where)


ExpandFn = Callable[[str, list[str]], dict[str, Any]]
