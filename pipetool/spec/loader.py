"""Find, parse, validate and model a pipeline file; every error names file:line:column."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import partial
from typing import Any

from ..digests import hash_strings
from ..errors import PipelineError, UsageError, Where
from .interpolate import interpolate
from .jsonvalues import Locate, plain
from .model import Check, Dep, Pipeline, Target
from .params import (
    MISSING,
    AmbiguousParam,
    apply_overrides,
    closest,
    deep_merge,
    known_keys,
    lookup,
    read_params_file,
)
from .paramschema import effective_params, schema_source
from .partitions import (
    check_glob,
    fill,
    glob_keys,
    is_param_ref,
    item_vars,
    items_of,
    mentions_item,
    partition_name,
    static_folder,
)
from .paths import normalize
from .shellquote import Refused
from .speccache import SpecCache, cache_key

DEFAULT_FILE = "pipeline.yaml"
CACHE_NAME = "spec.cache"
FOREACH_KEY = "(foreach)"


def find_pipeline_file(file: str | None = None, cwd: str | None = None) -> str:
    """`-f FILE`, else pipeline.yaml in the current directory or above."""
    base = os.path.abspath(cwd or os.getcwd())
    if file:
        path = file if os.path.isabs(file) else os.path.join(base, file)
        if not os.path.isfile(path):
            raise UsageError(f"pipeline file {file} does not exist")
        return os.path.abspath(path)
    d = base
    while True:
        cand = os.path.join(d, DEFAULT_FILE)
        if os.path.isfile(cand):
            return cand
        parent = os.path.dirname(d)
        if parent == d:
            raise UsageError(f"no {DEFAULT_FILE} in {base} or any folder above it (use -f FILE or -C DIR)")
        d = parent


class _Locator:
    """Places in the pipeline file, parsed with marks only when an error needs one."""

    def __init__(self, data: bytes, shown: str, marks: dict | None = None):
        self._data, self._shown, self._marks = data, shown, marks

    def __call__(self, path: tuple, key: bool = False) -> Where:
        from .yamlread import locate, parse_yaml

        if self._marks is None:
            _, self._marks = parse_yaml(self._data, self._shown)
        return locate(self._marks, self._shown, path, key)


def _parse_document(data: bytes, shown: str) -> tuple[dict, _Locator]:
    from .validate import validate_document
    from .yamlread import parse_yaml

    doc, marks = parse_yaml(data, shown)
    locator = _Locator(data, shown, marks)
    validate_document(doc, locator)
    return doc, locator


def load(
    file: str | None = None,
    cwd: str | None = None,
    overrides: dict[str, Any] | None = None,
    base_params: dict[str, Any] | None = None,
) -> Pipeline:
    """Load and validate a pipeline; `overrides` are `-S` values keyed by dotted path.
    `base_params` (a recorded run's params, for `branch`) win over the file's own."""
    path = find_pipeline_file(file, cwd)
    root = os.path.dirname(path)
    shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    try:
        with open(path, "rb") as f:
            data = f.read()
            st = os.fstat(f.fileno())
    except OSError as exc:
        raise PipelineError(f"cannot read the pipeline file: {exc.strerror}", Where(shown)) from None
    from .validate import schema_bytes

    cache = SpecCache(os.path.join(root, ".pipetool", CACHE_NAME))
    cache.read(cache_key(data, root, (st.st_dev, st.st_ino, st.st_ctime_ns), schema_bytes()))
    doc: dict | None = None
    locate = _Locator(data, shown)
    if cache.head is None:
        doc, locate = _parse_document(data, shown)
        cache.head = {k: v for k, v in doc.items() if k != "targets"}
        # The foreach targets by name (a key no pipeline file can hold: the schema refuses it),
        # known even when their items are none.
        cache.head[FOREACH_KEY] = sorted(n for n, raw in doc["targets"].items() if "foreach" in raw)
        cache.model_key, cache.targets, cache.derived, cache.params = "", None, None, None

    params = _effective_params(cache.head, root, locate)
    if base_params is not None:
        params = deep_merge(params, plain(base_params, "the params of the run branched from"))
    overrides = {k: plain(v, "set by -S", path=(k,), error=UsageError) for k, v in (overrides or {}).items()}
    schema = schema_source(cache.head.get("params_schema"), root, lambda: locate(("params_schema",)))
    model_key = hash_strings([
        json.dumps(params, sort_keys=True, default=str),
        json.dumps(overrides, sort_keys=True, default=str),
        schema.digest if schema is not None else "",
    ])
    if cache.model_key == model_key and cache.targets is not None and cache.params is not None:
        targets, params = cache.targets, cache.params
    else:
        # Schema defaults, -S and validation: only when the params or the schema changed.
        params = effective_params(params, overrides, schema, apply_overrides)
        new_doc = doc is not None
        if doc is None:
            doc = cache.read_doc()
        if doc is None:
            doc, locate = _parse_document(data, shown)
            new_doc = True
        targets = _targets(doc, params, root, locate)
        cache.model_key, cache.targets, cache.derived, cache.params = model_key, targets, {}, params
        cache.partitions = {}
        cache.write(doc if new_doc else None)
    return Pipeline(
        root=root,
        file=path,
        targets=targets,
        params=params,
        overrides=overrides,
        order=tuple(targets),
        remote=cache.head.get("remote"),
        config_files=_config_files(cache.head, root),
        partitioned=tuple(cache.head.get(FOREACH_KEY) or ()),
        locate=locate,
        derive=lambda name, build: _derive(cache, name, build),
        partition_cache=cache,
    )


def _derive(cache: SpecCache, name: str, build):
    """`build()` once per model: kept in the spec cache beside the targets it came from."""
    if cache.derived is None:
        cache.derived = {}
    if name not in cache.derived:
        cache.derived[name] = build()
        cache.write()
    return cache.derived[name]


def _config_files(head: dict, root: str) -> tuple[str, ...]:
    """The files besides the pipeline file that the pipeline reads: params files and a
    params schema given as a path (all checked to be inside the root by now)."""
    files = [normalize(rel, root, "params file", None) for rel in head.get("params_files") or []]
    if isinstance(head.get("params_schema"), str):
        files.append(normalize(head["params_schema"], root, "params schema", None))
    return tuple(files)


def _effective_params(doc: dict, root: str, locate: _Locator) -> dict[str, Any]:
    """`params`, then each params file merged over them; every value a JSON value."""
    params: dict[str, Any] = plain(doc.get("params") or {}, "in the pipeline's params", Locate(locate))
    for i, rel in enumerate(doc.get("params_files") or []):
        where = partial(locate, ("params_files", i))
        norm = normalize(rel, root, "params file", where)
        values = read_params_file(os.path.join(root, norm), norm, where)
        params = deep_merge(params, plain(values, f"in params file {norm}", Where(norm)))
    return params


def _targets(doc: dict, params: dict, root: str, locate: _Locator) -> dict[str, Target]:
    """Every target of the document; a `foreach` target as its partitions (items from a
    param, or inline) or, for a glob, as the placeholder its partitions replace later."""
    targets: dict[str, Target] = {}
    for name, raw in doc["targets"].items():
        if "foreach" not in raw:
            targets[name] = _target(name, raw, params, root, locate)
            continue
        where = partial(locate, ("targets", name, "foreach"))
        spec = raw["foreach"]
        ref = is_param_ref(spec)
        if ref is not None:
            try:
                value = lookup(params, ref)
            except AmbiguousParam as exc:
                raise PipelineError(f"target '{name}': foreach names {exc.message}", where) from None
            if value is MISSING:
                raise PipelineError(f"target '{name}': foreach names unknown param '{ref}'"
                                    f"{closest(ref, known_keys(params))}", where)
            pairs = items_of(value, name, where)
        elif isinstance(spec, (list, dict)):
            pairs = items_of(spec, name, where)
        else:
            targets[name] = _placeholder(name, raw, params, root, locate)
            continue
        for key, item in pairs:
            part = partition_name(name, key)
            targets[part] = _target(part, raw, params, root, locate, item_vars(key, item, False),
                                    template=name, key=key, item=item, at=("targets", name))
    return targets


def _placeholder(name: str, raw: dict, params: dict, root: str, locate: _Locator) -> Target:
    """The stand-in of a foreach over a glob until its files are known: it depends on the
    glob and the deps that name no item, and holds the folders its partitions write into."""
    at = ("targets", name)
    where = partial(locate, (*at, "foreach"))
    check_glob(raw["foreach"], name, where)
    glob = normalize(raw["foreach"], root, f"target '{name}' foreach", where)
    _target(name, {k: v for k, v in raw.items() if k not in ("deps", "outs", "metrics", "params", "desc")},
            params, root, locate, item_vars(glob, glob, True), at=at)  # the command's own errors, now
    deps = [Dep(glob)]
    for i, d in enumerate(raw.get("deps") or []):
        p, mode = (d, "auto") if isinstance(d, str) else (d["path"], d.get("hash", "auto"))
        if not mentions_item(p):
            deps.append(Dep(normalize(p, root, f"target '{name}' dep", partial(locate, (*at, "deps", i))), mode))
    folders: list[str] = []
    for field in ("outs", "metrics"):
        for o in raw.get(field) or []:
            folder = static_folder(o) if mentions_item(o) else None
            if folder is not None:
                norm = normalize(folder, root, f"target '{name}' {field[:-1]}", partial(locate, (*at, field)))
                if norm not in folders:
                    folders.append(norm)
    return Target(name=name, cmd=None, python=None, deps=tuple(deps), outs=tuple(folders), metrics=(),
                  params=(), needs=tuple(raw.get("needs") or []), env=(), desc=raw.get("desc", ""),
                  foreach=glob, raw=raw)


def expand_glob(p: Pipeline, name: str, paths: list[str]) -> dict[str, Target]:
    """The partitions of the placeholder `name` for the files its glob matched; those made
    before under the same model come from the spec cache, and new ones are kept there."""
    t = p.targets[name]
    assert t.raw is not None and p.locate is not None
    cache = p.partition_cache
    known = cache.partitions.setdefault(name, {}) if isinstance(cache, SpecCache) and \
        cache.partitions is not None else {}
    out: dict[str, Target] = {}
    made = False
    for key, item in glob_keys(paths):
        part = known.get(key)
        if part is None:
            part = known[key] = _target(partition_name(name, key), t.raw, p.params, p.root, p.locate,
                                        item_vars(key, item, True), template=name, key=key, item=item,
                                        at=("targets", name))
            made = True
        out[part.name] = part
    if made and isinstance(cache, SpecCache):
        cache.write()
    return out


def _target(name: str, raw: dict, params: dict, root: str, locate: _Locator | Callable[..., Where],
            vars_: dict[str, Any] | None = None, *, template: str | None = None, key: str | None = None,
            item: Any = None, at: tuple | None = None) -> Target:
    at = at or ("targets", name)
    has_cmd, has_py = "cmd" in raw, "python" in raw
    if has_cmd == has_py:
        what = "both 'cmd' and 'python'" if has_cmd else "neither 'cmd' nor 'python'"
        raise PipelineError(f"target '{name}' has {what}; give exactly one", lambda: locate(at, True))

    declared: list[str] = []
    keys = None
    for i, spelled in enumerate(raw.get("params") or []):
        key_ = fill(spelled, vars_, name, partial(locate, (*at, "params", i)))
        try:
            value = lookup(params, key_)
        except AmbiguousParam as exc:
            where = partial(locate, (*at, "params", i))
            raise PipelineError(f"target '{name}' declares {exc.message}", where) from None
        if value is MISSING:
            keys = keys or known_keys(params)
            raise PipelineError(
                f"target '{name}' declares unknown param '{key_}'{closest(key_, keys)}",
                partial(locate, (*at, "params", i)),
            )
        if key_ not in declared:
            declared.append(key_)

    template_cmd = cmd = raw.get("cmd")
    if cmd is not None:
        cmd, used, unknown = _interpolate(cmd, params, f"target '{name}': cmd", partial(locate, (*at, "cmd")),
                                          vars_)
        if unknown:
            keys = known_keys(params)
            raise PipelineError(
                f"target '{name}': cmd uses unknown param '${{{unknown[0]}}}'{closest(unknown[0], keys)}",
                lambda: locate(at + ("cmd",)),
            )
        declared.extend(k for k in used if k not in declared)

    deps = []
    for i, d in enumerate(raw.get("deps") or []):
        p, mode = (d, "auto") if isinstance(d, str) else (d["path"], d.get("hash", "auto"))
        where = partial(locate, (*at, "deps", i))
        deps.append(Dep(normalize(fill(p, vars_, name, where), root, f"target '{name}' dep", where), mode))
    outs: list[str] = []
    metrics: list[str] = []
    for field in ("outs", "metrics"):
        for i, o in enumerate(raw.get(field) or []):
            where = partial(locate, (*at, field, i))
            norm = normalize(fill(o, vars_, name, where), root, f"target '{name}' {field[:-1]}", where)
            if norm not in outs:
                outs.append(norm)
            if field == "metrics":
                metrics.append(norm)
    code_version = raw.get("code_version")
    return Target(
        name=name,
        cmd=cmd,
        python=raw.get("python"),
        deps=tuple(deps),
        outs=tuple(outs),
        metrics=tuple(metrics),
        params=tuple(declared),
        needs=tuple(raw.get("needs") or []),
        env=tuple(raw.get("env") or []),
        always=bool(raw.get("always", False)),
        cache=bool(raw.get("cache", True)),
        desc=fill(raw.get("desc", ""), vars_, name, partial(locate, (*at, "desc"))),
        code_version=None if code_version is None else str(code_version),
        cmd_template=template_cmd,
        checks=tuple(_check(c, params, name, i, locate, vars_, at) for i, c in enumerate(raw.get("checks") or [])),
        resources=tuple(sorted((str(k), float(v)) for k, v in (raw.get("resources") or {}).items())),
        template=template,
        key=key,
        item=item,
    )


def _check(raw, params: dict, name: str, i: int, locate: _Locator | Callable[..., Where],
           vars_: dict[str, Any] | None = None, at: tuple | None = None) -> Check:
    """A check: a command (with `${...}` like a target's cmd) or {python: mod:func}."""
    if isinstance(raw, dict):
        return Check(python=raw["python"])
    where = partial(locate, (*(at or ("targets", name)), "checks", i))
    cmd, _, unknown = _interpolate(raw, params, f"target '{name}': check {i + 1}", where, vars_)
    if unknown:
        raise PipelineError(
            f"target '{name}': check uses unknown param '${{{unknown[0]}}}'{closest(unknown[0], known_keys(params))}",
            where)
    return Check(cmd=cmd)


def _interpolate(cmd: str, params: dict, what: str, where,
                 vars_: dict[str, Any] | None = None) -> tuple[str, list[str], list[str]]:
    """`interpolate`, its refusals made pipeline errors placed at the command."""
    try:
        return interpolate(cmd, params, vars_)
    except (Refused, AmbiguousParam) as exc:
        raise PipelineError(f"{what}: {exc.message if isinstance(exc, AmbiguousParam) else exc}", where) from None
