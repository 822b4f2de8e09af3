"""params_schema (SPEC §9): defaults fill missing params, every violation is listed with
its param path, `-S` may set what the schema declares, and a no-op load imports nothing."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import pipetool
from pipetool.errors import PipelineError, PipetoolError, UsageError
from pipetool.spec.params import apply_overrides
from pipetool.spec.paramschema import SchemaSource, apply_defaults, declared_keys, validate_params

SCHEMA = {
    "type": "object",
    "properties": {
        "train": {
            "type": "object",
            "properties": {
                "lr": {"type": "number", "minimum": 0, "default": 0.01},
                "epochs": {"type": "integer", "minimum": 1, "default": 3},
                "optim": {
                    "type": "object",
                    "properties": {"beta": {"type": "number", "default": 0.9}, "name": {"type": "string"}},
                },
            },
            "required": ["lr"],
        },
        "seed": {"type": "integer"},
    },
}


def inline(schema) -> SchemaSource:
    return SchemaSource("the inline params_schema", "x", None, schema, None)


def test_defaults_fill_missing_params_nested_objects_included():
    assert apply_defaults({}, SCHEMA) == {"train": {"lr": 0.01, "epochs": 3, "optim": {"beta": 0.9}}}
    assert apply_defaults({"train": {"lr": 0.5, "optim": {"beta": 0.1}}, "seed": 7}, SCHEMA) == \
        {"train": {"lr": 0.5, "epochs": 3, "optim": {"beta": 0.1}}, "seed": 7}


def test_defaults_never_replace_a_given_value_not_even_null():
    assert apply_defaults({"train": {"lr": None}}, SCHEMA)["train"]["lr"] is None


def test_a_mapping_default_is_filled_below_too_and_copied():
    schema = {"properties": {"opt": {"default": {"a": 1},
                                     "properties": {"b": {"default": 2}}}}}
    first = apply_defaults({}, schema)
    assert first == {"opt": {"a": 1, "b": 2}}
    first["opt"]["a"] = 99
    assert apply_defaults({}, schema) == {"opt": {"a": 1, "b": 2}}


def test_defaults_through_refs_and_allof():
    schema = {
        "$defs": {"opt": {"type": "object", "properties": {"beta": {"default": 0.9}}}},
        "allOf": [{"properties": {"a": {"default": 1}}}],
        "properties": {"optim": {"$ref": "#/$defs/opt"}},
    }
    assert apply_defaults({}, schema) == {"a": 1, "optim": {"beta": 0.9}}


def test_a_recursive_schema_does_not_loop():
    schema = {"properties": {"child": {"$ref": "#"}, "x": {"default": 1}}}
    out = apply_defaults({}, schema)
    assert out["x"] == 1


def test_declared_keys_lists_every_path():
    assert declared_keys(SCHEMA) == ["train", "train.lr", "train.epochs", "train.optim", "train.optim.beta",
                                     "train.optim.name", "seed"]


def test_every_violation_is_listed_with_its_param_path():
    params = {"train": {"lr": -1, "epochs": "x", "optim": {"beta": "high"}}, "seed": 1.5}
    with pytest.raises(PipelineError) as ei:
        validate_params(params, inline(SCHEMA))
    msg = ei.value.message
    assert "4 problems" in msg
    lines = msg.splitlines()[1:]
    assert lines == [
        "  seed: 1.5 is not of type 'integer'",
        "  train.epochs: 'x' is not of type 'integer'",
        "  train.lr: -1 is less than the minimum of 0",
        "  train.optim.beta: 'high' is not of type 'number'",
    ]


def test_a_missing_required_param_is_named_by_its_path():
    with pytest.raises(PipelineError) as ei:
        validate_params({"train": {}}, inline(SCHEMA))
    assert "train.lr: is required but missing" in ei.value.message


def test_valid_params_pass():
    validate_params(apply_defaults({"seed": 3}, SCHEMA), inline(SCHEMA))


def test_an_invalid_schema_is_a_pipeline_error():
    with pytest.raises(PipelineError) as ei:
        validate_params({}, inline({"type": 5}))
    assert "not a valid JSON Schema" in ei.value.message


def test_overrides_may_set_keys_the_schema_declares():
    params = apply_overrides({"a": 1}, {"train.optim.name": "adam"}, declared_keys(SCHEMA))
    assert params == {"a": 1, "train": {"optim": {"name": "adam"}}}
    with pytest.raises(UsageError) as ei:
        apply_overrides({"a": 1}, {"train.optimm.name": "adam"}, declared_keys(SCHEMA))
    assert "did you mean 'train.optim.name'" in ei.value.message
    with pytest.raises(UsageError):
        apply_overrides({"a": 1, "train": 5}, {"train.lr": 1}, declared_keys(SCHEMA))


# -- through the loader ------------------------------------------------------------------


@pytest.fixture
def proj(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def write(yaml_text: str, files: dict[str, str] | None = None):
        (tmp_path / "pipeline.yaml").write_text(textwrap.dedent(yaml_text))
        for name, text in (files or {}).items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return tmp_path

    return write


PIPE = """
params:
  train: {lr: 0.1}
params_schema: schema/params.yaml
targets:
  t:
    cmd: echo ${train.lr} ${train.epochs} ${train.optim.beta}
    outs: [o.txt]
"""

SCHEMA_YAML = """
type: object
properties:
  train:
    type: object
    properties:
      lr: {type: number, minimum: 0}
      epochs: {type: integer, default: 3}
      optim:
        type: object
        properties:
          beta: {type: number, default: 0.9}
"""


def test_loader_fills_defaults_before_interpolation(proj):
    proj(PIPE, {"schema/params.yaml": SCHEMA_YAML})
    p = pipetool.load()
    assert p.params == {"train": {"lr": 0.1, "epochs": 3, "optim": {"beta": 0.9}}}
    assert p.targets["t"].cmd == "echo 0.1 3 0.9"
    assert set(p.targets["t"].params) == {"train.lr", "train.epochs", "train.optim.beta"}


def test_loader_lets_s_set_a_key_known_only_by_a_default(proj):
    proj(PIPE, {"schema/params.yaml": SCHEMA_YAML})
    p = pipetool.load(set=["train.optim.beta=0.5", "train.epochs=7"])
    assert p.targets["t"].cmd == "echo 0.1 7 0.5"


def test_loader_validates_params_files_and_overrides(proj):
    proj(PIPE.replace("params_schema:", "params_files: [p.json]\nparams_schema:"),
         {"schema/params.yaml": SCHEMA_YAML, "p.json": json.dumps({"train": {"epochs": 2.5}})})
    with pytest.raises(PipelineError) as ei:
        pipetool.load(set=["train.lr=-1"])
    assert "train.epochs: 2.5 is not of type 'integer'" in ei.value.message
    assert "train.lr: -1 is less than the minimum of 0" in ei.value.message


def test_a_changed_schema_is_validated_again_though_the_params_did_not_change(proj):
    root = proj(PIPE, {"schema/params.yaml": SCHEMA_YAML})
    pipetool.load()
    (root / "schema/params.yaml").write_text(SCHEMA_YAML.replace("minimum: 0", "minimum: 1"))
    with pytest.raises(PipelineError) as ei:
        pipetool.load()
    assert "train.lr: 0.1 is less than the minimum of 1" in ei.value.message


@pytest.mark.parametrize("value,needle", [
    ("schema/nope.json", "params schema 'schema/nope.json' does not exist"),
    ("schema/params.txt", "must end in .json, .yaml or .yml"),
    ("../outside.json", "outside"),
])
def test_a_bad_schema_path_is_an_error_at_its_place(proj, value, needle):
    proj(PIPE.replace("schema/params.yaml", value), {"schema/params.txt": "{}"})
    with pytest.raises(PipetoolError) as ei:
        pipetool.load()
    assert needle in str(ei.value)
    assert "pipeline.yaml:4" in str(ei.value)


def test_a_schema_that_is_not_a_mapping_is_an_error(proj):
    proj(PIPE.replace("params.yaml", "params.json"), {"schema/params.json": "[1, 2]"})
    with pytest.raises(PipelineError) as ei:
        pipetool.load()
    assert "must be a JSON Schema object" in str(ei.value)


def test_an_inline_schema(proj):
    proj(PIPE.replace("params_schema: schema/params.yaml",
                      "params_schema:\n  properties:\n    train:\n      properties:\n"
                      "        epochs: {default: 4}\n        optim: {default: {beta: 1}}\n"
                      "        lr: {maximum: 0.05}"))
    with pytest.raises(PipelineError) as ei:
        pipetool.load()
    assert "train.lr: 0.1 is greater than the maximum of 0.05" in ei.value.message
    assert pipetool.load(set=["train.lr=0.01"]).targets["t"].cmd == "echo 0.01 4 1"


def test_a_no_op_load_does_not_import_jsonschema(proj):
    root = proj(PIPE, {"schema/params.yaml": SCHEMA_YAML})
    script = ("import sys, pipetool; p = pipetool.load(); "
              "print(p.targets['t'].cmd, 'jsonschema' in sys.modules)")
    first = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    assert first.stdout.split() == ["echo", "0.1", "3", "0.9", "True"], first.stderr
    again = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    assert again.stdout.split() == ["echo", "0.1", "3", "0.9", "False"], again.stderr
