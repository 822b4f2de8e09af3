"""params: lookup, merging params files, `-S` values (YAML 1.2 core scalars) and overrides."""
from __future__ import annotations

import datetime
import json
import math
import re

import pytest

from pipetool.errors import PipelineError, PipetoolError, UsageError
from pipetool.spec.jsonvalues import plain
from pipetool.spec.params import (
    MISSING,
    AmbiguousParam,
    apply_overrides,
    closest,
    deep_merge,
    known_keys,
    lookup,
    parse_override_value,
    parse_overrides,
    read_params_file,
    resolve,
)

PARAMS = {"prepare": {"split": 0.2, "seed": 42}, "train": {"lr": 0.01, "epochs": 20}, "name": "x"}


def test_lookup_follows_dotted_paths_and_returns_subtrees():
    assert lookup(PARAMS, "train.lr") == 0.01
    assert lookup(PARAMS, "train") == {"lr": 0.01, "epochs": 20}
    assert lookup(PARAMS, "name") == "x"


@pytest.mark.parametrize("key", ["train.momentum", "nope", "name.sub", "train.lr.x", "", "train."])
def test_lookup_of_an_unknown_key_is_missing(key):
    assert lookup(PARAMS, key) is MISSING


def test_lookup_distinguishes_a_null_value_from_a_missing_key():
    assert lookup({"a": None}, "a") is None
    assert lookup({"a": None}, "b") is MISSING


def test_known_keys_lists_subtrees_and_leaves():
    assert set(known_keys(PARAMS)) == {
        "prepare", "prepare.split", "prepare.seed", "train", "train.lr", "train.epochs", "name"}


def test_closest_suggests_the_nearest_key():
    assert "did you mean 'train.lr'" in closest("train.lrr", known_keys(PARAMS))
    assert "did you mean 'train.epochs'" in closest("train.epoch", known_keys(PARAMS))


def test_closest_lists_known_keys_when_nothing_is_near_and_says_when_there_are_none():
    assert "known:" in closest("zzzzzz", ["a", "b"])
    assert "no params" in closest("x", [])


def test_deep_merge_merges_nested_mappings_and_later_values_win():
    base = {"train": {"lr": 0.01, "epochs": 20}, "keep": 1}
    over = {"train": {"lr": 0.1}, "new": {"x": 1}}
    assert deep_merge(base, over) == {"train": {"lr": 0.1, "epochs": 20}, "keep": 1, "new": {"x": 1}}
    assert base == {"train": {"lr": 0.01, "epochs": 20}, "keep": 1}  # input untouched


def test_deep_merge_replaces_a_subtree_by_a_scalar_and_back():
    assert deep_merge({"a": {"b": 1}}, {"a": 3}) == {"a": 3}
    assert deep_merge({"a": 3}, {"a": {"b": 1}}) == {"a": {"b": 1}}


@pytest.mark.parametrize(
    "name, text",
    [
        ("p.yaml", "train:\n  lr: 0.1\n"),
        ("p.yml", "train: {lr: 0.1}\n"),
        ("p.json", json.dumps({"train": {"lr": 0.1}})),
        ("p.toml", "[train]\nlr = 0.1\n"),
        ("P.JSON", json.dumps({"train": {"lr": 0.1}})),
    ],
)
def test_params_files_are_read_by_extension(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text)
    assert read_params_file(str(f), name, None) == {"train": {"lr": 0.1}}


def test_an_empty_yaml_params_file_is_no_params(tmp_path):
    (tmp_path / "p.yaml").write_text("")
    assert read_params_file(str(tmp_path / "p.yaml"), "p.yaml", None) == {}


def test_yaml_params_files_use_the_core_schema(tmp_path):
    (tmp_path / "p.yaml").write_text("a: 1e-3\nb: yes\nc: true\n")
    assert read_params_file(str(tmp_path / "p.yaml"), "p.yaml", None) == {"a": 0.001, "b": "yes", "c": True}


@pytest.mark.parametrize(
    "name, text, needle",
    [
        ("p.json", "{not json", "not valid JSON"),
        ("p.toml", "a = = 1", "not valid TOML"),
        ("p.yaml", "a: [1\n", "malformed YAML"),
        ("p.json", "[1, 2]", "must hold a mapping"),
        ("p.yaml", "- 1\n", "must hold a mapping"),
        ("p.ini", "a=1", "must end in"),
        ("p.json", b"\xff\xfe", "not valid JSON"),
    ],
)
def test_bad_params_files_are_pipeline_errors_naming_the_file(tmp_path, name, text, needle):
    f = tmp_path / name
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(PipelineError) as ei:
        read_params_file(str(f), name, None)
    assert needle in ei.value.message
    assert name in str(ei.value)


def test_a_missing_params_file_is_a_pipeline_error(tmp_path):
    with pytest.raises(PipelineError, match="does not exist"):
        read_params_file(str(tmp_path / "nope.yaml"), "nope.yaml", None)


def test_a_folder_named_as_params_file_is_a_pipeline_error(tmp_path):
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(PipelineError):
        read_params_file(str(tmp_path / "d.yaml"), "d.yaml", None)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1e-3", 0.001),
        ("0.1", 0.1),
        ("3", 3),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("true", True),
        ("false", False),
        ("null", None),
        ("adam", "adam"),
        ("'3'", "3"),
        ('"true"', "true"),
        ("[1, 2]", [1, 2]),
        ("{a: 1}", {"a": 1}),
        ("a b", "a b"),
        ("x=y", "x=y"),
    ],
)
def test_set_values_are_yaml_1_2_core_scalars(text, expected):
    value = parse_override_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_a_malformed_quoted_or_flow_set_value_is_a_usage_error():
    with pytest.raises(UsageError, match="not valid YAML"):
        parse_override_value("[1, 2")
    with pytest.raises(UsageError):
        parse_override_value("'abc")


def test_parse_overrides_splits_on_the_first_equals_sign():
    assert parse_overrides(["train.lr=1e-3", "name=a=b", "flag=yes"]) == {
        "train.lr": 0.001, "name": "a=b", "flag": "yes"}


@pytest.mark.parametrize("pair", ["train.lr", "=1", " =1"])
def test_a_set_without_key_or_equals_sign_is_a_usage_error(pair):
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_overrides([pair])


def test_overrides_set_nested_keys_without_touching_the_input():
    out = apply_overrides(PARAMS, {"train.lr": 0.1, "name": "y"})
    assert out["train"] == {"lr": 0.1, "epochs": 20}
    assert out["name"] == "y"
    assert PARAMS["train"]["lr"] == 0.01 and PARAMS["name"] == "x"


def test_an_override_may_replace_a_whole_subtree():
    assert apply_overrides(PARAMS, {"train": {"lr": 1}})["train"] == {"lr": 1}


def test_an_unknown_set_key_is_a_usage_error_naming_the_closest_key():
    with pytest.raises(UsageError) as ei:
        apply_overrides(PARAMS, {"train.lrr": 0.1})
    assert "train.lrr" in ei.value.message
    assert "did you mean 'train.lr'" in ei.value.message


def test_a_set_key_below_a_scalar_is_unknown():
    with pytest.raises(UsageError):
        apply_overrides(PARAMS, {"train.lr.x": 1})


def test_no_overrides_returns_the_params_unchanged():
    assert apply_overrides(PARAMS, {}) is PARAMS


def test_every_params_error_is_a_pipetool_error():
    assert issubclass(UsageError, PipetoolError) and issubclass(PipelineError, PipetoolError)


# -- a dotted key: a literal key spelled with a dot, or nested keys ------------------------

DOTTED = {"a.b": 1, "c": {"d.e": 2, "f": {"g": 3}}, "x": {"y": 4}}


@pytest.mark.parametrize("key, path", [
    ("a.b", ("a.b",)), ("c.d.e", ("c", "d.e")), ("c.f.g", ("c", "f", "g")), ("x.y", ("x", "y")), ("x", ("x",)),
    ("a", None), ("c.d", None), ("a.b.c", None),
])
def test_a_dotted_key_resolves_to_the_literal_key_or_the_nested_one(key, path):
    assert resolve(DOTTED, key) == path


def test_a_dotted_key_naming_both_is_ambiguous_and_names_both():
    with pytest.raises(AmbiguousParam, match=re.escape("names both 'a.b' and 'a' → 'b'")):
        lookup({"a.b": 1, "a": {"b": 2}}, "a.b")
    with pytest.raises(AmbiguousParam, match=re.escape("'x' → 'a.b' and 'x' → 'a' → 'b'")):
        lookup({"x": {"a.b": 1, "a": {"b": 2}}}, "x.a.b")
    assert lookup({"a.b": 1, "a": {"c": 2}}, "a.c") == 2  # no clash where only one matches


def test_set_reaches_a_literal_dotted_key_and_refuses_an_ambiguous_one():
    assert apply_overrides(DOTTED, {"a.b": 9, "c.d.e": 8})["a.b"] == 9
    assert apply_overrides(DOTTED, {"c.d.e": 8})["c"] == {"d.e": 8, "f": {"g": 3}}
    with pytest.raises(UsageError, match=re.escape("-S a.b: param 'a.b' is ambiguous")):
        apply_overrides({"a.b": 1, "a": {"b": 2}}, {"a.b": 3})


def test_set_creates_a_schema_declared_path_with_a_dotted_name():
    assert apply_overrides({}, {"opt.beta.1": 0.9}, [("opt",), ("opt", "beta.1")]) == {"opt": {"beta.1": 0.9}}
    assert apply_overrides({}, {"opt.beta": 1}, ["opt.beta"]) == {"opt": {"beta": 1}}


# -- -S values read like a YAML value: comments --------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("1 # a comment", 1),
    ("1\t# tab", 1),
    (" # only a comment", None),
    ("a#b", "a#b"),
    ("#x", "#x"),
    ("'x # y'", "x # y"),
    ("'x' # c", "x"),
    ("[1, 2] # c", [1, 2]),
    ("0.5 #", 0.5),
])
def test_a_blank_then_hash_starts_a_comment_in_a_set_value(text, expected):
    value = parse_override_value(text)
    assert value == expected and type(value) is type(expected)


# -- params are JSON values ------------------------------------------------------------------

def test_dates_and_times_become_iso_strings():
    value = {"d": datetime.date(1979, 5, 27), "t": datetime.time(7, 32),
             "dt": datetime.datetime(1979, 5, 27, 7, 32, tzinfo=datetime.timezone.utc), "l": [datetime.date(2000, 1, 1)]}
    assert plain(value, "x") == {"d": "1979-05-27", "t": "07:32:00", "dt": "1979-05-27T07:32:00+00:00",
                                 "l": ["2000-01-01"]}


@pytest.mark.parametrize("value, needle", [
    ({"a": {"b": math.nan}}, "param 'a.b' (in p.json) is not a finite number (it reads as .nan)"),
    ({"a": [1, -math.inf]}, "param 'a[1]' (in p.json) is not a finite number (it reads as -.inf)"),
    ({"a": {1: 2}}, "param 'a' (in p.json) has a key 1 that is not a string"),
    ({"a": {1, 2}}, "param 'a' (in p.json) is a set, which is not a JSON value"),
    ({"a": b"x"}, "param 'a' (in p.json) is a bytes, which is not a JSON value"),
])
def test_anything_else_is_refused_naming_the_param_and_its_origin(value, needle):
    with pytest.raises(PipelineError) as ei:
        plain(value, "in p.json")
    assert needle in ei.value.message


def test_json_values_pass_unchanged():
    value = {"a": [1, 2.5, None, True, "s", {"b": []}], "c": {}}
    assert plain(value, "x") == value
    assert json.loads(json.dumps(plain(value, "x"), allow_nan=False)) == value
