"""Properties of the sweep space: the grid is the whole product, in order, every point
distinct; random draws are reproducible for a seed, distinct and within their choices;
splitting a `-S` list never breaks inside brackets, braces or quotes."""
from __future__ import annotations

import json
import math
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipetool.errors import PipelineError, UsageError
from pipetool.spec.params import parse_override_value
from pipetool.sweeps.choices import canonical, parse_choices, split_items
from pipetool.sweeps.space import MAX_POINTS, Space, parse_sweep_args, point_id
from pipetool.sweeps.sweepfile import load_sweep_file

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- values and how a user may write them ---------------------------------------------

# Printable ASCII and a few others; DEL and controls are not printable YAML.
TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("éß→中"), max_size=12)
PLAIN_WORD = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda w: w not in ("true", "false", "null", "yes", "no", "on", "off", "inf", "nan"))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: 0.0 if f == 0 else f), TEXT)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)


def single_quoted(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


@st.composite
def written(draw, value=VALUES):
    """(value, a text that YAML reads as it): plain where that is unambiguous, else quoted
    or as JSON flow (JSON is YAML flow), with blanks around."""
    v = draw(value)
    if isinstance(v, str):
        forms = [json.dumps(v), single_quoted(v)]
    elif v is None or isinstance(v, (bool, int)):
        forms = [json.dumps(v)]
    elif isinstance(v, float):
        forms = [repr(v)]
    else:
        forms = [json.dumps(v), json.dumps(v, ensure_ascii=False, separators=(",", ":"))]
    text = draw(st.sampled_from(forms))
    pad = draw(st.sampled_from(["", " ", "  "]))
    return v, pad + text + pad


WORDS = st.lists(PLAIN_WORD, min_size=1, max_size=5, unique=True)
AXES = st.lists(st.tuples(PLAIN_WORD, WORDS), min_size=1, max_size=4, unique_by=lambda kv: kv[0])


def choices_text(words: list[str]) -> str:
    return ",".join(words) if len(words) > 1 else f"choice({words[0]})"


# ---- splitting -------------------------------------------------------------------------


@SETTINGS
@given(st.lists(written(), min_size=2, max_size=6, unique_by=lambda vt: canonical(vt[0])))
def test_a_comma_list_gives_back_exactly_the_values_written(items):
    text = ",".join(t for _, t in items)
    assert len(split_items(text)) == len(items)  # no comma inside a quote, bracket or brace split
    c = parse_choices(text, "-S k")
    got = [c.at(i) for i in range(c.count)]
    assert [canonical(v) for v in got] == [canonical(v) for v, _ in items]
    assert got == [parse_override_value(t) for _, t in items]  # each item read as run -S reads it


@SETTINGS
@given(st.lists(written(), min_size=1, max_size=6, unique_by=lambda vt: canonical(vt[0])))
def test_choice_gives_back_exactly_the_values_written(items):
    c = parse_choices("choice(" + ",".join(t for _, t in items) + ")", "-S k")
    assert [canonical(c.at(i)) for i in range(c.count)] == [canonical(v) for v, _ in items]


@SETTINGS
@given(written())
def test_one_value_is_read_as_run_reads_it(item):
    value, text = item
    c = parse_choices(text, "-S k")
    assert c.count == 1 and canonical(c.at(0)) == canonical(value) == canonical(parse_override_value(text))


# ---- the grid --------------------------------------------------------------------------


@SETTINGS
@given(AXES)
def test_the_grid_is_the_whole_product_in_order_and_every_point_is_distinct(axes):
    space = parse_sweep_args([f"{k}={choices_text(ws)}" for k, ws in axes], None, None)
    points = space.points()
    assert len(points) == space.size == math.prod(len(ws) for _, ws in axes)
    assert len({p.id for p in points}) == len(points)
    assert space.keys == [k for k, _ in axes]
    for p in points:  # the index in mixed radix, the first key the most significant digit
        rest, digits = p.index, []
        for _, ws in reversed(axes):
            rest, d = divmod(rest, len(ws))
            digits.append(d)
        assert p.values == {k: ws[d] for (k, ws), d in zip(axes, reversed(digits))}


@SETTINGS
@given(st.lists(st.integers(1, 200), min_size=1, max_size=4))
def test_a_grid_is_built_exactly_when_it_fits_the_cap(sizes):
    sets = [f"k{i}=range(0,{n})" for i, n in enumerate(sizes)]
    total = math.prod(sizes)
    try:
        space = parse_sweep_args(sets, None, None)
    except Exception as exc:
        assert total > MAX_POINTS and "more than the 10,000" in str(exc)
    else:
        assert total <= MAX_POINTS and space.size == total


# ---- random draws ----------------------------------------------------------------------


@SETTINGS
@given(AXES, st.integers(0, 2**63 - 1), st.data())
def test_random_from_a_grid_is_reproducible_distinct_and_within_it(axes, seed, data):
    sets = [f"{k}={choices_text(ws)}" for k, ws in axes]
    total = math.prod(len(ws) for _, ws in axes)
    n = data.draw(st.integers(1, total))
    space = parse_sweep_args(sets, n, seed)
    points = space.points()
    assert [p.values for p in points] == [p.values for p in parse_sweep_args(sets, n, seed).points()]
    assert [p.values for p in points] == [p.values for p in Space.from_json(space.to_json()).points()]
    assert len(points) == n and len({p.id for p in points}) == n
    grid_ids = {p.id for p in parse_sweep_args(sets, None, None).points()}
    assert {p.id for p in points} <= grid_ids


@SETTINGS
@given(st.integers(0, 2**63 - 1), st.integers(1, 50),
       st.floats(-1e6, 1e6), st.floats(1e-6, 1e6), st.floats(1e-8, 1.0), st.floats(1.0001, 1e4),
       st.integers(-1000, 1000), st.integers(0, 10**12))
def test_random_from_distributions_is_reproducible_distinct_and_in_bounds(seed, n, lo, width, llo, lratio, ilo, iwidth):
    sets = [f"u=uniform({lo!r},{lo + width!r})", f"l=loguniform({llo!r},{llo * lratio!r})",
            f"i=randint({ilo},{ilo + iwidth})"]
    space = parse_sweep_args(sets, n, seed)
    points = space.points()
    assert [p.values for p in points] == [p.values for p in parse_sweep_args(sets, n, seed).points()]
    assert len({p.id for p in points}) == n == len(points)
    for p in points:
        u, lg, i = p.values["u"], p.values["l"], p.values["i"]
        assert lo <= u < lo + width and llo <= lg <= llo * lratio and ilo <= i <= ilo + iwidth
        assert type(i) is int and type(u) is float and type(lg) is float


@SETTINGS
@given(VALUES, VALUES)
def test_point_id_is_equal_exactly_when_the_canonical_values_are(a, b):
    assert (point_id({"k": a}) == point_id({"k": b})) == (canonical(a) == canonical(b))


# ---- hostile input ---------------------------------------------------------------------

HOSTILE = st.lists(st.sampled_from([
    ",", "'", '"', "\\", "[", "]", "{", "}", "(", ")", ":", " ", "#", " #", "range(", "choice(", "uniform(",
    "randint(", "loguniform(", "rnage(", "1", "-1", "0.5", "1e400", ".nan", "a", "!!str ", "&x ", "*x", "\n", "\t",
    "é", "\udcff", "\x00"]), max_size=14).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(HOSTILE, st.text(max_size=30)))
def test_any_text_is_choices_or_a_usage_error_naming_the_key(text):
    try:
        c = parse_choices(text, "-S k")
    except UsageError as exc:
        assert exc.message.startswith(("-S k=", "param 'k")) and exc.exit_code == 2
    else:
        assert c.count is None or c.count >= 1
        if c.count is not None:
            for i in range(min(c.count, 50)):
                canonical(c.at(i))  # a JSON value


SWEEP_WORDS = st.sampled_from(["grid", "list", "random", "n", "seed", "space", "uniform", "loguniform", "randint",
                               "range", "a", "a.b", "b", ""])
SWEEP_DOCS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 50), st.floats(), PLAIN_WORD),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(SWEEP_WORDS, inner, max_size=3), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["grid", "list", "random"]), SWEEP_DOCS, min_size=1, max_size=2))
def test_any_sweep_file_is_a_space_or_an_error_naming_the_file(doc):
    import tempfile

    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.yaml")
        with open(path, "w") as f:
            f.write(yaml.safe_dump(doc))
        try:
            space = load_sweep_file(path, "s.yaml")
        except PipelineError as exc:
            assert exc.where is not None and exc.where.file == "s.yaml" and exc.exit_code == 2
            return
        try:
            points = space.points()
        except UsageError as exc:  # too few distinct values to draw from
            assert exc.message.startswith("could not draw")
            return
        assert len(points) == space.size and len({p.id for p in points}) == len(points)
