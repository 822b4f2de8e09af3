"""The parameter space of a sweep and the list of its points (pure: nothing runs here).

- **grid** (`-S` choices, or `grid:` in a sweep file): the cartesian product of the keys'
  choices in the order the keys were given, the first key varying slowest (`-S a=1,2 -S
  b=x,y` gives a=1,b=x; a=1,b=y; a=2,b=x; a=2,b=y), as Hydra's multirun lists jobs.
- **list** (`list:` in a sweep file): the points as written, in order.
- **random** (`--random N`, or `random:`): N distinct points drawn with `random.Random(seed)`
  (see `draws.py`): when every key is discrete (lists, ranges, `choice`, `randint`) N
  distinct indices of the grid, without replacement, so N larger than the grid is an error;
  otherwise each key is drawn in key order and a point equal to an earlier one is drawn
  again (`MAX_REDRAWS` times in all, then an error). Points come in draw order. Without
  `--seed` a seed is picked and kept in `Space.seed` (with `seed_picked`): the points are
  a function of `Space.to_json()` alone, which is what a sweep records.

A point is identified by its values (`point_id`: a digest of their canonical JSON, keys
sorted), so the same values are the same point across `--resume`; `1` and `1.0` are two
points, as they read differently in a command. A grid or list that repeats a value or a
point is refused. A sweep has at most `MAX_POINTS` points, checked before any is built.
A single-value `-S` is not a key: it is in `fixed` and set for every point.
"""
from __future__ import annotations

import copy
import itertools
import math
import random
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

from ..digests import hash_bytes
from ..errors import StateError, UsageError
from .choices import DRAWS, Choices, Draw, IntRange, Values, canonical, make_draw, make_range, parse_choices, shorten
from .draws import below, draw, sample_distinct

MAX_POINTS = 10_000
MAX_SEED = 2**63 - 1  # fits a signed 64-bit integer (SQLite, JSON readers with int64)
MAX_REDRAWS = 1_000

Fail = Callable[[str], NoReturn]


@dataclass(frozen=True)
class Axis:
    """One swept key and its choices."""

    key: str
    choices: Choices


@dataclass(frozen=True)
class Point:
    """One point: the swept keys' values, in key order, and its place in the sweep."""

    index: int
    values: dict[str, Any]

    @property
    def id(self) -> str:
        return point_id(self)


def point_id(point: Point | dict[str, Any]) -> str:
    """A short stable digest of a point's values (keys sorted): equal values, equal id."""
    values = point.values if isinstance(point, Point) else point
    return hash_bytes(b"pipetool-sweep-point\0" + canonical(values).encode("ascii"))[:16]


@dataclass(frozen=True)
class Space:
    """What the user asked to sweep; `points()` lists it. Made by `parse_sweep_args`,
    `sweepfile.load_sweep_file` or `from_json`, which check it whole."""

    kind: str  # grid | list | random
    axes: tuple[Axis, ...] = ()
    rows: tuple[dict[str, Any], ...] = ()
    fixed_items: tuple[tuple[str, Any], ...] = ()
    n: int | None = None
    seed: int | None = None
    seed_picked: bool = False

    @property
    def keys(self) -> list[str]:
        """The keys that vary, in the order given (a list's: in order of first use)."""
        if self.kind == "list":
            return list(dict.fromkeys(k for row in self.rows for k in row))
        return [a.key for a in self.axes]

    @property
    def fixed(self) -> dict[str, Any]:
        """Single-value `-S`: set for every point."""
        return copy.deepcopy(dict(self.fixed_items))

    def grid_size(self) -> int | None:
        """How many points the axes make (None when a key is continuous)."""
        counts = [a.choices.count for a in self.axes]
        return None if None in counts else math.prod(c for c in counts if c is not None)

    @property
    def size(self) -> int:
        """How many points `points()` gives."""
        if self.kind == "list":
            return len(self.rows)
        if self.kind == "random":
            return self.n or 0
        return self.grid_size() or 0

    def points(self) -> list[Point]:
        if self.kind == "list":
            keys = self.keys
            return [Point(i, {k: copy.deepcopy(row[k]) for k in keys if k in row}) for i, row in enumerate(self.rows)]
        if self.kind == "grid":
            lists = [[a.choices.at(i) for i in range(_count(a))] for a in self.axes]
            return [self._point(i, combo) for i, combo in enumerate(itertools.product(*lists))]
        return self._random_points()

    def _point(self, index: int, values: Iterable[Any]) -> Point:
        return Point(index, {a.key: copy.deepcopy(v) for a, v in zip(self.axes, values)})

    def _at(self, index: int) -> list[Any]:
        """The values of grid point `index` (mixed radix, the first key the most significant)."""
        out: list[Any] = []
        for a in reversed(self.axes):
            index, digit = divmod(index, _count(a))
            out.append(a.choices.at(digit))
        return out[::-1]

    def _random_points(self) -> list[Point]:
        rng = random.Random(self.seed)
        n = self.n or 0
        total = self.grid_size()
        if total is not None:
            return [self._point(i, self._at(ix)) for i, ix in enumerate(sample_distinct(rng, total, n))]
        points: list[Point] = []
        seen: set[str] = set()
        redraws = 0
        while len(points) < n:
            values = [_draw_one(rng, a.choices) for a in self.axes]
            point = self._point(len(points), values)
            key = canonical(point.values)
            if key not in seen:
                seen.add(key)
                points.append(point)
                continue
            redraws += 1
            if redraws > MAX_REDRAWS:
                raise UsageError(f"could not draw {n:,} distinct points: {MAX_REDRAWS:,} draws repeated an earlier "
                                 f"point after {len(points):,} were found ({self.describe()} has too few values)")
        return points

    def describe(self) -> str:
        """`a: 3 × b: range(0,10) × c: uniform(0,1)`: for messages."""
        return " × ".join(f"{a.key}: {_shown(a.choices)}" for a in self.axes) or f"{len(self.rows)} rows"

    def to_json(self) -> dict[str, Any]:
        """All `points()` depends on, as JSON values (the seed too when it was picked)."""
        return copy.deepcopy({
            "kind": self.kind, "axes": [_axis_json(a) for a in self.axes], "rows": list(self.rows),
            "fixed": dict(self.fixed_items), "n": self.n, "seed": self.seed, "seed_picked": self.seed_picked})

    @classmethod
    def from_json(cls, data: Any) -> Space:
        """The space `to_json` recorded; anything malformed is a StateError."""
        def fail(what: str) -> NoReturn:
            raise StateError(f"the recorded sweep space is malformed: {what}")

        try:
            space = cls(data["kind"], tuple(Axis(a["key"], _choices_json(a)) for a in data["axes"]),
                        tuple(dict(r) for r in data["rows"]), tuple(dict(data["fixed"]).items()),
                        data["n"], data["seed"], bool(data["seed_picked"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            fail(f"{type(exc).__name__}: {exc}")
        return validated(space, fail)


def _count(a: Axis) -> int:
    c = a.choices.count
    assert c is not None, "a grid axis is discrete"
    return c


def _draw_one(rng: random.Random, c: Choices) -> Any:
    if isinstance(c, Draw):
        return draw(rng, c)
    return c.at(below(rng, c.count))


def _shown(c: Choices) -> str:
    if isinstance(c, IntRange):
        return f"range({c.start},{c.stop},{c.step})"
    return str(c) if isinstance(c, Draw) else f"{c.count} values"


def _axis_json(a: Axis) -> dict[str, Any]:
    c = a.choices
    if isinstance(c, IntRange):
        return {"key": a.key, "range": [c.start, c.stop, c.step]}
    if isinstance(c, Draw):
        return {"key": a.key, "draw": c.dist, "low": c.low, "high": c.high}
    return {"key": a.key, "values": list(c.items), "form": c.form}


def _choices_json(a: dict[str, Any]) -> Choices:
    def bad(what: str) -> NoReturn:
        raise ValueError(what)

    if "range" in a:
        nums = list(a["range"])
        if len(nums) != 3 or not all(type(x) is int for x in nums):
            bad(f"a range of {nums!r}")
        return make_range(nums, bad)
    if "draw" in a:
        dist, low, high = a["draw"], a["low"], a["high"]
        if dist not in DRAWS or not all(type(x) in (int, float) for x in (low, high)):
            bad(f"a draw of {dist!r} from {low!r} to {high!r}")
        return make_draw(dist, low, high, bad)
    items, form = tuple(a["values"]), a["form"]
    if not items or form not in ("single", "list", "choice", "range"):
        bad(f"{len(items)} values of form {form!r}")
    return Values(items, form)


def overlap(keys: Iterable[str]) -> tuple[str, str] | None:
    """Two keys where one is inside the other (`train` and `train.lr`), else None."""
    ordered = sorted(keys)
    for a, b in itertools.pairwise(ordered):
        if a == b or b.startswith(a + "."):
            return a, b
    return None


def validated(space: Space, fail: Fail) -> Space:
    """`space`, once its size, seed and draw count fit; else `fail(what is wrong)`."""
    if space.kind not in ("grid", "list", "random"):
        fail(f"unknown kind {space.kind!r}")
    if space.kind == "list":
        if not space.rows:
            fail("the list has no points")
        if len(space.rows) > MAX_POINTS:
            fail(f"the list has {len(space.rows):,} points, more than the {MAX_POINTS:,} a sweep may have")
        return space
    if not space.axes:
        fail("nothing to sweep")
    total = space.grid_size()
    if space.kind == "grid":
        for a in space.axes:
            if isinstance(a.choices, Draw):
                fail(f"{a.key}: {a.choices}: {_needs_random(a.choices)}")
        if total is not None and total > MAX_POINTS:
            fail(f"the grid has {total:,} points ({space.describe()}), more than the {MAX_POINTS:,} a sweep may "
                 "have: narrow the choices, or draw some of them with --random N")
        return space
    n, seed = space.n, space.seed
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_POINTS:
        fail(f"the number of points to draw must be an integer from 1 to {MAX_POINTS:,}, not {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        fail(f"the seed must be an integer from 0 to {MAX_SEED}, not {seed!r}")
    if total is not None and n > total:
        fail(f"cannot draw {n:,} distinct points from a space of {total:,} ({space.describe()})")
    return space


def _needs_random(d: Draw) -> str:
    hint = f" (every integer from A to B is range({d.low},{int(d.high) + 1}))" if d.dist == "randint" else ""
    return f"{d.dist}() draws need --random N{hint}"


def parse_sweep_args(sets: list[str], random_n: int | None, seed: int | None) -> Space:
    """The space `pipetool sweep -S KEY=CHOICES … [--random N [--seed S]]` asks for."""
    n, seed, picked = random_options(random_n, seed)
    axes, fixed = parse_sets(sets, random=n is not None)
    if not axes:
        raise UsageError("nothing to sweep: no -S lists choices (e.g. -S train.lr=0.001,0.01,0.1); "
                         "a -S with one value sets that param for every point")
    return validated(Space("random" if n else "grid", tuple(axes), (), tuple(fixed.items()), n, seed, picked), _usage)


def _usage(what: str) -> NoReturn:
    raise UsageError(what)


def random_options(random_n: int | None, seed: int | None) -> tuple[int | None, int | None, bool]:
    """(N, seed, picked) from `--random N --seed S`; a seed is picked when none is given."""
    if random_n is None:
        if seed is not None:
            raise UsageError("--seed needs --random N (a grid draws nothing)")
        return None, None, False
    if isinstance(random_n, bool) or not isinstance(random_n, int) or not 1 <= random_n <= MAX_POINTS:
        raise UsageError(f"--random takes the number of points to draw, from 1 to {MAX_POINTS:,}, not {random_n!r}")
    if seed is None:
        return random_n, secrets.randbelow(2**32), True
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed takes an integer from 0 to {MAX_SEED}, not {seed!r}")
    return random_n, seed, False


def parse_sets(sets: list[str], random: bool) -> tuple[list[Axis], dict[str, Any]]:
    """The swept keys' choices and the fixed values of `-S KEY=CHOICES`, in the order given."""
    axes: list[Axis] = []
    fixed: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for pair in sets:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-S takes KEY=CHOICES (e.g. -S train.lr=0.01,0.1), got {shorten(pair)!r}")
        if key in texts:
            raise UsageError(f"-S {key} is given twice ({key}={shorten(texts[key], 40)} and "
                             f"{key}={shorten(text, 40)}): list its choices in one -S")
        texts[key] = text
        choices = parse_choices(text, f"-S {key}")
        if isinstance(choices, Draw) and not random:
            raise UsageError(f"-S {key}={shorten(text)}: {_needs_random(choices)}")
        if isinstance(choices, Values) and choices.form == "single":
            fixed[key] = choices.items[0]
        else:
            axes.append(Axis(key, choices))
    pair_ = overlap(texts)
    if pair_:
        raise UsageError(f"-S {pair_[0]} and -S {pair_[1]} overlap ({pair_[1]} is inside {pair_[0]}): "
                         "set one or the other")
    return axes, fixed
