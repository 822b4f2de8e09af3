"""Checks made before anything runs, and the keyword arguments a callable is offered."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .errors import PipelineError
from .spec.model import Pipeline, Target

FIXED_ARGS = ("params", "deps", "outs", "ctx", "item", "key")  # item, key: partitions only


def callable_kwargs(p: Pipeline, t: Target) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Candidate keyword arguments: each declared param by its last key segment (and the
    leaves of declared subtrees), `params` (nested), `deps`, `outs`; ctx is added by the worker.
    """
    from .spec.params import lookup, resolve

    nested: dict[str, Any] = {}
    explicit: dict[str, list[Any]] = {}  # last segment of a declared key -> values
    leaf: dict[str, list[Any]] = {}  # leaf name inside a declared subtree -> values

    def leaves(value: dict[str, Any]) -> None:
        for k, v in value.items():
            if isinstance(v, dict):
                leaves(v)
            else:
                leaf.setdefault(k, []).append(v)

    for key in t.params:
        value = lookup(p.params, key)
        parts = list(resolve(p.params, key) or key.split("."))  # a key may be spelled `a.b` itself
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        explicit.setdefault(key.rpartition(".")[2], []).append(value)  # `opt.lr` offers `lr`
        if isinstance(value, dict):
            leaves(value)
    named: dict[str, Any] = {}
    ambiguous: set[str] = set()
    for source in (explicit, leaf):
        for name, values in source.items():
            if name in named or (source is leaf and name in explicit):
                continue
            if all(v == values[0] for v in values[1:]):
                named[name] = values[0]
            else:
                ambiguous.add(name)
    kwargs = dict(named)
    kwargs["params"] = nested
    kwargs["deps"] = [d.path.rstrip("/") for d in t.deps]
    kwargs["outs"] = [o.rstrip("/") for o in t.outs]
    if t.template is not None:  # a partition: its item and KEY (SPEC §10)
        kwargs["item"], kwargs["key"] = t.item, t.key
    return kwargs, tuple(sorted(ambiguous - set(FIXED_ARGS)))


def check_callables(p: Pipeline, selected: list[str]) -> None:
    """Every required parameter of a selected callable must be one we can pass."""
    from .fingerprint.modules import read_signature, resolve_callable

    for n in selected:
        t = p.targets[n]
        if t.python is None:
            continue
        where = p.where("targets", n, "python")
        sig = read_signature(resolve_callable(p.root, t.python, where), t.python, where)
        offered, ambiguous = callable_kwargs(p, t)
        for name in sig.required:
            if name in ambiguous:
                raise PipelineError(f"target '{n}': parameter '{name}' of {t.python} is ambiguous: "
                                    f"two declared params end in '{name}'; declare only one", where)
            if name not in offered and name != "ctx":
                raise PipelineError(
                    f"target '{n}': {t.python} requires parameter '{name}', which is neither the last "
                    f"segment of a declared param nor one of {', '.join(FIXED_ARGS)}", where)


def check_outs_inside(p: Pipeline, selected: list[str]) -> None:
    """Outs are deleted before their target runs: none may reach outside the root
    through a symlinked folder."""
    real_root = os.path.realpath(p.root)
    seen: dict[str, str] = {}
    for n in selected:
        for _i, out in enumerate(p.targets[n].outs):
            parent = os.path.dirname(out.rstrip("/"))
            if parent not in seen:
                seen[parent] = os.path.realpath(os.path.join(p.root, parent))
            real = seen[parent]
            if real != real_root and not real.startswith(real_root + os.sep):
                raise PipelineError(
                    f"target '{n}': out '{out}' lies outside the project root through a symlink "
                    f"(its folder resolves to {real})", p.where("targets", n, "outs"))


def check_resources(p: Pipeline, selected: list[str], capacity: Mapping[str, float]) -> None:
    """A target asking for more of a declared resource than the whole machine has could
    never start: refuse the run before anything runs, rather than wait forever."""
    from .execute.slots import too_big

    for n in selected:
        for name, asked, total in too_big(p.targets[n].resources, capacity):
            raise PipelineError(
                f"target '{n}' needs {name}={asked:g}, more than --resources declares in all "
                f"({name}={total:g}): it could never run", p.where("targets", n, "resources", name))
