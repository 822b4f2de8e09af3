"""Params: inline, params_files, -S overrides, ${...} substitution, the command environment."""
from __future__ import annotations

import json
import re

from .support import assert_invalid, ok, status_json

TWO_TARGETS = """
    params:
      prepare: {seed: 42}
      train: {lr: 0.01, epochs: 20}
    targets:
      prepare:
        cmd: echo prepare >> runs.log && echo seed=${prepare.seed} > out/prep.txt
        outs: [out/prep.txt]
      train:
        cmd: echo train >> runs.log && echo lr=${train.lr} epochs=${train.epochs} > out/model.txt
        outs: [out/model.txt]
"""


def test_inline_params_substituted_in_cmd(project, pt):
    project.pipeline(TWO_TARGETS)
    ok(pt("run"))
    assert project.read("out/prep.txt") == "seed=42\n"
    assert project.read("out/model.txt") == "lr=0.01 epochs=20\n"


def test_params_files_merged_in_order(project, pt):
    project.write("p1.yaml", """
        train:
          lr: 0.02
          epochs: 1
    """)
    project.write("p2.json", json.dumps({"train": {"epochs": 5}, "extra": {"tag": "json"}}))
    project.write("p3.toml", """
        [train]
        lr = 0.03
        [extra]
        tag = "toml"
    """)
    project.pipeline("""
        params:
          train: {lr: 0.01, epochs: 20, batch: 64}
        params_files: [p1.yaml, p2.json, p3.toml]
        targets:
          train:
            cmd: echo train >> runs.log && echo ${train.lr} ${train.epochs} ${train.batch} ${extra.tag} > out/model.txt
            outs: [out/model.txt]
    """)
    ok(pt("run"))
    # later files win; keys a file does not mention keep their earlier values
    assert project.read("out/model.txt") == "0.03 5 64 toml\n"


def test_params_file_change_reruns_dependent_target(project, pt):
    project.write("params.yaml", "train: {lr: 0.01}\nprepare: {seed: 1}\n", dedent=False)
    project.pipeline("""
        params_files: [params.yaml]
        targets:
          prepare:
            cmd: echo prepare >> runs.log && echo ${prepare.seed} > out/prep.txt
            outs: [out/prep.txt]
          train:
            cmd: echo train >> runs.log && echo ${train.lr} > out/model.txt
            outs: [out/model.txt]
    """)
    ok(pt("run"))
    project.clear_runs()
    project.write("params.yaml", "train: {lr: 0.5}\nprepare: {seed: 1}\n", dedent=False)
    data = status_json(project)["targets"]
    assert data["train"] == {"state": "stale", "reasons": ["param changed: train.lr 0.01 -> 0.5"]}
    assert data["prepare"]["state"] == "fresh"
    ok(pt("run"))
    assert project.runs() == ["train"]


def test_set_override_reruns_only_dependents(project, pt):
    project.pipeline(TWO_TARGETS)
    ok(pt("run"))
    project.clear_runs()
    res = ok(pt("run", "-S", "train.lr=0.1"))
    assert project.runs() == ["train"]
    assert project.read("out/model.txt") == "lr=0.1 epochs=20\n"
    assert "param changed: train.lr 0.01 -> 0.1" in res.stderr
    # the override was for that invocation only: without it train is stale again
    data = status_json(project)["targets"]
    assert data["train"] == {"state": "stale", "reasons": ["param changed: train.lr 0.1 -> 0.01"]}
    assert data["prepare"]["state"] == "fresh"


def test_set_repeatable(project, pt):
    project.pipeline(TWO_TARGETS)
    ok(pt("run", "-S", "train.lr=0.5", "--set", "train.epochs=3"))
    assert project.read("out/model.txt") == "lr=0.5 epochs=3\n"


def test_set_unknown_key_exit_2_names_closest_key(project, pt):
    project.pipeline(TWO_TARGETS)
    res = pt("run", "-S", "train.lx=0.1")
    assert_invalid(res, "train.lx", "train.lr", project=project)


def test_set_unknown_key_in_status_exit_2(project, pt):
    project.pipeline(TWO_TARGETS)
    assert_invalid(pt("status", "-S", "train.epoch=3"), "train.epochs", project=project)


def test_set_malformed_exit_2(project, pt):
    project.pipeline(TWO_TARGETS)
    assert_invalid(pt("run", "-S", "train.lr"), "train.lr", project=project)


def test_set_value_parsed_as_yaml_core_scalar(project, pt):
    project.pipeline("""
        params:
          train: {lr: 0.01, flag: false, name: x}
        targets:
          dump:
            cmd: echo dump >> runs.log && cp "$PIPETOOL_PARAMS" out/params.json
            params: [train]
            outs: [out/params.json]
    """)
    ok(pt("run", "-S", "train.lr=1e-3", "-S", "train.flag=true", "-S", "train.name=yes"))
    params = json.loads(project.read("out/params.json"))
    assert params["train"]["lr"] == 0.001 and isinstance(params["train"]["lr"], float)
    assert params["train"]["flag"] is True
    assert params["train"]["name"] == "yes"  # YAML 1.2 core: only true/false are booleans


def test_param_in_cmd_makes_target_depend_on_it(project, pt):
    project.pipeline("""
        params:
          train: {lr: 0.01}
          other: {k: 1}
        targets:
          train:
            cmd: echo train >> runs.log && echo ${train.lr} > out/model.txt
            outs: [out/model.txt]
    """)
    ok(pt("run"))
    project.clear_runs()
    # a param the command does not mention does not make it stale
    project.write("pipeline.yaml", project.read("pipeline.yaml").replace("k: 1", "k: 2"), dedent=False)
    ok(pt("run"))
    assert project.runs() == []
    project.write("pipeline.yaml", project.read("pipeline.yaml").replace("lr: 0.01", "lr: 0.1"), dedent=False)
    data = status_json(project)["targets"]
    assert data["train"] == {"state": "stale", "reasons": ["param changed: train.lr 0.01 -> 0.1"]}
    ok(pt("run"))
    assert project.runs() == ["train"]
    assert project.read("out/model.txt") == "0.1\n"


def test_declared_params_subtree_makes_target_depend_on_it(project, pt):
    project.pipeline("""
        params:
          train: {lr: 0.01, epochs: 2}
        targets:
          train:
            cmd: echo train >> runs.log && python -c 'import json,os; print(json.load(open(os.environ["PIPETOOL_PARAMS"]))["train"])' > out/model.txt
            params: [train]
            outs: [out/model.txt]
    """)
    ok(pt("run"))
    data = status_json(project, "-S", "train.epochs=3")["targets"]
    assert data["train"] == {"state": "stale", "reasons": ["param changed: train.epochs 2 -> 3"]}


def test_substitution_renders_and_quotes_values(project, pt):
    project.pipeline("""
        params:
          s: "hello world; echo INJECTED"
          lst: [1, 2]
          m: {a: 1}
          b: true
          n: null
        targets:
          show:
            cmd: echo show >> runs.log && printf '%s|' ${s} ${lst} ${m} ${b} ${n} '$${literal}' > out/show.txt
            outs: [out/show.txt]
    """)
    ok(pt("run"))
    text = project.read("out/show.txt")
    parts = text.split("|")[:-1]
    assert parts[0] == "hello world; echo INJECTED"
    assert json.loads(parts[1]) == [1, 2]
    assert json.loads(parts[2]) == {"a": 1}
    assert parts[3:6] == ["true", "null", "${literal}"]


def test_unknown_param_in_cmd_exit_2(project, pt):
    project.pipeline("""
        params:
          train: {lr: 0.01}
        targets:
          train:
            cmd: echo train >> runs.log && echo ${train.lx} > out/model.txt
            outs: [out/model.txt]
    """)
    assert_invalid(pt("run"), "train.lx", "pipeline.yaml", project=project)


def test_command_environment_has_params_run_id_and_target(project, pt):
    project.pipeline("""
        params:
          train: {lr: 0.01, epochs: 20}
          prepare: {seed: 42}
        targets:
          envdump:
            cmd: >-
              echo envdump >> runs.log &&
              python -c 'import json, os; json.dump({"params": json.load(open(os.environ["PIPETOOL_PARAMS"])), "run": os.environ["PIPETOOL_RUN_ID"], "target": os.environ["PIPETOOL_TARGET"], "params_path": os.environ["PIPETOOL_PARAMS"]}, open("out/env.json", "w"))'
            outs: [out/env.json]
    """)
    res = ok(pt("run", "-S", "train.lr=0.5"))
    env = json.loads(project.read("out/env.json"))
    assert env["target"] == "envdump"
    # the effective params: all of them, with the override applied
    assert env["params"] == {"train": {"lr": 0.5, "epochs": 20}, "prepare": {"seed": 42}}
    assert env["run"]
    m = re.search(r"run (\S+) succeeded", res.stderr)
    assert m and m.group(1) == env["run"], res.stderr
