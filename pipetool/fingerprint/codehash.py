"""The code part of a `python:` target's fingerprint, read without importing.

What counts as a code change (SPEC §9), all read from source, nothing imported:

- the callable's normalized AST: `ast` nodes without positions, docstrings removed, so
  comments, blank lines, formatting and docstrings do not count;
- transitively, every function and class of the *project* (modules under the project root)
  that it references, resolved through the module's globals and imports
  (`from src.util import scale`, `import src.util as u; u.scale`, same-module helpers; a
  class counts whole, methods included), and through imports inside function bodies, which
  bind names in their function as module-level ones bind globals;
- module-level assignments (constants) those read: plain values (numbers, strings, bytes,
  containers of them) by value, anything else by the assignment's normalized AST; then what
  the module's import-time code does to the name (`modules.Effect`: `CFG["lr"] = 0.1`,
  `CFG.update(...)`, a module-level call of a function of the module that sets it);
- installed packages they reference, by version (from the `*.dist-info` folders on
  `sys.path`); the standard library does not count.

Each of these is one entry of `code_entries()`, keyed so a reason can name it:
`src.train:train`, `src.util:scale`, `const src.train:EPOCHS`, `module src.util` (a module
used as a value, counted whole), `pkg numpy` (its version). Code that uses neither local
imports nor import-time effects gets the entries it always had. Every file is parsed once
per process and per state (path, mtime, ctime, size, inode).
"""
from __future__ import annotations

import ast
import builtins
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..digests import hash_bytes
from .modules import ModuleInfo, module_file, module_info
from .pkgversions import STDLIB, is_editable, package_of
from .pyast import (
    FUNCS,
    AssignBinding,
    Binding,
    DefBinding,
    ImportBinding,
    LocalRead,
    Read,
    ast_digest,
    code_reads,
    normalized_dump,
)

# -- the closure of a callable -----------------------------------------------------------

_BUILTINS = frozenset(dir(builtins))


ThingKind = Literal["def", "const", "module", "pkg"]


@dataclass(frozen=True)
class _Thing:
    kind: ThingKind
    module: str  # dotted module name (pkg: the distribution)
    name: str = ""  # def/const: qualified name in the module; pkg: the version
    path: str | None = None  # the module file (None: a namespace package or a package)

    @property
    def key(self) -> str:
        if self.kind == "def":
            return f"{self.module}:{self.name}"
        if self.kind == "const":
            return f"const {self.module}:{self.name}"
        return f"{self.kind} {self.module}"


@dataclass
class _Closure:
    """Resolves names through one project's modules; lives for one `code_entries` call."""

    root: str
    _modules: dict[str, str | None] = field(default_factory=dict)  # name -> file ("" namespace)
    _infos: dict[str, ModuleInfo] = field(default_factory=dict)
    _names: dict[str, str] = field(default_factory=dict)  # file -> dotted module name
    _chains: dict[tuple[str, Read], list[_Thing]] = field(default_factory=dict)

    def project_module(self, name: str) -> str | None:
        """The file of a project module; "" for a folder without __init__.py; None when
        the module is not the project's."""
        if name not in self._modules:
            found = module_file(self.root, name)
            if found is None and name and all(p.isidentifier() for p in name.split(".")):
                folder = os.path.join(self.root, *name.split("."))
                if os.path.isdir(folder) and (
                    "." in name or (name not in STDLIB and package_of(name) in (None, (name, None)))
                ):
                    found = ""  # a namespace package of the project
            self._modules[name] = found
        return self._modules[name]

    def info(self, path: str) -> ModuleInfo:
        if path not in self._infos:
            self._infos[path] = module_info(path)
        return self._infos[path]

    def module_name(self, path: str) -> str:
        name = self._names.get(path)
        if name is None:
            rel = os.path.relpath(path, self.root).replace(os.sep, "/")[:-3]
            rel = rel.removesuffix("/__init__")
            name = self._names[path] = rel.replace("/", ".")
        return name

    def module_thing(self, name: str) -> _Thing | None:
        path = self.project_module(name)
        if path is not None:
            return _Thing("module", name, path=path or None)
        pkg = package_of(name)
        if pkg is None:
            return None  # standard library
        return _Thing("pkg", pkg[0], pkg[1] or "")

    def absolute(self, path: str, level: int, module: str) -> str:
        if not level:
            return module
        pkg = self.module_name(path).split(".")
        if not path.endswith("__init__.py"):
            pkg = pkg[:-1]
        base = pkg[: len(pkg) - (level - 1)] if level - 1 <= len(pkg) else []
        return ".".join(base + ([module] if module else []))

    # -- names -------------------------------------------------------------------------
    def resolve_name(self, path: str, name: str, guard: frozenset = frozenset()) -> list[_Thing]:
        """What a global `name` of the module at `path` is."""
        if (path, name) in guard:
            return []
        guard = guard | {(path, name)}
        info = self.info(path)
        mod = self.module_name(path)
        binds = info.bindings.get(name)
        out: list[_Thing] = []
        if not binds:
            for star in info.stars:
                target = self.absolute(path, star.level, star.module)
                tpath = self.project_module(target)
                if tpath:
                    out = self.resolve_name(tpath, name, guard)
                    if out:
                        break
                elif tpath is None:
                    pkg = self.module_thing(target)
                    if pkg is not None and pkg.kind == "pkg" and name not in _BUILTINS:
                        out = [pkg]
                        break
        for b in binds or ():
            out.extend(self.resolve_binding(path, name, b, guard))
        if name in info.effects and _effects_on_const(binds or ()):
            out.append(_Thing("const", mod, name, path))  # what import-time code does to it
        return list(dict.fromkeys(out))

    def resolve_binding(self, path: str, name: str, b: Binding, guard: frozenset = frozenset()) -> list[_Thing]:
        """What `name`, bound by `b` in the module at `path` (at module level or inside a
        function), is."""
        if isinstance(b, DefBinding):
            return [_Thing("def", self.module_name(path), name, path)]
        if isinstance(b, AssignBinding):
            return [_Thing("const", self.module_name(path), name, path)]
        if isinstance(b, ImportBinding):
            t = self.module_thing(b.module)
            return [t] if t is not None else []
        return self.attribute(self.absolute(path, b.level, b.module), b.name, guard)

    def attribute(self, module: str, attr: str, guard: frozenset = frozenset()) -> list[_Thing]:
        """What `module.attr` is (`from module import attr`)."""
        path = self.project_module(module)
        if path is None:
            t = self.module_thing(module)
            return [t] if t is not None else []
        if path and attr in self.info(path).bindings:
            return self.resolve_name(path, attr, guard)
        sub = self.module_thing(f"{module}.{attr}")
        if sub is not None and sub.kind == "module":
            return [sub]
        if path:
            found = self.resolve_name(path, attr, guard)  # through `from x import *`
            if found:
                return found
            return [_Thing("module", module, path=path)]  # set at run time: count it whole
        return []

    def resolve_read(self, path: str, read: Read) -> list[_Thing]:
        """What a dotted read (`u.scale`, `np.random.seed`) in the module at `path` is,
        through the module's globals or, for a `LocalRead`, through the import inside the
        function that binds its head."""
        key = (path, read)
        found = self._chains.get(key)
        if found is None:
            if isinstance(read, LocalRead):
                head = self.resolve_binding(path, read.chain[0], read.binding)
                found = self._walk(head, read.chain[1:])
            else:
                found = self._resolve_chain(path, read)
            self._chains[key] = found
        return found

    def resolve_chain(self, path: str, chain: tuple[str, ...]) -> list[_Thing]:
        return self.resolve_read(path, chain)

    def _resolve_chain(self, path: str, chain: tuple[str, ...]) -> list[_Thing]:
        info = self.info(path)
        if chain[0] in _BUILTINS and chain[0] not in info.bindings and not info.stars \
                and chain[0] not in info.effects:
            return []
        return self._walk(self.resolve_name(path, chain[0]), chain[1:])

    def _walk(self, heads: list[_Thing], chain: tuple[str, ...]) -> list[_Thing]:
        """Follow the attribute names after a chain's head through modules."""
        out: list[_Thing] = []
        for t in heads:
            rest = chain
            while t.kind == "module" and rest:
                found = self.attribute(t.module, rest[0])
                if len(found) != 1:
                    out.extend(found)
                    t = None  # type: ignore[assignment]
                    break
                t, rest = found[0], rest[1:]
            if t is not None:
                out.append(t)
        return out

    # -- what one thing counts as -------------------------------------------------------
    def nodes_of(self, t: _Thing) -> list[ast.AST]:
        """The def or class statements behind a def thing (several when the module
        defines the name more than once, e.g. in both branches of an `if`)."""
        info = self.info(t.path)  # type: ignore[arg-type]
        parts = t.name.split(".")
        nodes: list[ast.AST] = [b.node for b in info.bindings.get(parts[0], ()) if isinstance(b, DefBinding)]
        for part in parts[1:]:
            nodes = [n for node in nodes for n in getattr(node, "body", ())
                     if isinstance(n, (*FUNCS, ast.ClassDef)) and n.name == part]
        return nodes

    def describe(self, t: _Thing) -> tuple[str | None, list[_Thing]]:
        """(digest, the things it references)."""
        if t.kind == "pkg":
            return (t.name or None), []
        if t.kind == "module":
            if t.path is None:
                return "namespace", []
            info = self.info(t.path)
            if info.tree is None:
                return "unparsable:" + hash_bytes(info.data), []
            digest = info.memo.get("module")
            if digest is None:
                digest = info.memo["module"] = ast_digest(info.tree)
            refs: list[_Thing] = []
            for name in dict.fromkeys([*info.bindings, *info.effects]):
                refs.extend(self.resolve_name(t.path, name))
            return digest, refs
        assert t.path is not None
        info = self.info(t.path)
        if info.tree is None:
            return "unparsable:" + hash_bytes(info.data), []
        memo_key = (t.kind, t.name)
        cached = info.memo.get(memo_key)
        if cached is None:
            cached = info.memo[memo_key] = self._digest_and_reads(info, t)
        digest, reads, extra = cached
        refs = [x for read in reads for x in self.resolve_read(t.path, read)]
        refs.extend(extra)
        return digest, refs

    def _digest_and_reads(self, info: ModuleInfo, t: _Thing) -> tuple[str | None, tuple[Read, ...], list[_Thing]]:
        binds = info.bindings.get(t.name, ())
        # What import-time code does to the name: it counts toward its const entry, or
        # toward its def when a def or class binds it (`Model.limit = 3`).
        effects = info.effects.get(t.name, ()) if t.kind == "const" or not _effects_on_const(binds) else ()
        effect_reads = [r for e in effects for r in e.reads() if isinstance(r, LocalRead) or r[0] != t.name]
        if t.kind == "def":
            nodes = self.nodes_of(t)
            if not nodes:
                return None, (), [_Thing("module", t.module, path=t.path)]
            extra = []
            if "." in t.name:  # a method: its class counts too (it may use self.other())
                extra.append(_Thing("def", t.module, t.name.split(".")[0], t.path))
            if len(nodes) == 1 and not effects:
                return ast_digest(nodes[0]), code_reads(nodes[0]), extra
            text = "\n".join([*(normalized_dump(n) for n in nodes), *("m:" + e.dump() for e in effects)])
            reads = tuple(dict.fromkeys([*(r for n in nodes for r in code_reads(n)), *effect_reads]))
            return hash_bytes(text.encode("utf-8", "backslashreplace")), reads, extra
        # const: every module-level statement binding the name, then what import-time code
        # does to it, in source order
        stmts = [b.stmt for b in binds if isinstance(b, AssignBinding)]
        parts: list[str] = []
        const_reads: dict[Read, None] = {}
        for st in stmts:
            value = _plain_value(st, t.name)
            if value is not None:
                parts.append("v:" + value)
                continue
            parts.append("s:" + normalized_dump(st))
            for r in code_reads(st):
                if isinstance(r, LocalRead) or r[0] != t.name:
                    const_reads[r] = None
        parts.extend("m:" + e.dump() for e in effects)
        const_reads.update(dict.fromkeys(effect_reads))
        return hash_bytes("\n".join(parts).encode("utf-8", "backslashreplace")), tuple(const_reads), []


def _effects_on_const(binds: Iterable[Binding]) -> bool:
    """Whether what import-time code does to a name counts toward a const entry of it
    (bound by an assignment, an import or not at all) rather than toward its def."""
    kinds = {type(b) for b in binds}
    return AssignBinding in kinds or DefBinding not in kinds


def _plain_value(st: ast.AST, name: str) -> str | None:
    """`NAME = <literal>` (or annotated): the value in canonical text; None otherwise."""
    if isinstance(st, ast.Assign) and len(st.targets) == 1:
        target, value = st.targets[0], st.value
    elif isinstance(st, ast.AnnAssign) and st.value is not None:
        target, value = st.target, st.value
    else:
        return None
    if not (isinstance(target, ast.Name) and target.id == name):
        return None
    try:
        return canonical_value(ast.literal_eval(value))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def canonical_value(v: Any) -> str:
    """A plain value as text that does not depend on hash seeds (sets are sorted)."""
    if isinstance(v, (set, frozenset)):
        return f"{type(v).__name__}{{{','.join(sorted(canonical_value(x) for x in v))}}}"
    if isinstance(v, dict):
        return "{" + ",".join(f"{canonical_value(k)}:{canonical_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        inner = ",".join(canonical_value(x) for x in v)
        return f"[{inner}]" if isinstance(v, list) else f"({inner})"
    return f"{type(v).__name__}:{v!r}"


def code_entries(root: str, ref: str, path: str) -> dict[str, str | None]:
    """Everything the callable `ref` (defined in `path`) counts as code, keyed by name."""
    root = os.path.abspath(root)
    if not os.path.abspath(path).startswith(os.path.join(root, "")):
        # A callable of an installed package: that package's version; its module's bytes
        # when it belongs to no distribution or to an editable install.
        module = ref.partition(":")[0]
        pkg = package_of(module)
        if pkg is not None and pkg[1] is not None and not is_editable(module):
            return {f"pkg {pkg[0]}": pkg[1]}
        with open(path, "rb") as f:
            return {f"file {module}": hash_bytes(f.read())}
    c = _Closure(root)
    module, _, qual = ref.partition(":")
    info = c.info(path)
    if info.tree is None:
        return {ref: "unparsable:" + hash_bytes(info.data)}
    parts = qual.split(".")
    start = c.resolve_name(path, parts[0])
    if len(parts) > 1:  # Class.method: the method, and its class through it
        owner = next((t for t in start if t.kind == "def"), None)
        if owner is not None:
            start = [_Thing("def", owner.module, ".".join([owner.name, *parts[1:]]), owner.path)]
    if not start:  # nothing we can read binds it: count the module whole
        start = [_Thing("module", module, path=path)]
    entries: dict[str, str | None] = {}
    queue = list(start)
    while queue:
        t = queue.pop()
        key = t.key
        if key in entries:
            continue
        digest, refs = c.describe(t)
        entries[key] = digest
        queue.extend(r for r in refs if r.key not in entries)
    return entries


def entry_label(key: str, old: str | None = None, new: str | None = None) -> str:
    """How a `code_entries` key is shown in a reason."""
    kind, _, rest = key.partition(" ")
    if kind == "const":
        return rest
    if kind == "pkg":
        return f"{rest} {old or '(none)'} -> {new or '(none)'}"
    if kind == "file":
        return rest
    return key
