"""`params_schema:` (SPEC §9) through the real command: every violation listed with its
param path, exit 2 and nothing run; schema defaults fill params, `${}` and `-S` see them."""
from __future__ import annotations

import json

from .support import assert_invalid, ok, status_json

SCHEMA = """
    type: object
    properties:
      train:
        type: object
        properties:
          lr: {type: number, minimum: 0}
          epochs: {type: integer, minimum: 1, default: 3}
          optim:
            type: object
            properties:
              name: {enum: [sgd, adam], default: sgd}
              beta: {type: number, default: 0.9}
        required: [lr]
      seed: {type: integer}
    required: [train]
"""

PIPELINE = """
    params:
      train: {lr: 0.01}
      seed: 1
    params_schema: schema/params.yaml
    targets:
      train:
        cmd: echo train >> runs.log && echo lr=${train.lr} epochs=${train.epochs} optim=${train.optim.name} > out/model.txt
        outs: [out/model.txt]
      dump:
        cmd: echo dump >> runs.log && cat $PIPETOOL_PARAMS > out/params.json
        params: [train.optim]
        outs: [out/params.json]
"""


def _setup(project, pipeline: str = PIPELINE, schema: str = SCHEMA) -> None:
    project.write("schema/params.yaml", schema)
    project.pipeline(pipeline)


def test_several_violations_are_listed_with_their_param_paths_exit_2_nothing_run(project, pt):
    _setup(project, PIPELINE.replace("train: {lr: 0.01}", "train: {lr: -1, epochs: many, optim: {name: rmsprop}}")
           .replace("seed: 1", "seed: 1.5"))
    res = pt("run")
    assert_invalid(res, "params schema schema/params.yaml", "4 problems",
                   "train.lr: -1 is less than the minimum of 0",
                   "train.epochs: 'many' is not of type 'integer'",
                   "train.optim.name: 'rmsprop' is not one of ['sgd', 'adam']",
                   "seed: 1.5 is not of type 'integer'", project=project)
    assert_invalid(pt("status"), "train.lr: -1 is less than the minimum of 0")


def test_a_missing_required_param_is_named(project, pt):
    _setup(project, PIPELINE.replace("train: {lr: 0.01}", "train: {epochs: 2}"))
    assert_invalid(pt("run"), "train.lr: is required but missing", project=project)


def test_overrides_and_params_files_are_validated_too(project, pt):
    _setup(project, PIPELINE.replace("params_schema:", "params_files: [params.json]\n    params_schema:"))
    project.write("params.json", json.dumps({"train": {"epochs": 0}}))
    assert_invalid(pt("run", "-S", "train.lr=-0.5", "-S", "seed=x"),
                   "train.epochs: 0 is less than the minimum of 1",
                   "train.lr: -0.5 is less than the minimum of 0",
                   "seed: 'x' is not of type 'integer'", project=project)
    project.write("params.json", json.dumps({"train": {"epochs": 2}}))
    ok(pt("run"))
    assert project.read("out/model.txt") == "lr=0.01 epochs=2 optim=sgd\n"


def test_schema_defaults_fill_params_for_interpolation_and_the_params_file(project, pt):
    _setup(project)
    ok(pt("run"))
    assert sorted(project.runs()) == ["dump", "train"]
    assert project.read("out/model.txt") == "lr=0.01 epochs=3 optim=sgd\n"
    assert json.loads(project.read("out/params.json")) == {
        "train": {"lr": 0.01, "epochs": 3, "optim": {"name": "sgd", "beta": 0.9}}, "seed": 1}
    ok(pt("run"))
    assert sorted(project.runs()) == ["dump", "train"]


def test_s_sets_a_param_known_only_by_a_schema_default(project, pt):
    _setup(project)
    ok(pt("run"))
    project.clear_runs()
    data = status_json(project, "-S", "train.optim.name=adam")["targets"]
    assert data["train"] == {"state": "stale", "reasons": ["param changed: train.optim.name sgd -> adam"]}, data
    assert data["dump"] == {"state": "stale", "reasons": ["param changed: train.optim.name sgd -> adam"]}, data
    ok(pt("run", "-S", "train.optim.name=adam"))
    assert sorted(project.runs()) == ["dump", "train"]
    assert project.read("out/model.txt") == "lr=0.01 epochs=3 optim=adam\n"
    assert_invalid(pt("run", "-S", "train.optim.name=rmsprop"), "train.optim.name: 'rmsprop' is not one of")
    res = pt("run", "-S", "train.optim.nme=adam")
    assert res.returncode == 2 and "did you mean 'train.optim.name'" in res.stderr, res.stderr


def test_a_changed_default_reruns_what_uses_it(project, pt):
    _setup(project)
    ok(pt("run"))
    project.clear_runs()
    project.write("schema/params.yaml", SCHEMA.replace("default: 3", "default: 5"))
    data = status_json(project)["targets"]
    assert data["train"] == {"state": "stale", "reasons": ["param changed: train.epochs 3 -> 5"]}, data
    assert data["dump"]["state"] == "fresh"
    ok(pt("run"))
    assert project.runs() == ["train"]


def test_a_tightened_schema_is_checked_against_unchanged_params(project, pt):
    _setup(project)
    ok(pt("run"))
    project.write("schema/params.yaml", SCHEMA.replace("minimum: 0}", "minimum: 0.1}"))
    assert_invalid(pt("status"), "train.lr: 0.01 is less than the minimum of 0.1")


def test_an_inline_schema(project, pt):
    project.pipeline("""
        params:
          n: 5
        params_schema:
          properties:
            n: {type: integer, maximum: 3}
            label: {type: string, default: small}
        targets:
          t:
            cmd: echo t >> runs.log && echo ${label} ${n} > out/t.txt
            outs: [out/t.txt]
        """)
    assert_invalid(pt("run"), "n: 5 is greater than the maximum of 3", project=project)
    ok(pt("run", "-S", "n=2"))
    assert project.read("out/t.txt") == "small 2\n"


def test_a_bad_schema_is_exit_2(project, pt):
    _setup(project, schema="type: object\nproperties:\n  train: {type: 5}\n")
    assert_invalid(pt("run"), "schema/params.yaml", "not a valid JSON Schema", project=project)
    project.pipeline(PIPELINE.replace("schema/params.yaml", "schema/missing.json"))
    assert_invalid(pt("run"), "pipeline.yaml:5", "params schema 'schema/missing.json' does not exist",
                   project=project)
