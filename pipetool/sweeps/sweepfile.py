"""`--sweep FILE`: the sweep's space read from YAML (through `parse_yaml`: YAML 1.2 core
scalars, no tags, bounded aliases and nesting; at most `MAX_FILE_BYTES`, a regular file).

One of:
    grid:   {KEY: [V, …], …}                  # the cartesian product, first key slowest
    list:   [{KEY: V, …}, …]                  # these points, in order (keys may differ)
    random: {n: N, seed: S, space: {KEY: [V, …] | {uniform: [A, B]} | {loguniform: [A, B]}
                                         | {randint: [A, B]}, …}}   # seed optional
A grid or random key may also be `{range: [START, STOP]}` or `{range: [START, STOP, STEP]}`,
read as `range()` in `-S`. Errors are `PipelineError`s (exit 2) naming the file, the line
and column, and the key. `sweep_space` joins a file with the command line's `-S` (single
values only: they are set for every point) and `--random N [--seed S]` (draws N points of
a `grid:` file).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
import stat
from typing import Any, NoReturn

from ..errors import PipelineError, UsageError, Where
from ..spec.jsonvalues import plain
from ..spec.yamlread import Marks, locate, parse_yaml
from .choices import MAX_CHOICES, Choices, Values, canonical, make_draw, make_range, shorten
from .space import Axis, Space, overlap, parse_sets, parse_sweep_args, random_options, validated

MAX_FILE_BYTES = 16 << 20
KINDS = ("grid", "list", "random")
_FORMS = ("uniform", "loguniform", "randint", "range")


def read_bytes(path: str | os.PathLike[str], shown: str) -> bytes:
    """The file's bytes; never blocks on a FIFO or reads a device without end."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise PipelineError(f"sweep file '{shown}' does not exist") from None
    except OSError as exc:
        raise PipelineError(f"sweep file '{shown}' cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PipelineError(f"sweep file '{shown}' is not a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise PipelineError(f"sweep file '{shown}' cannot be read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise PipelineError(f"sweep file '{shown}' is larger than {MAX_FILE_BYTES >> 20} MiB")
    return data


def load_sweep_file(path: str | os.PathLike[str], shown: str | None = None) -> Space:
    """The space a sweep file describes; `shown` is how messages name it (default: path)."""
    name = shown if shown is not None else os.fspath(path)
    value, marks = parse_yaml(read_bytes(path, name), name)
    return _Reader(name, marks).space(value)


@dataclasses.dataclass(frozen=True)
class _Reader:
    """Reads one parsed sweep file; `fail` places each error at the offending text."""

    name: str
    marks: Marks

    def fail(self, what: str, path: tuple = (), key: bool = False) -> NoReturn:
        raise PipelineError(what, locate(self.marks, self.name, path, key) if path else Where(self.name))

    def space(self, doc: Any) -> Space:
        if doc is None:
            self.fail("the sweep file is empty: write grid:, list: or random:")
        if not isinstance(doc, dict) or not doc:
            self.fail(f"a sweep file holds a mapping with one of grid:, list: or random:, not {_kind(doc)}", ())
        for k in doc:
            if k not in KINDS:
                self.fail(f"unknown key '{k}'{_near(k, KINDS)}: a sweep file holds one of grid:, list: or random:",
                          (k,), key=True)
        if len(doc) > 1:
            a, b = list(doc)[:2]
            self.fail(f"a sweep file holds one of grid:, list: or random:, not both {a}: and {b}:", (b,), key=True)
        kind, body = next(iter(doc.items()))

        def fail(what: str) -> NoReturn:
            self.fail(what, (kind,), key=True)

        if kind == "list":
            return validated(Space("list", rows=self.rows(body)), fail)
        if kind == "grid":
            return validated(Space("grid", self.axes(body, ("grid",), random=False)), fail)
        return self.random(body)

    def axes(self, body: Any, at: tuple, random: bool) -> tuple[Axis, ...]:
        where = ":".join(str(p) for p in at)
        if not isinstance(body, dict) or not body:
            self.fail(f"{where}: must map each key to its list of values, not {_kind(body)}", at)
        self.no_overlap(body, at)
        return tuple(Axis(k, self.choices(k, v, at + (k,), random)) for k, v in body.items())

    def choices(self, key: str, value: Any, at: tuple, random: bool) -> Choices:
        if not key.strip():
            self.fail("a key must not be empty", at, key=True)
        label = f"key '{key}'"
        if isinstance(value, list):
            if not value:
                self.fail(f"{label} has no values", at)
            if len(value) > MAX_CHOICES:
                self.fail(f"{label} has {len(value):,} values, more than the {MAX_CHOICES:,} one key may have", at)
            seen: dict[str, int] = {}
            for i, v in enumerate(value):
                self.plain(key, v, at + (i,))
                c = canonical(v)
                if c in seen:
                    self.fail(f"{label}: the value {shorten(c, 40)} is given twice (items {seen[c] + 1} "
                              f"and {i + 1})", at + (i,))
                seen[c] = i
            return Values(tuple(value), "list")
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _FORMS:
            form, args = next(iter(value.items()))
            return self.form(label, form, args, at + (form,), random)
        hint = "{uniform: [A, B]}, {loguniform: [A, B]}, {randint: [A, B]}, " if random else ""
        self.fail(f"{label} must be a list of values (write [V] for one value), {hint}or {{range: [START, STOP]}}, "
                  f"not {_kind(value)}", at)

    def form(self, label: str, form: str, args: Any, at: tuple, random: bool) -> Choices:
        def fail(what: str) -> NoReturn:
            self.fail(f"{label}: {what}", at)

        sizes = (2, 3) if form == "range" else (2,)
        if not isinstance(args, list) or len(args) not in sizes:
            fail(f"{form}: takes {'[START, STOP] or [START, STOP, STEP]' if form == 'range' else '[A, B]'}, "
                 f"not {_kind(args)}")
        for a in args:
            if isinstance(a, bool) or not isinstance(a, (int, float)) or (form == "randint" and isinstance(a, float)):
                fail(f"{form}: {shorten(repr(a), 40)} is not {'an integer' if form == 'randint' else 'a number'}")
            if not math.isfinite(a):
                fail(f"{form}: {a} is not a finite number")
        if form == "range":
            return make_range(args, fail)
        if not random:
            hint = f"; every integer from A to B is {{range: [{args[0]}, {args[1] + 1}]}}" if form == "randint" else ""
            fail(f"{form}: draws need random: (n: N, space: …) or --random N{hint}")
        return make_draw(form, args[0], args[1], fail)

    def plain(self, key: str, value: Any, at: tuple) -> None:
        plain(value, f"sweep file {self.name}", locate(self.marks, self.name, at), (key,), PipelineError)

    def no_overlap(self, keys: Any, at: tuple) -> None:
        pair = overlap(keys)
        if pair:
            self.fail(f"keys '{pair[0]}' and '{pair[1]}' overlap ({pair[1]} is inside {pair[0]}): "
                      "set one or the other", at + (pair[1],), key=True)

    def rows(self, body: Any) -> tuple[dict[str, Any], ...]:
        if not isinstance(body, list) or not body:
            self.fail(f"list: must be a list of points ({{KEY: V, …}}), not {_kind(body)}", ("list",))
        seen: dict[str, int] = {}
        for i, row in enumerate(body):
            at = ("list", i)
            if not isinstance(row, dict) or not row:
                self.fail(f"list item {i + 1} must be a mapping of KEY: VALUE, not {_kind(row)}", at)
            self.no_overlap(row, at)
            for k, v in row.items():
                if not k.strip():
                    self.fail("a key must not be empty", at + (k,), key=True)
                self.plain(k, v, at + (k,))
            c = canonical(row)
            if c in seen:
                self.fail(f"list item {i + 1} is the same point as item {seen[c] + 1}", at)
            seen[c] = i
        return tuple(body)

    def random(self, body: Any) -> Space:
        if not isinstance(body, dict):
            self.fail(f"random: must be a mapping with n:, space: and seed: (optional), not {_kind(body)}",
                      ("random",))
        for k in body:
            if k not in ("n", "seed", "space"):
                self.fail(f"unknown key '{k}' in random:{_near(k, ('n', 'seed', 'space'))} (it takes n:, space: "
                          "and seed:)", ("random", k), key=True)
        for k in ("n", "space"):
            if k not in body:
                self.fail(f"random: needs {k}:" + (" (how many points to draw)" if k == "n" else
                                                   " (each key's values or distribution)"), ("random",), key=True)
        try:
            n, seed, picked = random_options(body["n"], body.get("seed"))
        except UsageError as exc:
            what = exc.message.replace("--random takes", "n: must be", 1).replace("--seed takes", "seed: must be", 1)
            self.fail(what, ("random", "seed" if what.startswith("seed") else "n"))
        axes = self.axes(body["space"], ("random", "space"), random=True)

        def fail_n(what: str) -> NoReturn:
            self.fail(what, ("random", "n"))

        return validated(Space("random", axes, n=n, seed=seed, seed_picked=picked), fail_n)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"the string {shorten(repr(value), 40)}"
    if isinstance(value, list):
        return "an empty list" if not value else f"a list of {len(value)}"
    return "an empty mapping" if not value else "a mapping"


def _near(word: str, options: tuple[str, ...]) -> str:
    m = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean '{m[0]}'?)" if m else ""


def sweep_space(sets: list[str], random_n: int | None, seed: int | None,
                sweep_file: str | os.PathLike[str] | None = None) -> Space:
    """The space of `pipetool sweep [-S …] [--random N [--seed S]] [--sweep FILE]`."""
    if sweep_file is None:
        return parse_sweep_args(sets, random_n, seed)
    shown = os.fspath(sweep_file)
    space = load_sweep_file(sweep_file)
    axes, fixed = parse_sets(sets, random=True)
    if axes:
        raise UsageError(f"-S {axes[0].key}: with --sweep FILE a -S takes one value, set for every point; "
                         f"list the choices in {shown}")
    pair = overlap(list(fixed) + space.keys)
    if pair:
        raise UsageError(f"-S {pair[0] if pair[0] in fixed else pair[1]}: {shown} sweeps "
                         f"{pair[1] if pair[0] in fixed else pair[0]} too; set it in one place")
    space = dataclasses.replace(space, fixed_items=tuple(fixed.items()))
    if random_n is None and seed is None:
        return space
    if space.kind == "list":
        raise UsageError(f"--random/--seed: {shown} lists its points (list:); there is nothing to draw")
    if space.kind == "grid":
        n, s, picked = random_options(random_n, seed)
        return validated(dataclasses.replace(space, kind="random", n=n, seed=s, seed_picked=picked), _usage)
    if random_n is not None:
        raise UsageError(f"--random: {shown} draws its own points (random: n: {space.n}); leave --random out")
    if not space.seed_picked:
        raise UsageError(f"--seed: {shown} sets its own seed (seed: {space.seed}); leave --seed out")
    _, s, _ = random_options(1, seed)
    return dataclasses.replace(space, seed=s, seed_picked=False)


def _usage(what: str) -> NoReturn:
    raise UsageError(what)
