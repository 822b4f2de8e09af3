"""One `-S KEY=CHOICES` of `pipetool sweep`, read Hydra-style into the choices of one key.

Forms (whitespace around items and arguments is ignored):
- `a,b,c`: comma-separated values, each read exactly as `run -S` reads a value (a YAML 1.2
  core scalar, or a quoted or flow value: `'a,b'`, `[8,4]`, `{a: 1}`). Commas inside
  quotes, brackets, braces or parentheses never split. A quote opens a quoted string only
  where a value starts (`don't` is a plain string, as in YAML). An empty item (`1,,2`) is
  an error: write `null` for a null value. A `#` after a blank starts a comment.
- `range(START,STOP[,STEP])`: STOP excluded, STEP 1 by default, negative steps allowed; an
  empty range is an error. All integers give integers (lazily: `range(0,1000000)` is fine
  for `--random`); any float gives floats, stepped in decimal as written, so
  `range(0,1,0.1)` is 0.0, 0.1, …, 0.9 and never 0.30000000000000004; a float range holds
  at most `MAX_CHOICES` values.
- `choice(A,B,…)`: its items may be any values, flow collections included
  (`choice([8,4],[16])`, `choice({a: 1},{a: 2})`); `choice(1)` is a key with one choice.
- `uniform(A,B)` (floats in [A, B)), `loguniform(A,B)` (A, B > 0; log-uniform in [A, B]),
  `randint(A,B)` (integers, B included): only `--random N` draws from these.
- Anything else with no top-level comma is one value (`-S a=[1,2]`, `-S a='x,y'`): it
  sets that param for every point, exactly as `run -S` would.

`name(…)` with an unknown name (`rnage(1,5)`) is an error rather than a string, so that a
typo never becomes a silent constant; quote it to mean the string. Malformed input is a
`UsageError` naming the key and what is wrong (`-S train.lr=range(1,a): 'a' is not a number`).
"""
from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any, NoReturn

from ..errors import PipetoolError, UsageError
from ..jsontext import dumps
from ..spec.jsonvalues import plain
from ..spec.params import parse_override_value
from ..spec.yamlread import core_scalar

MAX_CHOICES = 10_000  # values one list, choice() or float range may hold
FUNCTIONS = ("range", "choice", "uniform", "loguniform", "randint")
DRAWS = ("uniform", "loguniform", "randint")

_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\(")
_CLOSE = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class Values:
    """A finite list of choices. `form`: single (no comma, no function: a fixed value),
    list (`a,b`), choice, or range (a float range; integer ranges are `IntRange`)."""

    items: tuple[Any, ...]
    form: str = "list"

    @property
    def count(self) -> int:
        return len(self.items)

    def at(self, i: int) -> Any:
        return self.items[i]


@dataclass(frozen=True)
class IntRange:
    """`range()` over integers, kept lazy so that `--random` can draw from a huge one."""

    start: int
    stop: int
    step: int = 1

    @property
    def count(self) -> int:
        return max(0, -((self.start - self.stop) // self.step))

    def at(self, i: int) -> int:
        return self.start + i * self.step


@dataclass(frozen=True)
class Draw:
    """A distribution only `--random` draws from; `randint` is discrete (count values)."""

    dist: str  # uniform | loguniform | randint
    low: int | float
    high: int | float

    @property
    def count(self) -> int | None:
        return int(self.high) - int(self.low) + 1 if self.dist == "randint" else None

    def at(self, i: int) -> int:
        return int(self.low) + i

    def __str__(self) -> str:
        return f"{self.dist}({self.low},{self.high})"


Choices = Values | IntRange | Draw


class _Bad(Exception):
    """What is wrong with the text; the caller adds the key and the text."""


def shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_choices(text: str, where: str) -> Choices:
    """The choices `text` lists. `where` is how messages name the key (`-S train.lr`):
    an error reads `-S train.lr=TEXT: what is wrong`."""
    try:
        return _choices(text, where)
    except _Bad as exc:
        raise UsageError(f"{where}={shorten(text)}: {exc}") from None


def _choices(text: str, where: str) -> Choices:
    try:
        items = split_items(text)
    except _Bad:
        if "," in text:
            raise
        items = [text]  # no list: one value, however odd (`a]`), read as run reads it
    if len(items) > 1:
        return Values(_distinct(tuple(_item(item, n, where, text) for n, item in enumerate(items, 1))), "list")
    call = _call(items[0].strip())
    if call is None:
        return Values((_value(text, where, text),), "single")
    return _function(call[0], split_items(call[1]) if call[1].strip() else [], where, text)


def split_items(text: str) -> list[str]:
    """`text` split at its top-level commas (not inside quotes, brackets, braces or
    parentheses), up to a comment (`#` after a blank); raises _Bad on unbalanced text."""
    items: list[str] = []
    stack: list[tuple[str, int]] = []
    start, i, n, at_token = 0, 0, len(text), True
    end = n
    while i < n:
        c = text[i]
        if c in "'\"" and at_token:
            i = _skip_quoted(text, i)
            at_token = False
            continue
        if c == "#" and i > 0 and text[i - 1] in " \t":
            end = i
            break
        if c in _CLOSE:
            stack.append((_CLOSE[c], i))
            at_token = True
        elif c in ")]}":
            if not stack or stack[-1][0] != c:
                raise _Bad(f"'{c}' at character {i + 1} closes nothing")
            stack.pop()
            at_token = False
        elif c == ",":
            if not stack:
                items.append(text[start:i])
                start = i + 1
            at_token = True
        elif c == ":" and stack:
            at_token = True
        elif c not in " \t":
            at_token = False
        i += 1
    if stack:
        at = stack[-1][1]
        raise _Bad(f"'{text[at]}' at character {at + 1} is never closed")
    items.append(text[start:end])
    return items


def _skip_quoted(text: str, i: int) -> int:
    """The index after the quoted string opening at `i` ('' and backslash escapes as YAML)."""
    quote, j, n = text[i], i + 1, len(text)
    while j < n:
        c = text[j]
        if quote == '"' and c == "\\":
            j += 2
            continue
        if c == quote:
            if quote == "'" and j + 1 < n and text[j + 1] == "'":
                j += 2
                continue
            return j + 1
        j += 1
    raise _Bad(f"the quote at character {i + 1} is never closed")


def _call(item: str) -> tuple[str, str] | None:
    """(name, arguments) when `item` is one whole `name(…)`; an unknown name is an error."""
    m = _CALL.match(item)
    if m is None or not item.endswith(")"):
        return None
    name, inner = m.group(1), item[m.end():-1]
    try:
        split_items(inner)
    except _Bad:
        return None  # its parenthesis closes before the end: `f(1)+g(2)`
    if name not in FUNCTIONS:
        near = difflib.get_close_matches(name, FUNCTIONS, n=1)
        hint = f"did you mean '{near[0]}'? " if near else ""
        raise _Bad(f"unknown function '{name}' ({hint}known: {', '.join(FUNCTIONS)}); "
                   f"quote it to mean the string: '{shorten(item, 40)}'")
    return name, inner


def _item(item: str, n: int, where: str, text: str) -> Any:
    stripped = item.strip()
    if not stripped:
        raise _Bad(f"item {n} is empty (write null for a null value)")
    call = _call(stripped)
    if call is not None:
        raise _Bad(f"{call[0]}(…) must be the whole value, not one item of a list")
    return _value(stripped, where, text)


def _value(item: str, where: str, text: str) -> Any:
    """`item` as `run -S` reads a value, and a JSON value."""
    try:
        value = parse_override_value(item)
    except PipetoolError as exc:
        raise _Bad(exc.message.replace(f"-S value {item!r} is", f"{shorten(item, 40)!r} is", 1)) from None
    except UnicodeEncodeError:  # a quoted value holding a byte of argv that is not UTF-8
        raise _Bad(f"{shorten(item, 40)!r} is not UTF-8 text") from None
    return _checked(value, where, text)


def _checked(value: Any, where: str, text: str) -> Any:
    """A JSON value, or a UsageError naming the key and the text (`plain`'s message)."""
    return plain(value, f"{where}={shorten(text)}", None, (where.split(" ", 1)[-1],), UsageError)


def canonical(value: Any) -> str:
    """The text by which two values are the same value: JSON with sorted keys (so `1` and
    `1.0`, `true` and `1` stay different, as they read differently in a command)."""
    return dumps(value, sort_keys=True, separators=(",", ":"))


def _distinct(items: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(items) > MAX_CHOICES:
        raise _Bad(f"{len(items)} choices, more than the {MAX_CHOICES:,} one key may have")
    seen: set[str] = set()
    for v in items:
        c = canonical(v)
        if c in seen:
            raise _Bad(f"the value {shorten(c, 40)} is given twice")
        seen.add(c)
    return items


def _function(name: str, args: list[str], where: str, text: str) -> Choices:
    if name == "choice":
        if not args:
            raise _Bad("choice() needs at least one item")
        items = tuple(_item(a, n, where, text) for n, a in enumerate(args, 1))
        return Values(_distinct(items), "choice")
    if name == "range":
        if len(args) not in (2, 3):
            raise _Bad(f"range() takes START,STOP[,STEP] (2 or 3 numbers), not {len(args)}")
        return make_range([_number(a) for a in args], _raise)
    if len(args) != 2:
        raise _Bad(f"{name}() takes A,B (2 numbers), not {len(args)}")
    low, high = (_number(a, integer=name == "randint") for a in args)
    return make_draw(name, low, high, _raise)


def _raise(what: str) -> NoReturn:
    raise _Bad(what)


def _number(arg: str, integer: bool = False) -> int | float:
    a = arg.strip()
    value = core_scalar(a)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"'{shorten(a, 40)}' is not {'an integer' if integer else 'a number'}")
    if integer and not isinstance(value, int):
        raise _Bad(f"'{shorten(a, 40)}' is not an integer")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Bad(f"'{shorten(a, 40)}' is not a finite number")
    return value


Fail = Callable[[str], NoReturn]


def make_range(nums: list[int | float], fail: Fail) -> IntRange | Values:
    """`range(START,STOP[,STEP])` of checked numbers (the sweep file's form reuses it)."""
    start, stop, step = nums[0], nums[1], nums[2] if len(nums) == 3 else 1
    if step == 0:
        fail("range() step is 0")
    if all(isinstance(x, int) for x in (start, stop, step)):
        r = IntRange(int(start), int(stop), int(step))
        if r.count == 0:
            fail(_empty(start, stop, step))
        return r
    ctx = Context(prec=800)
    d0, d1, ds = (Decimal(repr(x)) if isinstance(x, float) else Decimal(x) for x in (start, stop, step))
    span = ctx.subtract(d1, d0)
    if span == 0 or (span > 0) != (ds > 0):
        fail(_empty(start, stop, step))
    if abs(span) > abs(ctx.multiply(ds, Decimal(MAX_CHOICES))):
        fail(f"the range has more than the {MAX_CHOICES:,} values a float range may have")
    count = int(ctx.divide_int(span, ds)) + (ctx.remainder(span, ds) != 0)
    items = tuple(float(ctx.add(d0, ctx.multiply(ds, Decimal(i)))) for i in range(count))
    try:
        return Values(_distinct(items), "range")
    except _Bad:
        fail(f"the step {step} is too small for floats near {stop}: values repeat")


def _empty(start: float, stop: float, step: float) -> str:
    way = "above" if step > 0 else "below"
    return f"the range is empty: with step {step}, STOP ({stop}) must be {way} START ({start})"


def make_draw(name: str, low: int | float, high: int | float, fail: Fail) -> Draw:
    """`uniform`, `loguniform` or `randint` over checked numbers."""
    if name == "randint":
        if high < low:
            fail(f"randint() is empty: B ({high}) must be at least A ({low}); both are included")
        return Draw(name, low, high)
    if not low < high:
        fail(f"{name}() needs A < B, got {low} and {high}")
    if name == "loguniform" and low <= 0:
        fail(f"loguniform() needs A > 0, got {low}")
    if not math.isfinite(float(high) - float(low)):
        fail(f"{name}() from {low} to {high} is too wide for floats")
    return Draw(name, low, high)
