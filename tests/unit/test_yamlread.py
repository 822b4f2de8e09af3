"""yamlread: YAML 1.2 core scalars, duplicate keys, bounded expansion, file:line:column marks."""
from __future__ import annotations

import math

import pytest

from pipetool.errors import PipelineError, Where
from pipetool.spec.yamlread import MAX_DEPTH, core_scalar, locate, parse_yaml


def load(text: str):
    value, _ = parse_yaml(text.encode(), "f.yaml")
    return value


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1e-3", 0.001),
        ("1E3", 1000.0),
        ("-2.5", -2.5),
        (".5", 0.5),
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        ("010", 10),  # YAML 1.2: no octal by leading zero
        ("0o17", 15),
        ("0x1F", 31),
        ("true", True),
        ("True", True),
        ("FALSE", False),
        ("null", None),
        ("~", None),
        ("", None),
    ],
)
def test_core_schema_resolves_plain_scalars(text, expected):
    value = core_scalar(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("text", ["yes", "no", "on", "off", "y", "n", "Yes", "1_000", "0b101", "1:30", "2001-12-14"])
def test_yaml_1_1_booleans_numbers_and_dates_stay_strings(text):
    assert core_scalar(text) == text


def test_infinities_and_nan_resolve_to_floats():
    assert core_scalar(".inf") == math.inf
    assert core_scalar("-.Inf") == -math.inf
    assert math.isnan(core_scalar(".NaN"))


def test_document_scalars_follow_the_core_schema():
    doc = load("a: 1e-3\nb: yes\nc: true\nd: on\ne: 0.01\nf: null\ng:\n")
    assert doc == {"a": 0.001, "b": "yes", "c": True, "d": "on", "e": 0.01, "f": None, "g": None}
    assert isinstance(doc["a"], float)


def test_quoted_and_block_scalars_are_always_strings():
    doc = load("a: 'true'\nb: \"1e-3\"\nc: |\n  12\nd: >\n  null\n")
    assert doc == {"a": "true", "b": "1e-3", "c": "12\n", "d": "null\n"}


def test_explicit_str_tag_keeps_a_number_a_string():
    # `!!str 123` is the standard YAML way to say "the string 123".
    assert load("a: !!str 123\nb: !!str true\n") == {"a": "123", "b": "true"}


@pytest.mark.parametrize("text", ["1e-3", "1E3", "0o17", "0x1F", ".5", "+.inf", ".nan", "null", "~", "010", "-7", "abc"])
def test_explicit_str_tag_keeps_any_core_schema_number_or_null_a_string(text):
    # also those YAML 1.1 would read as strings but YAML 1.2 reads as numbers
    assert load(f"a: !!str {text}\n") == {"a": text}


def test_explicit_str_tag_after_an_anchor_keeps_a_string_through_aliases():
    assert load("a: &x !!str 1e-3\nb: *x\n") == {"a": "1e-3", "b": "1e-3"}


def test_explicit_str_tag_in_a_file_with_old_mac_line_endings_keeps_a_string():
    # libyaml takes a lone CR as a line break (low priority: such files are rare)
    assert parse_yaml(b"c: 1\rd: !!str 1e-3\r", "f.yaml")[0] == {"c": 1, "d": "1e-3"}


def test_explicit_str_tag_in_flow_collections_keeps_strings():
    assert load("a: [!!str 0o17, !!str 1E3]\nb: {c: !!str 1e-3}\n") == {"a": ["0o17", "1E3"], "b": {"c": "1e-3"}}


def test_sequences_and_nested_mappings_convert_to_lists_and_dicts():
    assert load("a: [1, x, {b: 2}]\nc:\n  d:\n    - e\n") == {"a": [1, "x", {"b": 2}], "c": {"d": ["e"]}}


def test_empty_document_is_none():
    assert load("") is None
    assert load("# only a comment\n") is None


def test_malformed_yaml_names_file_line_and_column():
    with pytest.raises(PipelineError) as ei:
        load("a: 1\nb: [1, 2\nc: 3\n")
    err = ei.value
    assert err.where == Where("f.yaml", 3, 2)
    assert "malformed YAML" in err.message
    assert str(err).startswith("f.yaml:3:2: ")


def test_bad_indentation_is_a_malformed_yaml_error_with_its_place():
    with pytest.raises(PipelineError) as ei:
        load("a: 1\n  b: 2\n")
    assert ei.value.where.line == 2
    assert ei.value.where.column is not None


def test_tab_indentation_is_an_error_not_a_crash():
    with pytest.raises(PipelineError, match="malformed YAML"):
        load("a:\n\t- 1\n")


def test_duplicate_key_is_an_error_naming_the_key_and_its_line():
    with pytest.raises(PipelineError) as ei:
        load("a: 1\nb: 2\na: 3\n")
    assert "duplicate key 'a'" in ei.value.message
    assert ei.value.where == Where("f.yaml", 3, 1)


def test_duplicate_key_in_a_nested_mapping_is_an_error():
    with pytest.raises(PipelineError, match="duplicate key 'cmd'"):
        load("targets:\n  t:\n    cmd: a\n    cmd: b\n")


def test_quoted_and_plain_spellings_of_one_key_are_duplicates():
    with pytest.raises(PipelineError, match="duplicate key"):
        load("a: 1\n'a': 2\n")


def test_more_than_one_document_is_an_error():
    with pytest.raises(PipelineError):
        load("a: 1\n---\nb: 2\n")


def test_merge_keys_are_refused():
    with pytest.raises(PipelineError, match="merge keys"):
        load("base: &b {x: 1}\nd:\n  <<: *b\n")


def test_unknown_tags_are_refused_with_their_place():
    with pytest.raises(PipelineError) as ei:
        load("a: !foo 1\n")
    assert "!foo" in ei.value.message
    assert ei.value.where == Where("f.yaml", 1, 4)


def test_python_object_tags_never_construct_objects():
    with pytest.raises(PipelineError, match="unsupported YAML tag"):
        load("a: !!python/object/apply:os.system ['echo pwned']\nb: !!python/name:os.system x\n")


@pytest.mark.parametrize("text", ["a: !!python/object/apply:os.system ['echo pwned']\n",
                                  "a: !!set {x: null}\n", "a: !mine [1]\n", "!top {a: 1}\n",
                                  "a: !!omap [{x: 1}]\n"])
def test_a_tag_on_a_list_or_mapping_is_refused_with_its_place(text):
    with pytest.raises(PipelineError, match="unsupported YAML tag") as ei:
        load(text)
    assert ei.value.where is not None and ei.value.where.line == 1


def test_the_standard_collection_tags_are_plain_lists_and_mappings():
    assert load("a: !!seq [1]\nb: !!map {x: 1}\n") == {"a": [1], "b": {"x": 1}}


def test_non_scalar_mapping_keys_are_refused():
    with pytest.raises(PipelineError, match="keys"):
        load("? [a, b]\n: 1\n")


def test_aliases_are_expanded():
    assert load("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}


def test_alias_bomb_is_bounded():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i-1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    with pytest.raises(PipelineError, match="expands to more than"):
        load("\n".join(lines) + "\n")


def test_deep_nesting_is_bounded():
    depth = MAX_DEPTH + 5
    text = "a: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(PipelineError, match="nesting"):
        load(text)


def test_extremely_deep_nesting_is_an_error_not_a_recursion_crash():
    with pytest.raises(PipelineError):
        load("[" * 100_000)


def test_non_utf8_bytes_are_a_clear_error():
    with pytest.raises(PipelineError, match="not UTF-8") as ei:
        parse_yaml(b"a: \xff\xfe\n", "f.yaml")
    assert ei.value.where == Where("f.yaml")


def test_marks_place_keys_and_values():
    _, marks = parse_yaml(b"targets:\n  train:\n    cmd: run\n    deps: [a, b]\n", "p.yaml")
    assert locate(marks, "p.yaml", ("targets", "train", "cmd")) == Where("p.yaml", 3, 10)
    assert locate(marks, "p.yaml", ("targets", "train", "cmd"), key=True) == Where("p.yaml", 3, 5)
    assert locate(marks, "p.yaml", ("targets", "train", "deps", 1)) == Where("p.yaml", 4, 15)


def test_locate_falls_back_to_the_nearest_present_ancestor():
    _, marks = parse_yaml(b"targets:\n  train:\n    cmd: run\n", "p.yaml")
    assert locate(marks, "p.yaml", ("targets", "train", "outs", 3)) == Where("p.yaml", 3, 5)
    assert locate({}, "p.yaml", ("x",)) == Where("p.yaml")


def test_without_marks_the_value_is_the_same():
    text = b"a: [1, {b: c}]\n"
    assert parse_yaml(text, "f", want_marks=False)[0] == parse_yaml(text, "f")[0]
    assert parse_yaml(text, "f", want_marks=False)[1] == {}
