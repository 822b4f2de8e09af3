"""interpolate: `${a.b}` renders params as YAML writes them, quoted for the place it sits in."""
from __future__ import annotations

import math
import re
import shlex
import subprocess

import pytest

from pipetool.spec.interpolate import interpolate, render_value
from pipetool.spec.params import AmbiguousParam
from pipetool.spec.shellquote import Refused, in_context, quote_word

PARAMS = {
    "train": {"lr": 0.01, "epochs": 20, "opt": "adam", "flag": True, "none": None,
              "layers": [64, 32], "sched": {"kind": "cos", "warm": 5}},
    "msg": "hello world",
    "danger": "$(rm -rf /); `x` | y > z",
    "seed": 42,
}


@pytest.mark.parametrize(
    "value, text",
    [
        (0.01, "0.01"),
        (20, "20"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        ("adam", "adam"),
        ([64, 32], "[64,32]"),
        ({"kind": "cos", "warm": 5}, '{"kind":"cos","warm":5}'),
        (math.inf, ".inf"),
        (-math.inf, "-.inf"),
        (math.nan, ".nan"),
    ],
)
def test_values_render_as_yaml_scalars_or_compact_json(value, text):
    assert render_value(value) == text


def test_a_param_is_substituted_and_becomes_a_dependency():
    cmd, used, unknown = interpolate("train --lr ${train.lr} --epochs ${train.epochs}", PARAMS)
    assert cmd == "train --lr 0.01 --epochs 20"
    assert used == ["train.lr", "train.epochs"]
    assert unknown == []


def test_a_top_level_param_is_substituted():
    assert interpolate("seed=${seed}", PARAMS)[0] == "seed=42"


def test_a_repeated_param_is_listed_once():
    _, used, _ = interpolate("${seed} ${seed} ${ seed }", PARAMS)
    assert used == ["seed"]


def test_booleans_and_null_render_like_yaml():
    assert interpolate("${train.flag} ${train.none}", PARAMS)[0] == "true null"


def test_lists_and_mappings_render_as_quoted_compact_json():
    cmd, used, _ = interpolate("x ${train.layers} ${train.sched}", PARAMS)
    assert shlex.split(cmd) == ["x", "[64,32]", '{"kind":"cos","warm":5}']
    assert used == ["train.layers", "train.sched"]


def test_values_the_shell_would_split_or_expand_are_quoted():
    cmd, _, _ = interpolate("echo ${msg} ${danger}", PARAMS)
    assert shlex.split(cmd) == ["echo", "hello world", "$(rm -rf /); `x` | y > z"]
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True).stdout
    assert out == "hello world $(rm -rf /); `x` | y > z\n"


def test_plain_values_are_not_quoted():
    assert interpolate("${train.opt}", PARAMS)[0] == "adam"


def test_double_dollar_is_a_literal_brace_and_is_not_a_param():
    cmd, used, unknown = interpolate("echo $${HOME} ${seed}", PARAMS)
    assert cmd == "echo ${HOME} 42"
    assert used == ["seed"] and unknown == []


def test_plain_shell_variables_are_left_alone():
    cmd, used, unknown = interpolate("echo $HOME $1 $$", PARAMS)
    assert cmd == "echo $HOME $1 $$"
    assert used == [] and unknown == []


def test_unknown_params_are_reported_and_left_in_place():
    cmd, used, unknown = interpolate("run ${train.lrr} ${nope}", PARAMS)
    assert unknown == ["train.lrr", "nope"]
    assert used == []
    assert cmd == "run ${train.lrr} ${nope}"


def test_a_subtree_param_makes_the_subtree_a_dependency():
    _, used, _ = interpolate("${train.sched}", PARAMS)
    assert used == ["train.sched"]


# -- the quoting context a placeholder sits in ---------------------------------------------


def bash(cmd: str) -> str:
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True).stdout


DANGER = {"d": "$(rm -rf /); `x` | y > z"}


@pytest.mark.parametrize("template, rendered", [
    ("echo ${d}", "echo '$(rm -rf /); `x` | y > z'"),
    ("echo '${d}'", "echo ''" + "'$(rm -rf /); `x` | y > z'" + "''"),
    ('echo "${d}"', 'echo "\\$(rm -rf /); \\`x\\` | y > z"'),
])
def test_a_value_is_quoted_for_the_context_it_sits_in(template, rendered):
    cmd, used, _ = interpolate(template, DANGER)
    assert cmd == rendered and used == ["d"]
    assert bash(cmd) == DANGER["d"] + "\n"


@pytest.mark.parametrize("template, before, after", [
    ("printf '%s|' ${v}", "", "|"),
    ("printf '%s|' '${v}'", "", "|"),
    ("printf '%s|' \"${v}\"", "", "|"),
    ("printf '%s|' \"a-${v}-b\"", "a-", "-b|"),
    ("printf '%s|' 'a-${v}-b'", "a-", "-b|"),
])
@pytest.mark.parametrize("value", ["; touch X", "it's", 'say "hi"', "$(id)", "`id`", "a\\b", "x\ny", "*", ""])
def test_each_context_gives_the_value_back_exactly(template, before, after, value, tmp_path):
    cmd, _, _ = interpolate(template, {"v": value})
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out == before + value + after
    assert list(tmp_path.iterdir()) == []


def test_a_value_with_a_newline_is_written_without_one_unquoted():
    assert quote_word("a\nb'c") == "$'a\\nb\\'c'"
    assert "\n" not in interpolate("echo ${v} # ${v}", {"v": "a\ntouch X"})[0]
    assert bash(interpolate("printf %s ${v} # ${v}", {"v": "a\ntouch X"})[0]) == "a\ntouch X"


def test_a_plain_value_is_written_as_is_in_every_context():
    for context in ("", "'", '"'):
        assert in_context("0.01", context) == "0.01"
    assert interpolate("echo '${seed}' \"${train.lr}\"", PARAMS)[0] == "echo '42' \"0.01\""


def test_a_placeholder_inside_command_substitution_takes_the_inner_context():
    cmd, _, _ = interpolate("echo \"$(printf %s ${msg})\" \"$(printf %s '${msg}')\"", PARAMS)
    assert bash(cmd) == "hello world hello world\n"


def test_backticks_are_escaped_for_their_own_unescaping():
    cmd, _, _ = interpolate('echo "`printf %s \\"${v}\\"`"', {"v": 'a"b$c`d\\e'})
    assert bash(cmd) == 'a"b$c`d\\e\n'


def test_a_comment_keeps_its_quotes_inert():
    cmd, used, _ = interpolate("echo a # it's ${msg}\necho '${msg}'", PARAMS)
    assert bash(cmd) == "a\nhello world\n"
    assert used == ["msg"]


def test_a_case_pattern_inside_command_substitution_does_not_end_it():
    cmd, _, _ = interpolate("echo \"$(case x in x) printf %s '${v}';; esac)\"", {"v": "'; touch X; '"})
    assert bash(cmd) == "'; touch X; '\n"


@pytest.mark.parametrize("template, needle", [
    ("cat <<EOF\n${v}\nEOF", "inside a here-document"),
    ("cat <<'EOF'\n${v}\nEOF", "inside a here-document"),
    ("echo $'${v}'", "inside $'…'"),
    ("echo $${X:-${v}}", "inside a shell ${…} expansion"),
    ("echo $(( ${v} + 1 ))", "where bash evaluates arithmetic"),
    ("(( n = ${v} ))", "where bash evaluates arithmetic"),
    ("let n=${v}", "where bash evaluates arithmetic"),
    ("a[${v}]=1", "where bash evaluates arithmetic"),
    ("[[ ${v} -gt 1 ]]", "where bash evaluates arithmetic"),
    ("echo \\${v}", "a backslash before a placeholder"),
])
def test_where_no_quoting_works_an_unsafe_value_is_refused(template, needle):
    with pytest.raises(Refused) as ei:
        interpolate(template, {"v": "a[$(touch X)] y"})
    assert needle in str(ei.value)


@pytest.mark.parametrize("template, out", [
    ("cat <<EOF\n${v}\nEOF", "12\n"),
    ("echo $(( ${v} + 1 ))", "13\n"),
    ("[[ ${v} -gt 1 ]] && echo yes", "yes\n"),
    ("echo $${X:-${v}}", "12\n"),
])
def test_where_no_quoting_works_a_number_still_goes(template, out):
    assert bash(interpolate(template, {"v": 12})[0]) == out


def test_a_value_that_would_end_a_here_document_is_refused():
    with pytest.raises(Refused, match="its delimiter"):
        interpolate("cat <<EOF\n${v}\nrm -rf data\nEOF", {"v": "EOF"})


def test_a_nul_character_is_refused():
    with pytest.raises(Refused, match="NUL"):
        interpolate("echo ${v}", {"v": "a\0b"})


def test_a_literal_dollar_brace_is_kept_in_every_context():
    assert interpolate("echo $${A} '$${B}' \"$${C}\"", {})[0] == "echo ${A} '${B}' \"${C}\""
    assert interpolate("echo \\$${A} \"\\$${B}\"", {})[0] == "echo \\${A} \"\\${B}\""


def test_a_dotted_key_names_a_literal_key_or_a_nested_one():
    assert interpolate("${a.b} ${c.d}", {"a.b": 1, "c": {"d": 2}})[0] == "1 2"
    with pytest.raises(AmbiguousParam, match=re.escape("names both 'a.b' and 'a' → 'b'")):
        interpolate("${a.b}", {"a.b": 1, "a": {"b": 2}})
