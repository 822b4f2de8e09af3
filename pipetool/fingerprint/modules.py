"""The project's Python modules as parsed files, read without importing: where a module
lives, its tree, its module-level bindings and what its import-time code does to them
(parsed once per process while the file's stat is unchanged), and a callable's signature."""
from __future__ import annotations

import ast
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PipelineError, WhereLike
from .pyast import (
    FUNCS,
    Binding,
    DefBinding,
    Read,
    StarImport,
    code_reads,
    collect_bindings,
    import_bindings,
    normalized_dump,
)


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
        self._effects: dict[str, list[Effect]] | None = None
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

    @property
    def effects(self) -> dict[str, list[Effect]]:
        """name -> what the module's import-time code does to it besides binding it, in
        source order."""
        if self._effects is None:
            self._effects = {}
            if self.tree is not None:
                collect_effects(self.tree.body, self.bindings, self._effects)
        return self._effects


# -- what a module does to its names at import time ------------------------------------


class Effect:
    """A module-level statement that changes what a name holds without rebinding it
    (`CFG["lr"] = 0.1`, `CFG.x += 1`, `del CFG["k"]`, `CFG.update(...)`), or a module-level
    call `init()` of a function of the module that sets the name (`global CFG`) or changes
    it so: it counts toward the name, with the headers of the `if`/`for`/`with`/`try`
    blocks around it (and which block it is in). A plain class: a dataclass costs a
    millisecond of import on every `status`."""

    __slots__ = ("context", "func", "stmt")

    def __init__(self, stmt: ast.stmt, context: tuple[tuple[ast.AST, str], ...] = (),
                 func: ast.FunctionDef | ast.AsyncFunctionDef | None = None):
        self.stmt = stmt
        self.context = context  # enclosing blocks (emptied), outermost first, and which block
        self.func = func  # the function a module-level call runs

    def dump(self) -> str:
        parts = [f"{label}:{normalized_dump(head)}" for head, label in self.context]
        parts.append(normalized_dump(self.stmt))
        if self.func is not None:
            parts.append(normalized_dump(self.func))
        return "|".join(parts)

    def reads(self) -> list[Read]:
        nodes = [head for head, _ in self.context] + [self.stmt]
        if self.func is None:
            return [r for n in nodes for r in code_reads(n)]
        # The function counts by its code here, so the call's read of its name does not.
        reads = [r for n in nodes for r in code_reads(n) if r != (self.func.name,)]
        return reads + list(code_reads(self.func))


_BLOCKS = ("body", "orelse", "finalbody")


def _root(node: ast.AST) -> str | None:
    """`CFG` of `CFG["a"].b`."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def mutated_names(st: ast.AST) -> list[str]:
    """The names a simple statement changes in place: item or attribute assignment (plain,
    augmented, annotated), `del` of an item or attribute, a method call as a statement."""
    if isinstance(st, ast.Expr):
        call = st.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
            root = _root(call.func.value)
            return [root] if root else []
        return []
    if isinstance(st, ast.Assign):
        targets = list(st.targets)
    elif isinstance(st, (ast.AugAssign, ast.AnnAssign)):
        targets = [st.target] if not isinstance(st, ast.AnnAssign) or st.value is not None else []
    elif isinstance(st, ast.Delete):
        targets = list(st.targets)
    else:
        return []
    out: list[str] = []
    while targets:
        t = targets.pop(0)
        if isinstance(t, (ast.Tuple, ast.List)):
            targets[:0] = t.elts
        elif isinstance(t, ast.Starred):
            targets.insert(0, t.value)
        elif isinstance(t, (ast.Attribute, ast.Subscript)):
            root = _root(t)
            if root:
                out.append(root)
    return out


def _header(st: ast.AST) -> ast.AST:
    """A compound statement (or except clause, or match case) with its blocks emptied."""
    blocks = (*_BLOCKS, "handlers", "cases")
    return type(st)(**{f: [] if f in blocks else getattr(st, f, None) for f in st._fields})


def _is_main_guard(test: ast.AST) -> bool:
    """`__name__ == "__main__"` (either way round): a block import never runs."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = (test.left, test.comparators[0])
    return any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides) and \
        any(isinstance(x, ast.Constant) and x.value == "__main__" for x in sides)


def function_sets(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The module globals a function sets when called: those it declares `global`, and
    those it changes in place (`CFG["lr"] = …`, `CFG.update(…)`) without binding locally."""
    a = fn.args
    bound = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
    bound |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
    declared: set[str] = set()
    changed: list[str] = []
    stack: list[ast.AST] = list(fn.body)
    while stack:
        n = stack.pop()
        if isinstance(n, (*FUNCS, ast.ClassDef)):
            bound.add(n.name)  # a nested scope: its own names are its own
            continue
        if isinstance(n, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(n, ast.Global):
            declared.update(n.names)
        elif isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            bound.add(n.id)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            bound.update(name for name, _ in import_bindings(n))
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound.add(n.name)
        if isinstance(n, ast.stmt):
            changed.extend(mutated_names(n))
        stack.extend(ast.iter_child_nodes(n))
    return declared | {name for name in changed if name not in bound}


def collect_effects(body: list[ast.stmt], bindings: Mapping[str, list[Binding]], out: dict[str, list[Effect]],
                    context: tuple[tuple[ast.AST, str], ...] = ()) -> None:
    """Module-scope effects (see `Effect`), also inside if/try/for/with/while/match blocks;
    not in an `if __name__ == "__main__":` block, nor in def or class bodies."""
    for st in body:
        if isinstance(st, (*FUNCS, ast.ClassDef)):
            continue
        if isinstance(st, ast.If) and _is_main_guard(st.test):
            collect_effects(st.orelse, bindings, out, (*context, (_header(st), "orelse")))
            continue
        for name in mutated_names(st):
            out.setdefault(name, []).append(Effect(st, context))
        if isinstance(st, ast.Expr) and isinstance(st.value, ast.Call) and isinstance(st.value.func, ast.Name):
            for b in bindings.get(st.value.func.id, ()):
                if isinstance(b, DefBinding) and isinstance(b.node, FUNCS):
                    for name in sorted(function_sets(b.node)):
                        out.setdefault(name, []).append(Effect(st, context, b.node))
        head: ast.AST | None = None
        for field in (*_BLOCKS, "handlers", "cases"):
            sub = getattr(st, field, None)
            if not isinstance(sub, list) or not sub:
                continue
            head = head or _header(st)
            here = (*context, (head, field))
            if field in _BLOCKS:
                collect_effects(sub, bindings, out, here)
                continue
            for clause in sub:  # except handlers, match cases
                collect_effects(clause.body, bindings, out, (*here, (_header(clause), "body")))


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
