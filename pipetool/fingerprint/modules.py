"""The project's Python modules as parsed files, read without importing: where a module
lives, its tree and module-level bindings (parsed once per process while the file's stat
is unchanged), and a callable's signature."""
from __future__ import annotations

import ast
import os
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import PipelineError, WhereLike
from .pyast import FUNCS, Binding, StarImport, collect_bindings


@dataclass(frozen=True)
class Signature:
    required: tuple[str, ...]  # named parameters without a default (what pipetool must pass)


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


# -- parsing, once per file state ------------------------------------------------------


class ModuleInfo:
    """One parsed module file: its tree (or the syntax error), its module-level bindings,
    and digests and references worked out so far (valid as long as the file is unchanged)."""

    def __init__(self, path: str, data: bytes):
        self.path = path
        self.data = data
        self.tree: ast.Module | None = None
        self.error: SyntaxError | None = None
        try:
            self.tree = ast.parse(data, filename=path)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            self.error = exc if isinstance(exc, SyntaxError) else SyntaxError(str(exc))
        self._bindings: dict[str, list[Binding]] | None = None
        self._stars: list[StarImport] = []
        self.memo: dict[Any, Any] = {}

    @property
    def bindings(self) -> dict[str, list[Binding]]:
        """name -> how the module binds it (a def or class, an assignment, an import)."""
        if self._bindings is None:
            self._bindings = {}
            if self.tree is not None:
                collect_bindings(self.tree.body, self._bindings, self._stars)
        return self._bindings

    @property
    def stars(self) -> list[StarImport]:
        self.bindings  # noqa: B018 - fills _stars
        return self._stars


_FILES: dict[str, tuple[tuple[int, int, int, int], ModuleInfo]] = {}


def _stat_key(path: str) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def module_info(path: str) -> ModuleInfo:
    """The parsed file, from the in-process cache while its stat key is unchanged."""
    key = _stat_key(path)
    hit = _FILES.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    with open(path, "rb") as f:
        info = ModuleInfo(path, f.read())
    _FILES[path] = (key, info)
    return info


def read_signature(path: str, ref: str, where: WhereLike) -> Signature:
    """The callable's parameters from its source; errors if it is not defined there."""
    qual = ref.partition(":")[2].split(".")
    info = module_info(path)
    if info.tree is None:
        exc = info.error
        lineno = getattr(exc, "lineno", None)
        msg = getattr(exc, "msg", None) or str(exc)
        raise PipelineError(f"{path}:{lineno}: syntax error in module of '{ref}': {msg}", where) from None
    tree = info.tree
    body = tree.body
    node = None
    for part in qual:
        node = next((n for n in body if isinstance(n, (*FUNCS, ast.ClassDef)) and n.name == part), None)
        if node is None:
            break
        body = node.body if isinstance(node, ast.ClassDef) else []
    if node is None or isinstance(node, ast.ClassDef):
        # Assigned or imported names cannot be read statically: accept anything.
        if _bound_otherwise(tree, qual[0]):
            return Signature(())
        raise PipelineError(f"'{ref}': module {os.path.basename(path)} defines no function '{'.'.join(qual)}'", where)
    a = node.args
    positional = a.posonlyargs + a.args
    n_req = len(positional) - len(a.defaults)
    required = [x.arg for x in positional[:n_req]]
    required += [x.arg for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is None]
    return Signature(tuple(required))


def _bound_otherwise(tree, name: str) -> bool:
    for n in ast.walk(tree):
        if isinstance(n, (ast.Import, ast.ImportFrom)) and any((al.asname or al.name) == name for al in n.names):
            return True
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets):
            return True
    return False
