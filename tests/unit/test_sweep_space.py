"""sweep space: `-S KEY=CHOICES` forms, the sweep file, grid order, random draws, point ids.

Every error is pinned by its exact message: a user reads them, and a changed word should
be a decision, not an accident.
"""
from __future__ import annotations

import os
import random
import time

import pytest

from pipetool.errors import EXIT_INVALID, PipelineError, StateError, UsageError
from pipetool.spec.params import parse_override_value
from pipetool.sweeps.choices import Draw, IntRange, Values, parse_choices, split_items
from pipetool.sweeps.draws import below, draw, sample_distinct
from pipetool.sweeps.space import MAX_POINTS, Space, parse_sweep_args, point_id
from pipetool.sweeps.sweepfile import MAX_FILE_BYTES, load_sweep_file, sweep_space

JSON_ONLY = "params must be JSON values: null, true/false, finite numbers, strings, lists and mappings with string keys"


def items(text: str) -> list:
    c = parse_choices(text, "-S k")
    assert not isinstance(c, Draw)
    return [c.at(i) for i in range(c.count)]


def values(space: Space) -> list[dict]:
    return [p.values for p in space.points()]


# ---- -S KEY=CHOICES: the forms -------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("0.001,0.01,0.1", [0.001, 0.01, 0.1]),
    ("a,b", ["a", "b"]),
    ("1,1.0,true,null,x", [1, 1.0, True, None, "x"]),  # YAML 1.2 core scalars, as run -S reads them
    ("1e-3,0x10,010", [0.001, 16, 10]),
    (" 1 ,  2 ", [1, 2]),
    ("'a,b',c", ["a,b", "c"]),
    ("'it''s, ok',\"x\\\",y\"", ["it's, ok", 'x",y']),
    ("don't,x", ["don't", "x"]),  # a quote inside a plain value is a character
    ("[8,4],[16]", [[8, 4], [16]]),
    ("{a: 1, b: [2, 3]},{a: 2}", [{"a": 1, "b": [2, 3]}, {"a": 2}]),
    ("x#y,z", ["x#y", "z"]),
    ("1,2 # why these", [1, 2]),
    ("'#',\"a # b\"", ["#", "a # b"]),
    ("(a,b),c", ["(a,b)", "c"]),
])
def test_a_comma_list_reads_each_item_as_run_reads_a_value(text, expected):
    c = parse_choices(text, "-S k")
    assert isinstance(c, Values) and c.form == "list"
    assert list(c.items) == expected
    assert [type(v) for v in c.items] == [type(v) for v in expected]


@pytest.mark.parametrize("text", [
    "0.1", "x", "", "[1,2]", "{a: 1, b: 2}", "'x,y'", '"a,b"', "a]", "x[1", "x#y", "1 # comment", "x # c,y", "it's",
    "  7  "])
def test_a_value_with_no_comma_and_no_function_is_one_fixed_value_as_run_reads_it(text):
    c = parse_choices(text, "-S k")
    assert c == Values((parse_override_value(text),), "single")


@pytest.mark.parametrize("text, expected", [
    ("range(1,5)", [1, 2, 3, 4]),
    ("range(0,10,3)", [0, 3, 6, 9]),
    ("range(5,0,-2)", [5, 3, 1]),
    ("range(-3,0)", [-3, -2, -1]),
    ("range( 1 , 3 )", [1, 2]),
    ("range(0x10,0x12)", [16, 17]),
    ("range(0,1)", [0]),
])
def test_an_integer_range_excludes_stop_and_gives_integers(text, expected):
    c = parse_choices(text, "-S k")
    assert isinstance(c, IntRange)
    assert items(text) == expected
    assert all(type(v) is int for v in items(text))


@pytest.mark.parametrize("text, expected", [
    ("range(0,1,0.1)", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
    ("range(0,0.3,0.1)", [0.0, 0.1, 0.2]),
    ("range(1,2.5)", [1.0, 2.0]),
    ("range(1,0,-0.25)", [1.0, 0.75, 0.5, 0.25]),
    ("range(1e-3,4e-3,1e-3)", [0.001, 0.002, 0.003]),
])
def test_a_float_range_is_stepped_in_decimal_as_written(text, expected):
    assert items(text) == expected  # exact: 0.3, never 0.30000000000000004
    assert all(type(v) is float for v in items(text))


@pytest.mark.parametrize("text, expected", [
    ("range(1,3) # why", IntRange(1, 3)),
    ("uniform(0,1) # why, and how", Draw("uniform", 0, 1)),
    ("choice(a,b) # c", Values(("a", "b"), "choice")),
])
def test_a_comment_after_a_function_is_a_comment(text, expected):
    assert parse_choices(text, "-S k") == expected


def test_an_integer_range_is_lazy_so_random_can_draw_from_a_huge_one():
    c = parse_choices("range(0,1000000000000)", "-S seed")
    assert isinstance(c, IntRange) and c.count == 10**12 and c.at(10**12 - 1) == 10**12 - 1


@pytest.mark.parametrize("text, expected", [
    ("choice([8,4],[16])", [[8, 4], [16]]),
    ("choice({a: 1},{a: 2})", [{"a": 1}, {"a": 2}]),
    ("choice('a,b', c)", ["a,b", "c"]),
    ("choice(1)", [1]),
    ("choice( x , [1, [2, 3]] )", ["x", [1, [2, 3]]]),
])
def test_choice_items_may_be_flow_values_and_commas_inside_never_split(text, expected):
    c = parse_choices(text, "-S k")
    assert isinstance(c, Values) and c.form == "choice" and list(c.items) == expected


@pytest.mark.parametrize("text, expected", [
    ("uniform(0,1)", Draw("uniform", 0, 1)),
    ("uniform(-1.5, 2)", Draw("uniform", -1.5, 2)),
    ("loguniform(1e-4,1e-1)", Draw("loguniform", 0.0001, 0.1)),
    ("randint(1,3)", Draw("randint", 1, 3)),
    ("randint(-2,-2)", Draw("randint", -2, -2)),
])
def test_distributions(text, expected):
    assert parse_choices(text, "-S k") == expected


def test_split_items_splits_only_at_top_level_commas():
    assert split_items("a,[b,c],{d: e, f: g},'h,i',\"j,k\",(l,m)") == [
        "a", "[b,c]", "{d: e, f: g}", "'h,i'", '"j,k"', "(l,m)"]


# ---- -S KEY=CHOICES: every error -----------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("range(1,a)", "-S train.lr=range(1,a): 'a' is not a number"),
    ("range(1,true)", "-S train.lr=range(1,true): 'true' is not a number"),
    ("range(1)", "-S train.lr=range(1): range() takes START,STOP[,STEP] (2 or 3 numbers), not 1"),
    ("range()", "-S train.lr=range(): range() takes START,STOP[,STEP] (2 or 3 numbers), not 0"),
    ("range(1,2,3,4)", "-S train.lr=range(1,2,3,4): range() takes START,STOP[,STEP] (2 or 3 numbers), not 4"),
    ("range(5,1)", "-S train.lr=range(5,1): the range is empty: with step 1, STOP (1) must be above START (5)"),
    ("range(1,5,-1)", "-S train.lr=range(1,5,-1): the range is empty: with step -1, STOP (5) must be below START (1)"),
    ("range(1,1)", "-S train.lr=range(1,1): the range is empty: with step 1, STOP (1) must be above START (1)"),
    ("range(0.5,0.5)", "-S train.lr=range(0.5,0.5): the range is empty: with step 1, STOP (0.5) must be above START (0.5)"),
    ("range(0,1,0)", "-S train.lr=range(0,1,0): range() step is 0"),
    ("range(0,1,0.0)", "-S train.lr=range(0,1,0.0): range() step is 0"),
    ("range(0,.inf)", "-S train.lr=range(0,.inf): '.inf' is not a finite number"),
    ("range(0,1,1e-5)", "-S train.lr=range(0,1,1e-5): the range has more than the 10,000 values a float range may have"),
    ("range(0, 1e300, 1e-300)",
     "-S train.lr=range(0, 1e300, 1e-300): the range has more than the 10,000 values a float range may have"),
    ("range(1e16,1.0000000000000002e16,0.5)",
     ("-S train.lr=range(1e16,1.0000000000000002e16,0.5): the step 0.5 is too small for floats near 1.0000000000000002e+16: "
     "values repeat")),
    ("choice()", "-S train.lr=choice(): choice() needs at least one item"),
    ("choice(1,1)", "-S train.lr=choice(1,1): the value 1 is given twice"),
    ("choice(range(1,3))", "-S train.lr=choice(range(1,3)): range(…) must be the whole value, not one item of a list"),
    ("choice(1,,2)", "-S train.lr=choice(1,,2): item 2 is empty (write null for a null value)"),
    ("uniform(1,0)", "-S train.lr=uniform(1,0): uniform() needs A < B, got 1 and 0"),
    ("uniform(1,1)", "-S train.lr=uniform(1,1): uniform() needs A < B, got 1 and 1"),
    ("uniform(0)", "-S train.lr=uniform(0): uniform() takes A,B (2 numbers), not 1"),
    ("uniform(a,1)", "-S train.lr=uniform(a,1): 'a' is not a number"),
    ("uniform(-1e308,1e308)", "-S train.lr=uniform(-1e308,1e308): uniform() from -1e+308 to 1e+308 is too wide for floats"),
    ("loguniform(0,1)", "-S train.lr=loguniform(0,1): loguniform() needs A > 0, got 0"),
    ("loguniform(-2,-1)", "-S train.lr=loguniform(-2,-1): loguniform() needs A > 0, got -2"),
    ("randint(1,2.0)", "-S train.lr=randint(1,2.0): '2.0' is not an integer"),
    ("randint(x,2)", "-S train.lr=randint(x,2): 'x' is not an integer"),
    ("randint(3,1)", "-S train.lr=randint(3,1): randint() is empty: B (1) must be at least A (3); both are included"),
    ("rnage(1,5)", ("-S train.lr=rnage(1,5): unknown function 'rnage' (did you mean 'range'? known: range, choice, "
                   "uniform, loguniform, randint); quote it to mean the string: 'rnage(1,5)'")),
    ("rnage(1,5) # typo", ("-S train.lr=rnage(1,5) # typo: unknown function 'rnage' (did you mean 'range'? known: "
                           "range, choice, uniform, loguniform, randint); quote it to mean the string: 'rnage(1,5)'")),
    ("f(x)", ("-S train.lr=f(x): unknown function 'f' (known: range, choice, uniform, loguniform, randint); "
             "quote it to mean the string: 'f(x)'")),
    ("1,1", "-S train.lr=1,1: the value 1 is given twice"),
    ("{a: 1, b: 2},{b: 2, a: 1}", "-S train.lr={a: 1, b: 2},{b: 2, a: 1}: the value {\"a\":1,\"b\":2} is given twice"),
    ("1,,2", "-S train.lr=1,,2: item 2 is empty (write null for a null value)"),
    ("1,2,", "-S train.lr=1,2,: item 3 is empty (write null for a null value)"),
    (",", "-S train.lr=,: item 1 is empty (write null for a null value)"),
    ("range(1,3),4", "-S train.lr=range(1,3),4: range(…) must be the whole value, not one item of a list"),
    ("1,choice(2,3)", "-S train.lr=1,choice(2,3): choice(…) must be the whole value, not one item of a list"),
    ("x,[1", "-S train.lr=x,[1: '[' at character 3 is never closed"),
    ("x,{a: [1}", "-S train.lr=x,{a: [1}: '}' at character 9 closes nothing"),
    ("a],b", "-S train.lr=a],b: ']' at character 2 closes nothing"),
    ("'a,b", "-S train.lr='a,b: the quote at character 1 is never closed"),
    ("a,\"b,c", "-S train.lr=a,\"b,c: the quote at character 3 is never closed"),
    ("'a'b,c", "-S train.lr='a'b,c: \"'a'b\" is not valid YAML: malformed YAML: "),
    ("[1", "-S train.lr=[1: '[1' is not valid YAML: malformed YAML: "),
    ("1,.nan", f"param 'train.lr' (-S train.lr=1,.nan) is not a finite number (it reads as .nan); {JSON_ONLY}"),
    ("1e400", f"param 'train.lr' (-S train.lr=1e400) is not a finite number (it reads as .inf); {JSON_ONLY}"),
    ("choice([1, .inf])",
     f"param 'train.lr[1]' (-S train.lr=choice([1, .inf])) is not a finite number (it reads as .inf); {JSON_ONLY}"),
])
def test_every_malformed_choice_is_a_usage_error_naming_the_key_and_what_is_wrong(text, message):
    with pytest.raises(UsageError) as err:
        parse_choices(text, "-S train.lr")
    assert str(err.value).startswith(message), str(err.value)
    assert err.value.exit_code == EXIT_INVALID


def test_a_quoted_byte_of_argv_that_is_not_utf8_is_an_error_not_a_traceback():
    # argv bytes that are not UTF-8 reach Python as lone surrogates (surrogateescape)
    with pytest.raises(UsageError) as err:
        parse_choices("'\udcff',x", "-S k")
    assert err.value.message == "-S k='\udcff',x: \"'\\udcff'\" is not UTF-8 text"
    with pytest.raises(UsageError) as err:  # unquoted too, as run -S reads it
        parse_choices("\udcff,x", "-S k")
    assert err.value.message == "-S k=\udcff,x: '\\udcff' is not UTF-8 text"


def test_a_long_value_is_shortened_in_messages():
    text = "range(1," + "9" * 200 + "x)"
    with pytest.raises(UsageError) as err:
        parse_choices(text, "-S k")
    assert len(str(err.value)) < 200 and "…" in str(err.value)


# ---- parse_sweep_args: the grid ------------------------------------------------------


def test_the_grid_is_the_product_in_key_order_with_the_first_key_slowest():
    space = parse_sweep_args(["train.lr=0.1,0.01", "model=a,b,c", "epochs=5"], None, None)
    assert space.kind == "grid" and space.keys == ["train.lr", "model"] and space.fixed == {"epochs": 5}
    assert values(space) == [
        {"train.lr": 0.1, "model": "a"}, {"train.lr": 0.1, "model": "b"}, {"train.lr": 0.1, "model": "c"},
        {"train.lr": 0.01, "model": "a"}, {"train.lr": 0.01, "model": "b"}, {"train.lr": 0.01, "model": "c"}]
    assert [p.index for p in space.points()] == list(range(6))
    assert space.size == 6


def test_a_one_choice_function_is_a_key_but_a_single_value_is_fixed():
    space = parse_sweep_args(["a=choice(1)", "b=range(0,1)", "c=1", "d=[1,2]"], None, None)
    assert space.keys == ["a", "b"] and space.fixed == {"c": 1, "d": [1, 2]}
    assert values(space) == [{"a": 1, "b": 0}]


def test_points_do_not_share_mutable_values():
    space = parse_sweep_args(["a=[1],[2]", "b=x,y", "c={z: [1]}"], None, None)
    p = space.points()
    p[0].values["a"].append(99)
    space.fixed["c"]["z"].append(2)
    assert p[1].values["a"] == [1] and space.points()[0].values["a"] == [1] and space.fixed == {"c": {"z": [1]}}


def test_a_grid_larger_than_the_cap_is_refused_before_it_is_built():
    t = time.monotonic()
    with pytest.raises(UsageError) as err:
        parse_sweep_args(["a=range(0,100000)", "b=range(0,100000)", "c=x,y"], None, None)
    assert time.monotonic() - t < 5  # hang guard: 2·10^10 points are never enumerated
    assert err.value.message == (
        "the grid has 20,000,000,000 points (a: range(0,100000,1) × b: range(0,100000,1) × c: 2 values), "
        "more than the 10,000 a sweep may have: narrow the choices, or draw some of them with --random N")


def test_a_grid_of_exactly_the_cap_is_allowed():
    assert parse_sweep_args(["a=range(0,100)", "b=range(0,100)"], None, None).size == MAX_POINTS


@pytest.mark.parametrize("sets, random_n, seed, message", [
    ([], None, None, ("nothing to sweep: no -S lists choices (e.g. -S train.lr=0.001,0.01,0.1); "
                     "a -S with one value sets that param for every point")),
    (["a=1", "b=[1,2]"], None, None, ("nothing to sweep: no -S lists choices (e.g. -S train.lr=0.001,0.01,0.1); "
                                     "a -S with one value sets that param for every point")),
    (["a"], None, None, "-S takes KEY=CHOICES (e.g. -S train.lr=0.01,0.1), got 'a'"),
    (["=1,2"], None, None, "-S takes KEY=CHOICES (e.g. -S train.lr=0.01,0.1), got '=1,2'"),
    (["a=1,2", " a =3"], None, None, "-S a is given twice (a=1,2 and a=3): list its choices in one -S"),
    (["train=1,2", "train.lr=3"], None, None,
     "-S train and -S train.lr overlap (train.lr is inside train): set one or the other"),
    (["a=uniform(0,1)"], None, None, "-S a=uniform(0,1): uniform() draws need --random N"),
    (["a=loguniform(1,2)"], None, None, "-S a=loguniform(1,2): loguniform() draws need --random N"),
    (["a=randint(0,4)"], None, None,
     "-S a=randint(0,4): randint() draws need --random N (every integer from A to B is range(0,5))"),
    (["a=1,2"], None, 5, "--seed needs --random N (a grid draws nothing)"),
    (["a=1,2"], 0, None, "--random takes the number of points to draw, from 1 to 10,000, not 0"),
    (["a=1,2"], -3, None, "--random takes the number of points to draw, from 1 to 10,000, not -3"),
    (["a=range(0,100000)"], 10_001, 1, "--random takes the number of points to draw, from 1 to 10,000, not 10001"),
    (["a=1,2"], 1, -1, "--seed takes an integer from 0 to 9223372036854775807, not -1"),
    (["a=1,2"], 1, 2**63, "--seed takes an integer from 0 to 9223372036854775807, not 9223372036854775808"),
    (["a=1,2", "b=x,y,z"], 7, 1, "cannot draw 7 distinct points from a space of 6 (a: 2 values × b: 3 values)"),
    (["a=randint(1,3)", "b=x,y"], 7, 1, "cannot draw 7 distinct points from a space of 6 (a: randint(1,3) × b: 2 values)"),
])
def test_every_bad_command_line_is_a_usage_error(sets, random_n, seed, message):
    with pytest.raises(UsageError) as err:
        parse_sweep_args(sets, random_n, seed)
    assert err.value.message == message


# ---- random draws --------------------------------------------------------------------


def test_random_from_a_grid_draws_distinct_points_reproducibly_on_every_python():
    space = parse_sweep_args(["a=range(0,1000000)", "b=x,y,z"], 3, 7)
    # Pinned: the same on Python 3.10 to 3.13 (only Random.random() is used, whose sequence
    # for an integer seed Python guarantees); a change here breaks every recorded sweep.
    assert values(space) == [{"a": 344329, "b": "x"}, {"a": 643457, "b": "x"}, {"a": 530566, "b": "y"}]
    assert space.seed == 7 and not space.seed_picked and space.fixed == {}


def test_random_from_distributions_is_reproducible_and_in_bounds():
    space = parse_sweep_args(["lr=loguniform(1e-4,1e-1)", "d=uniform(0,0.5)", "ep=randint(1,100)", "m=a,b"], 3, 7)
    assert values(space) == [
        {"lr": 0.0009364795422756951, "d": 0.07542458696225096, "ep": 96, "m": "a"},
        {"lr": 0.0040517814603844475, "d": 0.18284445845629277, "ep": 60, "m": "b"},
        {"lr": 0.0001295647839911069, "d": 0.21682284183119294, "ep": 63, "m": "b"}]


def test_random_drawing_the_whole_grid_is_a_permutation_of_it():
    space = parse_sweep_args(["a=1,2,3", "b=x,y"], 6, 11)
    grid = parse_sweep_args(["a=1,2,3", "b=x,y"], None, None)
    drawn = values(space)
    assert sorted(map(point_id, drawn)) == sorted(p.id for p in grid.points()) and drawn != values(grid)


def test_random_without_a_seed_picks_one_and_records_it():
    space = parse_sweep_args(["a=range(0,1000)"], 5, None)
    assert space.seed_picked and isinstance(space.seed, int) and 0 <= space.seed < 2**32
    again = parse_sweep_args(["a=range(0,1000)"], 5, space.seed)
    assert values(again) == values(space)
    assert values(Space.from_json(space.to_json())) == values(space)


def test_a_space_with_too_few_distinct_values_is_refused_not_repeated():
    space = parse_sweep_args(["a=uniform(1,1.0000000000000002)"], 3, 1)
    with pytest.raises(UsageError) as err:
        space.points()
    assert err.value.message == (
        "could not draw 3 distinct points: 1,000 draws repeated an earlier point after 1 were found "
        "(a: uniform(1,1.0000000000000002) has too few values)")


def test_below_is_uniform_and_exact_for_any_n():
    rng = random.Random(3)
    counts = [0] * 3
    for _ in range(30_000):
        counts[below(rng, 3)] += 1
    assert all(9_600 < c < 10_400 for c in counts), counts
    big = 2**100 + 3
    drawn = [below(rng, big) for _ in range(200)]
    assert all(0 <= v < big for v in drawn) and max(drawn) > 2**99
    assert {below(rng, 1) for _ in range(10)} == {0}
    with pytest.raises(ValueError):
        below(rng, 0)


def test_sample_distinct_draws_without_replacement():
    rng = random.Random(5)
    assert sorted(sample_distinct(rng, 50, 50)) == list(range(50))
    picked = sample_distinct(rng, 10**30, 1000)
    assert len(set(picked)) == 1000 and all(0 <= i < 10**30 for i in picked)
    with pytest.raises(ValueError):
        sample_distinct(rng, 3, 4)


def test_draws_stay_in_their_bounds():
    rng = random.Random(9)
    for _ in range(2000):
        assert 2 <= draw(rng, Draw("uniform", 2, 3)) < 3
        assert 1e-4 <= draw(rng, Draw("loguniform", 1e-4, 1)) <= 1
        assert draw(rng, Draw("randint", -1, 1)) in (-1, 0, 1)


# ---- point identity and the recorded space -------------------------------------------


def test_point_id_is_a_short_stable_digest_of_the_values():
    assert point_id({"a": 1, "b": [1, {"y": 2, "x": None}]}) == "092dafc9a740b07e"  # pinned: --resume matches by it
    assert point_id({"b": [1, {"x": None, "y": 2}], "a": 1}) == "092dafc9a740b07e"  # key order does not matter
    assert point_id({"a": 1}) != point_id({"a": 1.0}) != point_id({"a": True})  # they read differently
    assert point_id({"a": "\udcff"}) != point_id({"a": "x"})  # a lone surrogate from argv still hashes
    space = parse_sweep_args(["a=1,2"], None, None)
    assert [p.id for p in space.points()] == [point_id({"a": 1}), point_id({"a": 2})]


def test_to_json_and_back_gives_the_same_points_for_every_kind(tmp_path):
    (tmp_path / "l.yaml").write_text("list:\n  - {a: 1}\n  - {a: 2, b: x}\n")
    spaces = [
        parse_sweep_args(["a=1,2", "b=range(0,3)", "c=range(0,1,0.5)", "d=choice([1],[2])", "e=5"], None, None),
        parse_sweep_args(["a=randint(0,9)", "b=uniform(0,1)", "c=range(0,100)"], 4, 2),
        load_sweep_file(tmp_path / "l.yaml"),
    ]
    for space in spaces:
        again = Space.from_json(space.to_json())
        assert again == space and values(again) == values(space) and again.fixed == space.fixed
        recorded = space.to_json()
        for a in recorded["axes"]:
            a.get("values", []).append("changed")
        assert values(space) == values(again)  # the record is a copy


@pytest.mark.parametrize("data", [
    None, {}, {"kind": "grid"}, {"kind": "cube", "axes": [], "rows": [], "fixed": {}, "n": None, "seed": None,
                                 "seed_picked": False},
    {"kind": "grid", "axes": [{"key": "a", "draw": "normal", "low": 0, "high": 1}], "rows": [], "fixed": {},
     "n": None, "seed": None, "seed_picked": False},
    {"kind": "random", "axes": [{"key": "a", "values": [1, 2], "form": "list"}], "rows": [], "fixed": {},
     "n": 2, "seed": "x", "seed_picked": False},
    {"kind": "random", "axes": [{"key": "a", "draw": "uniform", "low": "0", "high": 1}], "rows": [], "fixed": {},
     "n": 2, "seed": 1, "seed_picked": False},
    {"kind": "random", "axes": [{"key": "a", "draw": "loguniform", "low": 0, "high": 1}], "rows": [], "fixed": {},
     "n": 2, "seed": 1, "seed_picked": False},
    {"kind": "grid", "axes": [{"key": "a", "range": [5, 1, 1]}], "rows": [], "fixed": {}, "n": None, "seed": None,
     "seed_picked": False},
    {"kind": "grid", "axes": [{"key": "a", "values": [], "form": "list"}], "rows": [], "fixed": {}, "n": None,
     "seed": None, "seed_picked": False},
    {"kind": "list", "axes": [], "rows": [], "fixed": {}, "n": None, "seed": None, "seed_picked": False},
])
def test_a_malformed_recorded_space_is_a_state_error(data):
    with pytest.raises(StateError) as err:
        Space.from_json(data)
    assert err.value.message.startswith("the recorded sweep space is malformed: ")


# ---- the sweep file ------------------------------------------------------------------


def load(tmp_path, text: str) -> Space:
    (tmp_path / "s.yaml").write_text(text)
    return load_sweep_file(tmp_path / "s.yaml", "s.yaml")


def test_a_grid_file(tmp_path):
    space = load(tmp_path, "grid:\n  train.lr: [0.001, 0.01]\n  train.epochs: {range: [5, 15, 5]}\n"
                           "  model: [[8, 4], {a: 1}]\n")
    assert space.kind == "grid" and space.keys == ["train.lr", "train.epochs", "model"]
    assert values(space)[:3] == [{"train.lr": 0.001, "train.epochs": 5, "model": [8, 4]},
                                 {"train.lr": 0.001, "train.epochs": 5, "model": {"a": 1}},
                                 {"train.lr": 0.001, "train.epochs": 10, "model": [8, 4]}]
    assert space.size == 8


def test_a_list_file_keeps_its_points_in_order_and_its_keys_may_differ(tmp_path):
    space = load(tmp_path, "list:\n  - {train.lr: 0.1, train.epochs: 5}\n  - {train.lr: 0.2}\n"
                           "  - {model: x, train.lr: 0.3}\n")
    assert space.keys == ["train.lr", "train.epochs", "model"]
    assert values(space) == [{"train.lr": 0.1, "train.epochs": 5}, {"train.lr": 0.2},
                             {"train.lr": 0.3, "model": "x"}]


def test_a_random_file_is_reproducible_and_its_seed_is_optional(tmp_path):
    text = ("random:\n  n: 3\n  seed: 7\n  space:\n    lr: {loguniform: [1e-4, 1e-1]}\n    d: {uniform: [0, 0.5]}\n"
            "    ep: {randint: [1, 100]}\n    m: [a, b]\n")
    space = load(tmp_path, text)
    assert values(space) == values(parse_sweep_args(
        ["lr=loguniform(1e-4,1e-1)", "d=uniform(0,0.5)", "ep=randint(1,100)", "m=a,b"], 3, 7))
    unseeded = load(tmp_path, text.replace("  seed: 7\n", ""))
    assert unseeded.seed_picked and values(unseeded) == values(Space.from_json(unseeded.to_json()))


GRID_ERRORS = [
    ("", "s.yaml: the sweep file is empty: write grid:, list: or random:"),
    ("[1, 2]\n", "s.yaml: a sweep file holds a mapping with one of grid:, list: or random:, not a list of 2"),
    ("gird:\n  a: [1]\n", ("s.yaml:1:1: unknown key 'gird' (did you mean 'grid'?): a sweep file holds one of grid:, "
                          "list: or random:")),
    ("grid:\n  a: [1]\nlist:\n  - {a: 1}\n",
     "s.yaml:3:1: a sweep file holds one of grid:, list: or random:, not both grid: and list:"),
    ("grid:\n", "s.yaml:1:6: grid: must map each key to its list of values, not null"),
    ("grid: [1, 2]\n", "s.yaml:1:7: grid: must map each key to its list of values, not a list of 2"),
    ("grid:\n  a: 1\n", ("s.yaml:2:6: key 'a' must be a list of values (write [V] for one value), or "
                        "{range: [START, STOP]}, not a number")),
    ("grid:\n  a: range(1,5)\n", ("s.yaml:2:6: key 'a' must be a list of values (write [V] for one value), or "
                                 "{range: [START, STOP]}, not the string 'range(1,5)'")),
    ("grid:\n  a: []\n", "s.yaml:2:6: key 'a' has no values"),
    ("grid:\n  a: [1, 2, 1]\n", "s.yaml:2:13: key 'a': the value 1 is given twice (items 1 and 3)"),
    ("grid:\n  a: [1, .nan]\n", (f"s.yaml:2:10: param 'a' (sweep file s.yaml) is not a finite number (it reads as "
                                f".nan); {JSON_ONLY}")),
    ("grid:\n  a: [[1, .inf]]\n", (f"s.yaml:2:7: param 'a[1]' (sweep file s.yaml) is not a finite number (it "
                                  f"reads as .inf); {JSON_ONLY}")),
    ("grid:\n  a: {uniform: [0, 1]}\n", ("s.yaml:2:16: key 'a': uniform: draws need random: (n: N, space: …) or "
                                        "--random N")),
    ("grid:\n  a: {randint: [0, 4]}\n", ("s.yaml:2:16: key 'a': randint: draws need random: (n: N, space: …) or "
                                        "--random N; every integer from A to B is {range: [0, 5]}")),
    ("grid:\n  a: {range: [5, 1]}\n", ("s.yaml:2:14: key 'a': the range is empty: with step 1, STOP (1) must be "
                                      "above START (5)")),
    ("grid:\n  a: {range: [1]}\n", ("s.yaml:2:14: key 'a': range: takes [START, STOP] or [START, STOP, STEP], "
                                   "not a list of 1")),
    ("grid:\n  a: {range: [1, x]}\n", "s.yaml:2:14: key 'a': range: 'x' is not a number"),
    ("grid:\n  a: {range: [0, .inf]}\n", "s.yaml:2:14: key 'a': range: inf is not a finite number"),
    ("grid:\n  a: {normal: [0, 1]}\n", ("s.yaml:2:6: key 'a' must be a list of values (write [V] for one value), or "
                                       "{range: [START, STOP]}, not a mapping")),
    ("grid:\n  train: [1]\n  train.lr: [2]\n", ("s.yaml:3:3: keys 'train' and 'train.lr' overlap (train.lr is inside "
                                               "train): set one or the other")),
    ("grid:\n  '': [1]\n", "s.yaml:2:3: a key must not be empty"),
    ("grid:\n  a: {range: [0, 200]}\n  b: {range: [0, 100]}\n",
     ("s.yaml:1:1: the grid has 20,000 points (a: range(0,200,1) × b: range(0,100,1)), more than the 10,000 a sweep "
     "may have: narrow the choices, or draw some of them with --random N")),
    ("grid:\n  a: !!python/object:os.system [1]\n", "s.yaml:2:6: unsupported YAML tag tag:yaml.org,2002:python/object:os.system"),
]
LIST_ERRORS = [
    ("list: []\n", "s.yaml:1:7: list: must be a list of points ({KEY: V, …}), not an empty list"),
    ("list:\n  - 1\n", "s.yaml:2:5: list item 1 must be a mapping of KEY: VALUE, not a number"),
    ("list:\n  - {a: 1}\n  - {}\n", "s.yaml:3:5: list item 2 must be a mapping of KEY: VALUE, not an empty mapping"),
    ("list:\n  - {a: 1, b: [2]}\n  - {b: [2], a: 1}\n", "s.yaml:3:5: list item 2 is the same point as item 1"),
    ("list:\n  - {a: .nan}\n", (f"s.yaml:2:9: param 'a' (sweep file s.yaml) is not a finite number (it reads as "
                               f".nan); {JSON_ONLY}")),
    ("list:\n  - {a: 1, a.b: 2}\n", "s.yaml:2:12: keys 'a' and 'a.b' overlap (a.b is inside a): set one or the other"),
]
RANDOM_ERRORS = [
    ("random: 3\n", "s.yaml:1:9: random: must be a mapping with n:, space: and seed: (optional), not a number"),
    ("random:\n  n: 3\n  seeds: 1\n  space: {a: [1, 2, 3]}\n",
     "s.yaml:3:3: unknown key 'seeds' in random: (did you mean 'seed'?) (it takes n:, space: and seed:)"),
    ("random:\n  space: {a: [1]}\n", "s.yaml:1:1: random: needs n: (how many points to draw)"),
    ("random:\n  n: 1\n", "s.yaml:1:1: random: needs space: (each key's values or distribution)"),
    ("random:\n  n: 0\n  space: {a: [1]}\n", ("s.yaml:2:6: n: must be the number of points to draw, from 1 to 10,000, "
                                             "not 0")),
    ("random:\n  n: x\n  space: {a: [1]}\n", ("s.yaml:2:6: n: must be the number of points to draw, from 1 to 10,000, "
                                             "not 'x'")),
    ("random:\n  n: true\n  space: {a: [1]}\n", ("s.yaml:2:6: n: must be the number of points to draw, from 1 to "
                                                "10,000, not True")),
    ("random:\n  n: 1\n  seed: -1\n  space: {a: [1]}\n",
     "s.yaml:3:9: seed: must be an integer from 0 to 9223372036854775807, not -1"),
    ("random:\n  n: 1\n  seed: 1.5\n  space: {a: [1]}\n",
     "s.yaml:3:9: seed: must be an integer from 0 to 9223372036854775807, not 1.5"),
    ("random:\n  n: 3\n  space: {a: [1, 2]}\n", ("s.yaml:2:6: cannot draw 3 distinct points from a space of 2 "
                                                "(a: 2 values)")),
    ("random:\n  n: 1\n  space: {a: {loguniform: [0, 1]}}\n", "s.yaml:3:27: key 'a': loguniform() needs A > 0, got 0"),
    ("random:\n  n: 1\n  space: {a: {randint: [0, 1.5]}}\n", "s.yaml:3:24: key 'a': randint: 1.5 is not an integer"),
    ("random:\n  n: 1\n  space: {a: {uniform: [0, 1, 2]}}\n",
     "s.yaml:3:24: key 'a': uniform: takes [A, B], not a list of 3"),
    ("random:\n  n: 1\n  space: {a: 3}\n", ("s.yaml:3:14: key 'a' must be a list of values (write [V] for one value), "
                                           "{uniform: [A, B]}, {loguniform: [A, B]}, {randint: [A, B]}, or "
                                           "{range: [START, STOP]}, not a number")),
    ("random:\n  n: 1\n  space: {}\n", ("s.yaml:3:10: random:space: must map each key to its list of values, not an "
                                       "empty mapping")),
]


@pytest.mark.parametrize("text, message", GRID_ERRORS + LIST_ERRORS + RANDOM_ERRORS)
def test_every_bad_sweep_file_is_a_pipeline_error_naming_the_file_line_and_key(tmp_path, text, message):
    with pytest.raises(PipelineError) as err:
        load(tmp_path, text)
    assert str(err.value) == message
    assert err.value.exit_code == EXIT_INVALID


def test_a_sweep_file_that_is_missing_or_not_a_regular_file_or_too_large(tmp_path):
    with pytest.raises(PipelineError, match=r"^sweep file 'nope.yaml' does not exist$"):
        load_sweep_file(tmp_path / "nope.yaml", "nope.yaml")
    with pytest.raises(PipelineError, match=r"^sweep file 'd' is not a regular file$"):
        load_sweep_file(tmp_path, "d")
    os.mkfifo(tmp_path / "fifo")  # nobody writes to it: reading must not block
    with pytest.raises(PipelineError, match=r"^sweep file 'f' is not a regular file$"):
        load_sweep_file(tmp_path / "fifo", "f")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"grid:\n  a: [1]\n" + b"#" * MAX_FILE_BYTES)
    with pytest.raises(PipelineError, match=r"^sweep file 'big.yaml' is larger than 16 MiB$"):
        load_sweep_file(big, "big.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"grid:\n  a: [\xff]\n")
    with pytest.raises(PipelineError, match=r"^bin.yaml: not UTF-8 text \(byte 12\)"):
        load_sweep_file(tmp_path / "bin.yaml", "bin.yaml")


def test_malformed_yaml_in_a_sweep_file_is_placed(tmp_path):
    with pytest.raises(PipelineError) as err:
        load(tmp_path, "grid:\n  a: [1\n")
    assert str(err.value).startswith("s.yaml:3:1: malformed YAML: ")  # the rest is the YAML library's words


def test_a_billion_laughs_sweep_file_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
              for i in range(1, 6)]
    with pytest.raises(PipelineError, match="expands to more than"):
        load(tmp_path, "\n".join(lines) + "\ngrid: {a: *a5}\n")


# ---- sweep_space: a file with the command line ---------------------------------------


@pytest.fixture
def files(tmp_path):
    (tmp_path / "g.yaml").write_text("grid:\n  a: [1, 2, 3]\n  b: [x, y]\n")
    (tmp_path / "l.yaml").write_text("list:\n  - {a: 1}\n  - {a: 2}\n")
    (tmp_path / "r.yaml").write_text("random:\n  n: 2\n  seed: 3\n  space: {a: {uniform: [0, 1]}}\n")
    (tmp_path / "r0.yaml").write_text("random:\n  n: 2\n  space: {a: {uniform: [0, 1]}}\n")
    return tmp_path


def test_sweep_space_without_a_file_is_parse_sweep_args():
    assert sweep_space(["a=1,2", "c=3"], None, None) == parse_sweep_args(["a=1,2", "c=3"], None, None)


def test_a_file_with_single_value_sets_and_random(files):
    space = sweep_space(["c=5", "d=[1]"], None, None, files / "g.yaml")
    assert space.fixed == {"c": 5, "d": [1]} and space.size == 6
    drawn = sweep_space([], 4, 9, files / "g.yaml")
    assert drawn.kind == "random" and values(drawn) == values(parse_sweep_args(["a=1,2,3", "b=x,y"], 4, 9))
    seeded = sweep_space([], None, 42, files / "r0.yaml")
    assert seeded.seed == 42 and not seeded.seed_picked


@pytest.mark.parametrize("sets, random_n, seed, name, message", [
    (["c=1,2"], None, None, "g.yaml", ("-S c: with --sweep FILE a -S takes one value, set for every point; list the "
                                      "choices in {dir}/g.yaml")),
    (["a=7"], None, None, "g.yaml", "-S a: {dir}/g.yaml sweeps a too; set it in one place"),
    (["a.x=7"], None, None, "g.yaml", "-S a.x: {dir}/g.yaml sweeps a too; set it in one place"),
    ([], 7, 1, "g.yaml", "cannot draw 7 distinct points from a space of 6 (a: 3 values × b: 2 values)"),
    ([], None, 1, "g.yaml", "--seed needs --random N (a grid draws nothing)"),
    ([], 1, None, "l.yaml", "--random/--seed: {dir}/l.yaml lists its points (list:); there is nothing to draw"),
    ([], 1, None, "r.yaml", "--random: {dir}/r.yaml draws its own points (random: n: 2); leave --random out"),
    ([], None, 1, "r.yaml", "--seed: {dir}/r.yaml sets its own seed (seed: 3); leave --seed out"),
    ([], None, -1, "r0.yaml", "--seed takes an integer from 0 to 9223372036854775807, not -1"),
])
def test_a_file_with_a_command_line_that_does_not_fit(files, sets, random_n, seed, name, message):
    with pytest.raises(UsageError) as err:
        sweep_space(sets, random_n, seed, files / name)
    assert err.value.message == message.format(dir=files)
