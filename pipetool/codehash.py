"""The code part of a `python:` target's fingerprint, and its signature, read without importing.

For now the code part is the content hash of the callable's module file (any edit to the
module reruns its targets); finer, AST-level hashing is tracked separately.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from .errors import PipelineError, WhereLike


@dataclass(frozen=True)
class Signature:
    params: tuple[str, ...]  # every named parameter
    required: tuple[str, ...]  # named parameters without a default
    var_keyword: bool  # takes **kwargs


def module_file(root: str, module: str) -> str | None:
    """The project file that `module` imports from (project root first on sys.path)."""
    base = os.path.join(root, *module.split("."))
    for cand in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(cand):
            return cand
    return None


def installed_module_file(root: str, module: str) -> str | None:
    """Fallback for callables in installed packages: ask the import system."""
    import importlib.util
    import sys

    sys.path.insert(0, root)
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    finally:
        sys.path.remove(root)
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    return spec.origin


def resolve_callable(root: str, ref: str, where: WhereLike) -> str:
    """The file defining `module:function`; a pipeline error when it cannot be found."""
    module = ref.partition(":")[0]
    path = module_file(root, module) or installed_module_file(root, module)
    if path is None:
        raise PipelineError(f"cannot find module '{module}' of callable '{ref}' in the project", where)
    return path


@lru_cache(maxsize=256)
def _parse(path: str, mtime_ns: int):
    import ast

    with open(path, "rb") as f:
        return ast.parse(f.read(), filename=path)


def read_signature(path: str, ref: str, where: WhereLike) -> Signature:
    """The callable's parameters from its source; errors if it is not defined there."""
    import ast

    qual = ref.partition(":")[2].split(".")
    try:
        tree = _parse(path, os.stat(path).st_mtime_ns)
    except SyntaxError as exc:
        raise PipelineError(f"{path}:{exc.lineno}: syntax error in module of '{ref}': {exc.msg}", where) from None
    body = tree.body
    node = None
    for i, part in enumerate(qual):
        node = next(
            (n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part),
            None,
        )
        if node is None:
            break
        body = node.body if isinstance(node, ast.ClassDef) else []
    if node is None or isinstance(node, ast.ClassDef):
        # Assigned or imported names cannot be read statically: accept anything.
        if _bound_otherwise(tree, qual[0]):
            return Signature((), (), True)
        raise PipelineError(f"'{ref}': module {os.path.basename(path)} defines no function '{'.'.join(qual)}'", where)
    a = node.args
    positional = a.posonlyargs + a.args
    n_req = len(positional) - len(a.defaults)
    required = [x.arg for x in positional[:n_req]]
    required += [x.arg for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is None]
    names = [x.arg for x in positional + a.kwonlyargs]
    return Signature(tuple(names), tuple(required), a.kwarg is not None)


def _bound_otherwise(tree, name: str) -> bool:
    import ast

    for n in ast.walk(tree):
        if isinstance(n, (ast.Import, ast.ImportFrom)) and any((al.asname or al.name) == name for al in n.names):
            return True
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets):
            return True
    return False


@lru_cache(maxsize=1024)
def _imports_of(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, int], ...]:
    """(dotted name, relative level) of every import in a module, read from its AST."""
    import ast

    try:
        tree = _parse(path, mtime_ns)
    except SyntaxError:
        return ()
    found: list[tuple[str, int]] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            found.extend((a.name, 0) for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            found.append((base, n.level))
            found.extend((f"{base}.{a.name}" if base else a.name, n.level) for a in n.names if a.name != "*")
    return tuple(found)


def _package_of(root: str, path: str) -> list[str]:
    rel = os.path.relpath(path, root).replace(os.sep, "/")
    parts = rel[:-3].split("/")
    return parts[:-1]  # for pkg/__init__.py and pkg/mod.py alike, the package is pkg


def module_closure(root: str, path: str) -> list[str]:
    """`path` and every project module it imports, transitively (files, sorted).

    Importing a.b.c runs a/__init__.py and a/b/__init__.py too, so those count. Modules
    outside the project root (installed packages) are not followed.
    """
    root_prefix = os.path.join(root, "")
    seen: set[str] = set()
    stack = [path]
    while stack:
        f = stack.pop()
        if f in seen:
            continue
        seen.add(f)
        if not f.startswith(root_prefix):
            continue
        st = os.stat(f)
        pkg = _package_of(root, f)
        for name, level in _imports_of(f, st.st_mtime_ns, st.st_size):
            if level:
                base = pkg[: len(pkg) - (level - 1)] if level - 1 <= len(pkg) else []
                parts = base + [p for p in name.split(".") if p]
            else:
                parts = name.split(".")
            for i in range(1, len(parts) + 1):
                found = module_file(root, ".".join(parts[:i]))
                if found and found not in seen:
                    stack.append(found)
    return sorted(x for x in seen if x.startswith(root_prefix))
