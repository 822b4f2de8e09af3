"""Python source as data: a normalized AST (positions, docstrings, comments and layout do
not count), module-level bindings, and what a piece of code reads: from its module's global
scope, and through imports inside function bodies (which bind names as module-level ones
do). Pure functions over `ast` trees; nothing is imported or run."""
from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..digests import hash_bytes

# -- normalized AST ----------------------------------------------------------------------

_DOC_HOLDERS = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_SKIPPED_FIELDS = frozenset(("type_comment", "kind"))  # `# type:` comments, u"" prefixes


def _has_docstring(body: Any) -> bool:
    return bool(body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str)


class _Text(str):
    """A piece of output pushed on `_dump`'s stack (anything else there is a value)."""


_OPEN_LIST, _CLOSE_LIST, _CLOSE, _COMMA = _Text("["), _Text("]"), _Text(")"), _Text(",")
_FIELD_TEXT: dict[str, _Text] = {}


def _dump(root: Any, out: list[str]) -> None:
    """Iterative, so a deeply nested expression (a sum of a thousand terms) is no problem."""
    stack: list[Any] = [root]
    pop, push, append = stack.pop, stack.extend, out.append
    while stack:
        node = pop()
        if type(node) is _Text:
            append(node)
        elif isinstance(node, ast.AST):
            items: list[Any] = [_Text(type(node).__name__ + "(")]
            doc_holder = isinstance(node, _DOC_HOLDERS)
            for name in node._fields:
                if name in _SKIPPED_FIELDS:
                    continue
                value: Any = getattr(node, name, None)
                if doc_holder and name == "body" and _has_docstring(value):
                    value = value[1:]  # a body with a docstring is a non-empty list
                label = _FIELD_TEXT.get(name)
                if label is None:
                    label = _FIELD_TEXT[name] = _Text(name + "=")
                items += (label, value, _COMMA)
            items.append(_CLOSE)
            push(reversed(items))
        elif isinstance(node, list):
            items = [_OPEN_LIST]
            for x in node:
                items += (x, _COMMA)
            items.append(_CLOSE_LIST)
            push(reversed(items))
        else:
            append(repr(node))


def normalized_dump(node: ast.AST) -> str:
    """The node as text without positions, `# type:` comments or docstrings (at any depth):
    what a formatter, a comment or a docstring edit cannot change."""
    out: list[str] = []
    _dump(node, out)
    return "".join(out)


def ast_digest(node: ast.AST) -> str:
    return hash_bytes(normalized_dump(node).encode("utf-8", "backslashreplace"))


def source_ast_digest(data: bytes, filename: str = "<script>") -> str | None:
    """Digest of a Python source's normalized AST; None when it does not parse."""
    try:
        tree = ast.parse(data, filename=filename)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return ast_digest(tree)


# -- module-level bindings -------------------------------------------------------------

_COMPOUND_BODIES = ("body", "orelse", "finalbody", "handlers")


def _target_names(targets: Iterable[ast.AST]) -> list[str]:
    out = []
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                out.append(n.id)
    return out


@dataclass(frozen=True)
class DefBinding:
    """`def name` or `class name`."""

    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


@dataclass(frozen=True)
class AssignBinding:
    """An assignment, or a compound statement whose header binds the name (`for`, `with`,
    `except … as`, a match capture): it counts by the whole statement."""

    stmt: ast.stmt


@dataclass(frozen=True)
class ImportBinding:
    """`import a.b` (binds `a`, module "a") or `import a.b as x` (binds `x`, module "a.b")."""

    module: str


@dataclass(frozen=True)
class FromBinding:
    """`from .module import name` (level: the number of leading dots)."""

    level: int
    module: str
    name: str


Binding = DefBinding | AssignBinding | ImportBinding | FromBinding


@dataclass(frozen=True)
class StarImport:
    """`from .module import *`."""

    level: int
    module: str


def import_bindings(st: ast.Import | ast.ImportFrom) -> list[tuple[str, ImportBinding | FromBinding]]:
    """(name, binding) for each name an import statement binds, wherever it stands (a
    star import binds no name it can say)."""
    if isinstance(st, ast.Import):
        out: list[tuple[str, ImportBinding | FromBinding]] = []
        for a in st.names:
            if a.asname:
                out.append((a.asname, ImportBinding(a.name)))
            else:
                head = a.name.split(".")[0]
                out.append((head, ImportBinding(head)))
        return out
    return [(a.asname or a.name, FromBinding(st.level, st.module or "", a.name)) for a in st.names if a.name != "*"]


def collect_bindings(body: list[ast.stmt], b: dict[str, list[Binding]], stars: list[StarImport]) -> None:
    """Module-scope bindings, also those inside if/try/for/with/while/match blocks."""
    for st in body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            b.setdefault(st.name, []).append(DefBinding(st))
        elif isinstance(st, (ast.Import, ast.ImportFrom)):
            if isinstance(st, ast.ImportFrom) and any(a.name == "*" for a in st.names):
                stars.append(StarImport(st.level, st.module or ""))
            for name, binding in import_bindings(st):
                b.setdefault(name, []).append(binding)
        elif isinstance(st, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            if isinstance(st, ast.AnnAssign) and st.value is None:
                continue  # `x: int` binds nothing
            targets = st.targets if isinstance(st, ast.Assign) else [st.target]
            for name in _target_names(targets):
                b.setdefault(name, []).append(AssignBinding(st))
        else:
            # A compound statement: what its header binds (for/with targets, `except E as
            # e`, walrus, match captures) counts by the whole statement; its blocks are
            # module scope too.
            header: list[ast.AST] = []
            for name, value in ast.iter_fields(st):
                if name in _COMPOUND_BODIES or name == "cases":
                    continue
                if isinstance(value, list):
                    header.extend(v for v in value if isinstance(v, ast.AST))
                elif isinstance(value, ast.AST):
                    header.append(value)
            bound = _target_names(header)
            for h in ast.walk(st) if isinstance(st, ast.Match) else ():
                if isinstance(h, (ast.MatchAs, ast.MatchStar)) and h.name:
                    bound.append(h.name)
            for h in getattr(st, "handlers", ()):
                if h.name:
                    bound.append(h.name)
            for name in bound:
                b.setdefault(name, []).append(AssignBinding(st))
            for name in _COMPOUND_BODIES:
                sub = getattr(st, name, None)
                if isinstance(sub, list):
                    stmts = [s.body if isinstance(s, ast.ExceptHandler) else [s] for s in sub]
                    collect_bindings([x for group in stmts for x in group], b, stars)
            for case in getattr(st, "cases", ()):
                collect_bindings(case.body, b, stars)


# -- what a piece of code reads from the module's global scope ---------------------------

FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
_COMPS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_FUNCLIKE = (*FUNCS, ast.Lambda)
_ANONYMOUS = (ast.Lambda, *_COMPS)
_SCOPES = (*FUNCS, ast.ClassDef, *_ANONYMOUS)
_MATCH_NAMED = (ast.MatchAs, ast.MatchStar)


def _chain(node: ast.Attribute) -> tuple[str, ...] | None:
    attrs = []
    n: ast.AST = node
    while isinstance(n, ast.Attribute):
        attrs.append(n.attr)
        n = n.value
    if isinstance(n, ast.Name):
        return (n.id, *reversed(attrs))
    return None


def _header_parts(n: ast.AST) -> list[ast.AST]:
    """What a def, class, lambda or comprehension evaluates in its *enclosing* scope."""
    if isinstance(n, _FUNCLIKE):
        a = n.args
        parts: list[ast.AST] = [*a.defaults, *(d for d in a.kw_defaults if d is not None)]
        if not isinstance(n, ast.Lambda):
            parts += n.decorator_list
            parts += [x.annotation for x in a.posonlyargs + a.args + a.kwonlyargs if x.annotation]
            parts += [x.annotation for x in (a.vararg, a.kwarg) if x is not None and x.annotation]
            if n.returns is not None:
                parts.append(n.returns)
        return parts
    if isinstance(n, ast.ClassDef):
        return [*n.decorator_list, *n.bases, *(k.value for k in n.keywords)]
    if isinstance(n, _COMPS):
        return [n.generators[0].iter]
    return []


def _inner_parts(n: ast.AST) -> tuple[list[ast.AST], set[str]]:
    """(what runs in the new scope, the names its parameters bind)."""
    if isinstance(n, _FUNCLIKE):
        a = n.args
        params = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
        params |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
        return (list(n.body) if isinstance(n.body, list) else [n.body]), params
    if isinstance(n, ast.ClassDef):
        return list(n.body), set()
    if isinstance(n, _COMPS):
        first = n.generators[0]
        parts: list[ast.AST] = [first.target, *first.ifs]
        for g in n.generators[1:]:
            parts += [g.target, g.iter, *g.ifs]
        parts += [n.key, n.value] if isinstance(n, ast.DictComp) else [n.elt]
        return parts, set()
    return [], set()


@dataclass(frozen=True)
class LocalRead:
    """A dotted read whose head an import inside a function (or class) body binds:
    resolved through that import as a module-level one would be, from the same module."""

    binding: ImportBinding | FromBinding
    chain: tuple[str, ...]


Read = tuple[str, ...] | LocalRead
Visible = Mapping[str, tuple[ImportBinding | FromBinding, ...]]
_MODULE, _FUNCTION, _CLASS = 0, 1, 2


def _scan(parts: list[ast.AST], params: set[str], visible: Visible, scope: int,
          found: dict[tuple[str, ...], None], local: dict[LocalRead, None]) -> None:
    """Reads of one scope into `found` (globals) and `local` (names a local import binds);
    `visible`: the names enclosing functions bind, with their import bindings (if any)."""
    bound = set(params)
    declared_global: set[str] = set()
    nonlocals: set[str] = set()
    imports: dict[str, list[ImportBinding | FromBinding]] = {}
    loads: list[tuple[str, ...]] = []
    nested: list[ast.AST] = []
    stack = list(parts)
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            if isinstance(n.ctx, ast.Load):
                loads.append((n.id,))
            else:
                bound.add(n.id)
        elif isinstance(n, ast.Attribute):
            c = _chain(n)
            if c is not None:
                loads.append(c)
            else:
                stack.append(n.value)
        elif isinstance(n, _SCOPES):
            if not isinstance(n, _ANONYMOUS):
                bound.add(n.name)
            stack.extend(_header_parts(n))
            nested.append(n)
        elif isinstance(n, ast.Global):
            declared_global.update(n.names)
        elif isinstance(n, ast.Nonlocal):
            nonlocals.update(n.names)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            for name, binding in import_bindings(n):
                bound.add(name)
                if scope != _MODULE:  # module-level imports are the module's bindings
                    imports.setdefault(name, []).append(binding)
        else:
            if (isinstance(n, ast.ExceptHandler) and n.name) or (isinstance(n, _MATCH_NAMED) and n.name):
                bound.add(n.name)
            elif isinstance(n, ast.MatchMapping) and n.rest:
                bound.add(n.rest)
            stack.extend(ast.iter_child_nodes(n))
    bound -= declared_global | nonlocals  # they name bindings of other scopes
    if scope == _CLASS:  # a class that imports uses what it imports (through self.name)
        loads.extend((name,) for name in imports)
    for c in loads:
        head = c[0]
        via = imports.get(head) or (visible.get(head, ()) if head not in bound and head not in declared_global
                                    else ())
        for b in via:
            local[LocalRead(b, c)] = None
        if head in declared_global or (head not in bound and head not in nonlocals and head not in visible):
            found[c] = None
    # Names bound in a class body are not visible to the functions inside it.
    inner: Visible = visible
    if scope != _CLASS:
        outer = {k: v for k, v in visible.items() if k not in declared_global}
        inner = {**outer, **{name: tuple(imports.get(name, ())) for name in bound}}
    for n in nested:
        body, p = _inner_parts(n)
        _scan(body, p, inner, _CLASS if isinstance(n, ast.ClassDef) else _FUNCTION, found, local)


def code_reads(node: ast.AST) -> tuple[Read, ...]:
    """What a def, class or module-level statement reads: dotted chains from its module's
    global scope (`np.random.seed` as ("np", "random", "seed")), then `LocalRead`s of names
    that imports inside a function or class body bind; in no particular order."""
    found: dict[tuple[str, ...], None] = {}
    local: dict[LocalRead, None] = {}
    _scan([node], set(), {}, _MODULE, found, local)
    return (*found, *local)


def global_reads(node: ast.AST) -> tuple[tuple[str, ...], ...]:
    """The dotted chains that a def, class or module-level statement reads from its
    module's global scope (names that local imports bind are not among them)."""
    return tuple(r for r in code_reads(node) if not isinstance(r, LocalRead))
