"""interpolate: `${a.b}` renders params as YAML writes them, shell-quoted only where needed."""
from __future__ import annotations

import math
import shlex
import subprocess

import pytest

from pipetool.spec.interpolate import interpolate, render_value

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
