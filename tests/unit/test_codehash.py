"""codehash: a callable's code part from source (SPEC §9): normalized AST, the project
functions, classes and constants it reaches, installed packages by version."""
from __future__ import annotations

import ast
import os
import textwrap
import time
from pathlib import Path

import pytest

from pipetool.fingerprint.codehash import canonical_value, code_entries
from pipetool.fingerprint.hashing import Hasher
from pipetool.fingerprint.modules import collect_effects, function_sets, module_info, mutated_names
from pipetool.fingerprint.pkgversions import package_of
from pipetool.fingerprint.pyast import (
    ImportBinding,
    LocalRead,
    code_reads,
    collect_bindings,
    global_reads,
    normalized_dump,
    source_ast_digest,
)
from pipetool.fingerprint.trace import Trace, dep_digest
from pipetool.plan import explain_trace


def dump(src: str) -> str:
    return normalized_dump(ast.parse(textwrap.dedent(src)))


def reads(src: str) -> set[str]:
    node = ast.parse(textwrap.dedent(src)).body[0]
    return {".".join(c) for c in global_reads(node)}


# -- normalized AST ----------------------------------------------------------------------

BASE = '''
def f(x, y=2):
    total = x + y
    return total * 2
'''


@pytest.mark.parametrize("variant", [
    '''
    # a comment on top
    def f(x, y=2):  # trailing comment
        """A docstring."""

        total = x + y   # why


        return total * 2
    ''',
    '''
    def f(
        x,
        y = 2,
    ):
        total = (x +
                 y)
        return (total * 2)
    ''',
    '''
    def f(x, y=2):
        \'\'\'Another
        docstring.\'\'\'
        total = x + y
        return total * 2
    ''',
])
def test_comments_docstrings_and_formatting_do_not_count(variant):
    assert dump(variant) == dump(BASE)


@pytest.mark.parametrize("variant", [
    BASE.replace("* 2", "* 3"),
    BASE.replace("y=2", "y=3"),
    BASE.replace("total = x + y", "total = y + x"),
    BASE.replace("def f(x, y=2):", "async def f(x, y=2):"),
    BASE.replace("return total * 2", "'not a docstring'\n    return total * 2"),
])
def test_code_edits_count(variant):
    assert dump(variant) != dump(BASE)


def test_docstrings_of_nested_functions_and_classes_do_not_count():
    a = '''
    class C:
        """Doc."""
        def m(self):
            """Doc."""
            def inner():
                """Doc."""
                return 1
            return inner()
    '''
    b = '''
    class C:
        def m(self):
            def inner():
                return 1
            return inner()
    '''
    assert dump(a) == dump(b)


def test_a_string_that_is_not_first_is_code():
    assert dump('def f():\n    x = 1\n    "s"\n') != dump('def f():\n    x = 1\n')


def test_source_ast_digest_ignores_the_module_docstring_and_fails_soft():
    assert source_ast_digest(b'"""doc"""\nimport os\n') == source_ast_digest(b"import os  # c\n")
    assert source_ast_digest(b"def (:\n") is None
    assert source_ast_digest(b"x = 1\x00\n") is None


def test_canonical_value_does_not_depend_on_set_order():
    assert canonical_value({"b", "a", "c"}) == canonical_value({"c", "a", "b"}) == "set{str:'a',str:'b',str:'c'}"
    assert canonical_value(1) != canonical_value(1.0) != canonical_value(True)
    assert canonical_value([1, (2, b"x")]) == "[int:1,(int:2,bytes:b'x')]"


# -- what a function reads from its module's globals -----------------------------------


def test_global_reads_skip_parameters_and_locals():
    assert reads('''
    def f(a, *args, b=DEFAULT, **kw):
        x = helper(a)
        for i in range(3):
            x += i
        with open(PATH) as fh:
            pass
        try:
            pass
        except ValueError as exc:
            print(exc)
        return x, args, kw, fh
    ''') == {"DEFAULT", "helper", "range", "open", "PATH", "ValueError", "print"}


def test_global_reads_keep_attribute_chains():
    assert reads('''
    def f(self):
        np.random.seed(SEED)
        self.model.fit(u.scale(2))
        return make().value
    ''') == {"np.random.seed", "SEED", "u.scale", "make"}


def test_global_reads_of_nested_scopes():
    assert reads('''
    def f(xs):
        ys = [scale(x) for x in xs if x > LIMIT]
        g = lambda q: q * FACTOR
        def inner(z):
            return z + ys[0] + OFFSET
        return {k: v for k, v in MAPPING.items()}, g, inner
    ''') == {"scale", "LIMIT", "FACTOR", "OFFSET", "MAPPING.items"}


def test_global_reads_of_decorators_defaults_and_annotations():
    assert reads('''
    @register(NAME)
    def f(x: Config = make_default()) -> Result:
        return x
    ''') == {"register", "NAME", "Config", "make_default", "Result"}


def test_a_global_declaration_makes_an_assigned_name_global():
    assert reads('''
    def f():
        global COUNTER
        COUNTER += 1
        return COUNTER
    ''') == {"COUNTER"}


def test_class_body_names_are_not_visible_to_its_methods():
    assert reads('''
    class C(Base):
        limit = 3
        def m(self):
            return limit
    ''') == {"Base", "limit"}


def test_a_function_that_imports_inside_does_not_read_a_global():
    assert reads('''
    def f():
        import numpy as np
        from src.util import scale
        return np.zeros(scale(1))
    ''') == set()


# -- imports inside a function body bind local names (hardening item 3) -----------------


def local_reads(src: str) -> set[tuple[str, str]]:
    """(binding, chain) of each LocalRead of the first statement, as short text."""
    out = set()
    for r in code_reads(ast.parse(textwrap.dedent(src)).body[0]):
        if isinstance(r, LocalRead):
            b = r.binding
            text = (f"import {b.module}" if isinstance(b, ImportBinding)
                    else f"from {'.' * b.level}{b.module} import {b.name}")
            out.add((text, ".".join(r.chain)))
    return out


def test_every_kind_of_local_import_binds_the_names_read_through_it():
    assert local_reads('''
    def f(flag):
        from src.util import helper
        import src.util as u
        import src.other
        from .rel import thing as t
        from . import sibling
        return helper(1), u.scale(2), src.other.g(3), t, sibling.h()
    ''') == {("from src.util import helper", "helper"), ("import src.util", "u.scale"),
              ("import src", "src.other.g"), ("from .rel import thing", "t"),
              ("from . import sibling", "sibling.h")}


def test_local_imports_in_nested_blocks_count_and_names_not_read_do_not():
    assert local_reads('''
    def f(flag):
        if flag:
            from src.a import x
        try:
            import src.b as b
        except ImportError:
            b = None
        with open("f") as fh:
            for _ in range(2):
                from src.c import unused
        return x, b.y
    ''') == {("from src.a import x", "x"), ("import src.b", "b.y")}


def test_a_local_import_is_seen_by_nested_functions_and_comprehensions_unless_they_rebind():
    assert local_reads('''
    def f(xs):
        from src.util import helper, other
        def inner():
            return helper(1)
        def shadow(other):
            return other
        def declared():
            nonlocal helper
            return helper
        return [helper(x) for x in xs], inner, shadow, declared
    ''') == {("from src.util import helper", "helper")}


def test_a_local_import_shadows_a_global_of_the_same_name_in_its_function_only():
    src = '''
    def f():
        from src.util import helper
        return helper(1)
    '''
    assert reads(src) == set() and local_reads(src) == {("from src.util import helper", "helper")}
    both = '''
    def f():
        global np
        import numpy as np
        return np.zeros(1)
    '''
    assert reads(both) == {"np.zeros"} and local_reads(both) == {("import numpy", "np.zeros")}


def test_a_class_body_import_counts_as_used_and_module_level_imports_are_bindings_not_reads():
    assert local_reads("class C:\n    from src.util import helper\n") == {("from src.util import helper", "helper")}
    assert local_reads("if True:\n    from src.util import helper\n    helper(1)\n") == set()


def test_global_reads_are_the_same_with_or_without_local_reads():
    src = '''
    def f(a):
        from src.util import helper
        return helper(a) + LIMIT + np.pi
    '''
    node = ast.parse(textwrap.dedent(src)).body[0]
    assert [r for r in code_reads(node) if not isinstance(r, LocalRead)] == list(global_reads(node))
    assert reads(src) == {"LIMIT", "np.pi"}


# -- what a module does to its names at import time ---------------------------------------


def effects(src: str) -> dict[str, list[str]]:
    """name -> the statements (unparsed) of its effects, and `+fn` for a called function."""
    tree = ast.parse(textwrap.dedent(src))
    bindings: dict = {}
    collect_bindings(tree.body, bindings, [])
    out: dict = {}
    collect_effects(tree.body, bindings, out)
    return {k: [ast.unparse(e.stmt) + (f" +{e.func.name}" if e.func else "") for e in v] for k, v in out.items()}


@pytest.mark.parametrize("stmt,names", [
    ('CFG["lr"] = 0.1', ["CFG"]),
    ("CFG.x = 1", ["CFG"]),
    ('CFG["a"]["b"] = 1', ["CFG"]),
    ('CFG["lr"] *= 2', ["CFG"]),
    ("CFG.x: int = 1", ["CFG"]),
    ("CFG.x: int", []),
    ('del CFG["k"], OTHER.y', ["CFG", "OTHER"]),
    ("CFG.update(lr=0.1)", ["CFG"]),
    ("LIST.append(1)", ["LIST"]),
    ('CFG["a"].update(b=1)', ["CFG"]),
    ("np.random.seed(0)", ["np"]),
    ('A["x"], (B.y, *C[0]) = 1, (2, [3])', ["A", "B", "C"]),
    ("X = 1", []),
    ("X += 1", []),
    ("print(1)", []),
    ("make().update(1)", []),
])
def test_mutated_names(stmt, names):
    assert mutated_names(ast.parse(stmt).body[0]) == names


def test_effects_in_source_order_inside_blocks_and_not_under_a_main_guard():
    assert effects('''
    CFG = {}
    CFG["a"] = 1
    if DEBUG:
        CFG["b"] = 2
    else:
        for k in KEYS:
            CFG[k] = 0
    try:
        CFG.update(load())
    except OSError as exc:
        LOG.append(exc)
    def f():
        CFG["c"] = 3
    class K:
        CFG["d"] = 4
    if __name__ == "__main__":
        CFG["e"] = 5
    ''') == {"CFG": ["CFG['a'] = 1", "CFG['b'] = 2", "CFG[k] = 0", "CFG.update(load())"],
              "LOG": ["LOG.append(exc)"]}


def test_a_function_called_at_module_level_counts_toward_what_it_sets():
    assert effects('''
    LR = 0.0
    CFG = {}
    def init(scale):
        global LR, SEED
        LR = 0.1 * scale
        SEED = 1
        CFG["lr"] = LR
        local = {}
        local["x"] = 1
    def not_called():
        global LR
        LR = 9
    init(2)
    print("ready")
    ''') == {"CFG": ["init(2) +init"], "LR": ["init(2) +init"], "SEED": ["init(2) +init"]}
    assert function_sets(ast.parse("def f(a):\n    a.x = 1\n    import m\n    m.y = 2\n    G.z = 3\n").body[0]) \
        == {"G"}


def test_the_block_around_an_effect_is_part_of_it():
    src = "CFG = {}\nfor k in KEYS:\n    CFG[k] = 0\n"
    a = effects_dump(src)
    assert a != effects_dump(src.replace("KEYS", "OTHER_KEYS"))
    assert a != effects_dump("CFG = {}\nif X:\n    pass\nelse:\n    CFG[k] = 0\n")
    assert a == effects_dump("CFG = {}  # c\nfor k in KEYS:   # loop\n    CFG[ k ] = 0\n")


def effects_dump(src: str) -> list[str]:
    tree = ast.parse(src)
    out: dict = {}
    collect_effects(tree.body, {}, out)
    return [e.dump() for e in out["CFG"]]


# -- the closure of a callable -----------------------------------------------------------


@pytest.fixture
def proj(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()

    def write(rel: str, text: str) -> Path:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.stat().st_mtime_ns if path.exists() else None
        path.write_text(textwrap.dedent(text))
        if old is not None:  # a new state even on a coarse clock
            os.utime(path, ns=(old + 10_000_000, old + 10_000_000))
        return path

    write.root = str(root)  # type: ignore[attr-defined]
    return write


def entries(proj, ref: str) -> dict[str, str | None]:
    module = ref.partition(":")[0]
    path = os.path.join(proj.root, *module.split(".")) + ".py"
    if not os.path.exists(path):
        path = os.path.join(proj.root, *module.split("."), "__init__.py")
    return code_entries(proj.root, ref, path)


UTIL = '''
FACTOR = 2


def scale(x):
    return x * FACTOR


def unrelated():
    return 0
'''


def test_helpers_from_another_module_count_unrelated_ones_do_not(proj):
    proj("src/__init__.py", "")
    proj("src/util.py", UTIL)
    proj("src/job.py", '''
        from src.util import scale


        def go():
            return scale(21)


        def other():
            return 1
    ''')
    e = entries(proj, "src.job:go")
    assert set(e) == {"src.job:go", "src.util:scale", "const src.util:FACTOR"}


@pytest.mark.parametrize("imports,call", [
    ("import src.util as u", "u.scale(21)"),
    ("import src.util", "src.util.scale(21)"),
    ("from src import util", "util.scale(21)"),
    ("from . import util", "util.scale(21)"),
    ("from .util import scale", "scale(21)"),
    ("from .util import scale as s", "s(21)"),
    ("from src.util import *", "scale(21)"),
])
def test_names_resolve_through_every_kind_of_import(proj, imports, call):
    proj("src/__init__.py", "")
    proj("src/util.py", UTIL)
    proj("src/job.py", f"{imports}\n\ndef go():\n    return {call}\n")
    e = entries(proj, "src.job:go")
    assert "src.util:scale" in e and "const src.util:FACTOR" in e, e
    assert "src.util:unrelated" not in e


def test_a_namespace_package_without_init_resolves_too(proj):
    proj("src/util.py", UTIL)
    proj("src/job.py", "from src.util import scale\n\ndef go():\n    return scale(1)\n")
    assert "src.util:scale" in entries(proj, "src.job:go")


def test_re_exports_through_a_package_init_are_followed(proj):
    proj("pkg/__init__.py", "from .impl import scale\n")
    proj("pkg/impl.py", UTIL)
    proj("job.py", "import pkg\n\ndef go():\n    return pkg.scale(2)\n")
    e = entries(proj, "job:go")
    assert "pkg.impl:scale" in e and "const pkg.impl:FACTOR" in e, e


def test_same_module_helpers_and_transitive_helpers_count(proj):
    proj("m.py", '''
        def a():
            return b() + 1

        def b():
            return c() * 2

        def c():
            return 3

        def unrelated():
            return a()
    ''')
    assert set(entries(proj, "m:a")) == {"m:a", "m:b", "m:c"}


def test_a_referenced_class_counts_whole_with_its_methods_helpers(proj):
    proj("m.py", '''
        def helper():
            return 1

        class Model:
            def fit(self):
                return self.inner()

            def inner(self):
                return helper()

        def train():
            return Model().fit()
    ''')
    e = entries(proj, "m:train")
    assert set(e) == {"m:train", "m:Model", "m:helper"}


def test_a_method_target_counts_its_class(proj):
    proj("m.py", '''
        class Model:
            def fit(self):
                return self.inner()

            def inner(self):
                return 2
    ''')
    e = entries(proj, "m:Model.fit")
    assert set(e) == {"m:Model.fit", "m:Model"}


def test_constants_count_by_value_plain_or_by_source_otherwise(proj):
    proj("m.py", '''
        EPOCHS = 10
        UNUSED = 1
        CFG = dict(epochs=EPOCHS, scale=helper_factor())

        def helper_factor():
            return 2

        def train():
            return EPOCHS, CFG
    ''')
    e = entries(proj, "m:train")
    assert set(e) == {"m:train", "const m:EPOCHS", "const m:CFG", "m:helper_factor"}
    before = dict(e)
    proj("m.py", '''
        EPOCHS = 0xA  # the same value, written otherwise
        UNUSED = 2
        CFG = dict(epochs=EPOCHS,   scale=helper_factor())

        def helper_factor():
            return 2

        def train():
            return EPOCHS, CFG
    ''')
    assert entries(proj, "m:train") == before
    proj("m.py", '''
        EPOCHS = 11
        UNUSED = 2
        CFG = dict(epochs=EPOCHS, scale=helper_factor())

        def helper_factor():
            return 2

        def train():
            return EPOCHS, CFG
    ''')
    after = entries(proj, "m:train")
    assert [k for k in after if after[k] != before[k]] == ["const m:EPOCHS"]


def test_an_unrelated_edit_changes_nothing_a_helper_edit_changes_the_helper(proj):
    proj("util.py", UTIL)
    proj("job.py", "from util import scale\n\ndef go():\n    return scale(21)\n\ndef other():\n    return 1\n")
    before = entries(proj, "job:go")
    proj("job.py", "from util import scale\n\ndef go():\n    return scale(21)\n\ndef other():\n    return 2\n")
    proj("util.py", UTIL.replace("return 0", "return 5"))
    assert entries(proj, "job:go") == before
    proj("util.py", UTIL.replace("x * FACTOR", "x * FACTOR + 1"))
    after = entries(proj, "job:go")
    assert [k for k in after if after[k] != before[k]] == ["util:scale"]


def test_installed_packages_count_by_version_the_standard_library_not_at_all(proj):
    np = pytest.importorskip("numpy")
    proj("m.py", '''
        import json
        import os.path
        import numpy as np
        from numpy import zeros

        def f():
            return np.mean(zeros(3)), json.dumps({}), os.path.join("a")
    ''')
    e = entries(proj, "m:f")
    assert e == {"m:f": e["m:f"], "pkg numpy": np.__version__}


def test_a_callable_of_an_installed_package_counts_by_its_version(proj):
    np = pytest.importorskip("numpy")
    from pipetool.fingerprint.modules import installed_module_file

    path = installed_module_file(proj.root, "numpy")
    assert code_entries(proj.root, "numpy:mean", path) == {"pkg numpy": np.__version__}


def test_a_callable_outside_the_project_and_any_distribution_counts_by_its_bytes(tmp_path, proj):
    ext = tmp_path / "elsewhere" / "extmod_xyz.py"
    ext.parent.mkdir()
    ext.write_text("def f():\n    return 1\n")
    first = code_entries(proj.root, "extmod_xyz:f", str(ext))
    assert list(first) == ["file extmod_xyz"]
    ext.write_text("def f():\n    return 1  # c\n")
    assert code_entries(proj.root, "extmod_xyz:f", str(ext)) != first


def test_package_of_maps_modules_to_distributions():
    yaml_dist = package_of("yaml")  # PyYAML: a module not named after its distribution
    assert yaml_dist is not None and yaml_dist[0].lower() == "pyyaml" and yaml_dist[1]
    assert package_of("json") is None and package_of("os") is None
    assert package_of("surely_not_installed_xyz") == ("surely_not_installed_xyz", None)


def test_a_syntax_error_in_a_helper_module_is_an_entry_not_a_crash(proj):
    proj("util.py", "def scale(x:\n")
    proj("job.py", "import util\n\ndef go():\n    return util.scale(1)\n")
    e = entries(proj, "job:go")
    assert e["module util"].startswith("unparsable:")


def test_a_syntax_error_in_the_callables_module_is_an_entry(proj):
    proj("job.py", "def go(:\n")
    assert entries(proj, "job:go")["job:go"].startswith("unparsable:")


def test_import_cycles_terminate(proj):
    proj("a.py", "from b import g\n\ndef f():\n    return g()\n")
    proj("b.py", "from a import f\n\ndef g():\n    return f()\n")
    assert set(entries(proj, "a:f")) == {"a:f", "b:g"}


def test_circular_re_exports_terminate(proj):
    proj("a.py", "from b import x\n\ndef f():\n    return x\n")
    proj("b.py", "from a import x\n")
    assert set(entries(proj, "a:f")) == {"a:f"}


def test_a_module_used_as_a_value_counts_whole(proj):
    proj("util.py", UTIL)
    proj("job.py", "import util\n\ndef go(name):\n    return getattr(util, name)(2)\n")
    e = entries(proj, "job:go")
    assert {"module util", "util:scale", "util:unrelated", "const util:FACTOR"} <= set(e)


@pytest.mark.parametrize("body", [
    "from src.util import scale\n    return scale(21)",
    "import src.util as u\n    return u.scale(21)",
    "import src.util\n    return src.util.scale(21)",
    "from src import util\n    return util.scale(21)",
    "from . import util\n    return util.scale(21)",
    "from .util import scale as s\n    return s(21)",
    "if True:\n        from .util import scale\n    return [scale(x) for x in (1, 2)]",
    "from .util import scale\n    def inner():\n        return scale(21)\n    return inner()",
])
def test_imports_inside_the_body_are_followed_like_module_level_ones(proj, body):
    proj("src/__init__.py", "")
    proj("src/util.py", UTIL)
    proj("src/job.py", f"def go():\n    {body}\n")
    assert set(entries(proj, "src.job:go")) == {"src.job:go", "src.util:scale", "const src.util:FACTOR"}


def test_an_import_inside_a_helper_is_followed_and_packages_count_by_version(proj):
    np = pytest.importorskip("numpy")
    proj("src/__init__.py", "")
    proj("src/util.py", UTIL)
    proj("src/steps.py", "def step():\n    import numpy\n    from src.util import scale\n"
         "    return numpy.float64(scale(1))\n")
    proj("src/job.py", "from src.steps import step\n\ndef go():\n    return step()\n")
    e = entries(proj, "src.job:go")
    assert set(e) == {"src.job:go", "src.steps:step", "src.util:scale", "const src.util:FACTOR", "pkg numpy"}
    assert e["pkg numpy"] == np.__version__


def test_a_local_import_binds_its_name_in_its_own_function_only(proj):
    proj("util.py", UTIL)
    proj("extra.py", "def scale(x):\n    return -x\n")
    proj("job.py", '''
        from extra import scale


        def go():
            from util import scale
            return scale(1)


        def glob():
            return scale(2)


        def elsewhere():
            from extra import unrelated
            return unrelated()
    ''')
    assert set(entries(proj, "job:go")) == {"job:go", "util:scale", "const util:FACTOR"}
    assert set(entries(proj, "job:glob")) == {"job:glob", "extra:scale"}


def test_without_local_imports_or_import_time_effects_entries_are_as_before(proj):
    # The digests a project that uses neither construct had: the def's normalized AST,
    # a plain constant by value; an upgrade of pipetool must not rebuild it.
    from pipetool.digests import hash_bytes
    from pipetool.fingerprint.pyast import ast_digest

    path = proj("m.py", "N = 10\n\ndef go():\n    return N\n")
    e = entries(proj, "m:go")
    assert e == {"m:go": ast_digest(module_info(str(path)).tree.body[1]), "const m:N": hash_bytes(b"v:int:10")}


def test_import_time_mutations_count_toward_the_constant(proj):
    base = '''
        CFG = {"lr": 0.01}
        CFG["lr"] = 0.1
        CFG.update(epochs=3)
        OTHER = {}
        OTHER["x"] = 1

        def go():
            return CFG
    '''
    proj("m.py", base)
    before = entries(proj, "m:go")
    assert set(before) == {"m:go", "const m:CFG"}
    for old, new in [('CFG["lr"] = 0.1', 'CFG["lr"] = 0.2'), ("epochs=3", "epochs=4"),
                     ('CFG["lr"] = 0.1', 'del CFG["lr"]')]:
        proj("m.py", base.replace(old, new))
        after = entries(proj, "m:go")
        assert [k for k in after if after[k] != before[k]] == ["const m:CFG"], (old, new)
    proj("m.py", base.replace('OTHER["x"] = 1', 'OTHER["x"] = 2').replace("0.1", "0.1  # same"))
    assert entries(proj, "m:go") == before


def test_a_mutation_reaches_what_it_reads_and_an_imported_name_gets_an_entry(proj):
    proj("util.py", UTIL)
    proj("cfg.py", "CFG = {}\n")
    proj("m.py", '''
        import numpy as np
        from cfg import CFG
        from util import scale

        CFG["lr"] = scale(2)
        np.random.seed(0)

        def go():
            return CFG["lr"], np.random.rand()
    ''')
    e = entries(proj, "m:go")
    assert {"const cfg:CFG", "const m:CFG", "util:scale", "const util:FACTOR", "const m:np"} <= set(e), e


def test_a_global_set_by_a_function_called_at_import_time(proj):
    base = '''
        def _init():
            global LR
            LR = BASE * 2

        BASE = 0.05
        _init()

        def go():
            return LR
    '''
    proj("m.py", base)
    before = entries(proj, "m:go")
    assert set(before) == {"m:go", "const m:LR", "const m:BASE"}
    proj("m.py", base.replace("BASE * 2", "BASE * 3"))
    after = entries(proj, "m:go")
    assert [k for k in after if after[k] != before[k]] == ["const m:LR"]
    proj("m.py", base.replace("_init()\n", "if __name__ == '__main__':\n    _init()\n"))
    assert set(entries(proj, "m:go")) == {"m:go"}  # LR: set by no code that runs on import


def test_a_change_made_to_a_class_at_import_time_counts_toward_the_class(proj):
    base = "class Model:\n    limit = 1\n\nModel.limit = 3\n\ndef go():\n    return Model.limit\n"
    proj("m.py", base)
    before = entries(proj, "m:go")
    assert set(before) == {"m:go", "m:Model"}
    proj("m.py", base.replace("Model.limit = 3", "Model.limit = 4"))
    after = entries(proj, "m:go")
    assert [k for k in after if after[k] != before[k]] == ["m:Model"]


def test_each_file_is_parsed_once_per_state(proj):
    path = str(proj("m.py", "def f():\n    return 1\n"))
    first = module_info(path)
    assert module_info(path) is first
    proj("m.py", "def f():\n    return 2\n")
    assert module_info(path) is not first


def test_a_project_with_a_few_callables_is_fast(proj):
    proj("src/__init__.py", "")
    proj("src/util.py", UTIL + "".join(f"\n\ndef h{i}(x):\n    return scale(x) + {i}\n" for i in range(200)))
    for j in range(5):
        proj(f"src/job{j}.py", "from src.util import h1, h2, scale\n\n"
             "def go():\n    return h1(1) + h2(2) + scale(3)\n")
    for j in range(5):
        entries(proj, f"src.job{j}:go")  # warm: every file parsed
    start = time.perf_counter()
    for j in range(5):
        entries(proj, f"src.job{j}:go")
    assert time.perf_counter() - start < 0.05


# -- script deps by AST -------------------------------------------------------------------


def test_script_deps_hash_by_ast_unless_bytes_is_asked_for(tmp_path):
    (tmp_path / "s.py").write_text("import sys\nprint(sys.argv)\n")
    (tmp_path / "d.txt").write_text("data\n")
    h = Hasher(str(tmp_path))
    ast_before, bytes_before = dep_digest(h, "s.py"), dep_digest(h, "s.py", "bytes")
    assert ast_before.startswith("ast:") and ast_before != bytes_before
    assert dep_digest(h, "d.txt") == h.digest("d.txt")
    (tmp_path / "s.py").write_text('"""Doc."""\nimport sys  # c\n\nprint( sys.argv )\n')
    h = Hasher(str(tmp_path))
    assert dep_digest(h, "s.py") == ast_before
    assert dep_digest(h, "s.py", "bytes") != bytes_before
    (tmp_path / "s.py").write_text("import sys\nprint(sys.argv[1:])\n")
    assert dep_digest(Hasher(str(tmp_path)), "s.py") != ast_before


def test_a_script_dep_that_does_not_parse_is_hashed_by_bytes(tmp_path):
    (tmp_path / "bad.py").write_text("def (:\n")
    h = Hasher(str(tmp_path))
    assert dep_digest(h, "bad.py") == h.digest("bad.py")
    assert dep_digest(h, "missing.py") is None


def test_hash_ast_on_a_file_without_py_suffix(tmp_path):
    (tmp_path / "tool").write_text("print(1)  # c\n")
    h = Hasher(str(tmp_path))
    first = dep_digest(h, "tool", "ast")
    (tmp_path / "tool").write_text("print(1)\n")
    assert dep_digest(Hasher(str(tmp_path)), "tool", "ast") == first
    assert dep_digest(Hasher(str(tmp_path)), "tool") != first


# -- the reason ------------------------------------------------------------------------


def trace(files: dict[str, str | None], ref: str = "src.job:go") -> Trace:
    return Trace(f"python:{ref}@{hash(tuple(sorted(files.items())))}", {}, {}, {}, files)


def test_reason_names_the_changed_helper_or_the_callable_itself():
    old = {"src.job:go": "1", "src.util:scale": "2", "const src.job:N": "3", "pkg numpy": "2.0"}
    then = trace(old).to_dict()
    assert explain_trace(trace({**old, "src.util:scale": "9"}), then) == \
        ["code changed: src.job:go via src.util:scale"]
    assert explain_trace(trace({**old, "src.job:go": "9", "src.util:scale": "9"}), then) == \
        ["code changed: src.job:go"]
    assert explain_trace(trace({**old, "const src.job:N": "9"}), then) == ["code changed: src.job:go via src.job:N"]
    assert explain_trace(trace({**old, "pkg numpy": "2.1"}), then) == \
        ["code changed: src.job:go via numpy 2.0 -> 2.1"]


def test_reason_for_a_record_of_an_older_pipetool_names_the_callable():
    then = {"code": "python:src.job:go@abc", "code_files": {"src/job.py": "1"}}
    assert explain_trace(trace({"src.job:go": "1"}), then) == ["code changed: src.job:go"]
