"""loader: pipeline.yaml -> validated model; every error names file:line:column and the key."""
from __future__ import annotations

import json
import os
import textwrap

import pytest

import pipetool
from pipetool.errors import PipelineError, PipetoolError, UsageError
from pipetool.spec.loader import CACHE_NAME, find_pipeline_file
from pipetool.spec.model import Dep


@pytest.fixture
def proj(tmp_path, monkeypatch):
    """A project folder (the cwd, so errors show `pipeline.yaml:L:C`) and a writer."""
    monkeypatch.chdir(tmp_path)

    def write(yaml_text: str, **files: str):
        (tmp_path / "pipeline.yaml").write_text(textwrap.dedent(yaml_text))
        for name, text in files.items():
            path = tmp_path / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return tmp_path

    return write


def load_error(**kw) -> PipetoolError:
    with pytest.raises(PipetoolError) as ei:
        pipetool.load(**kw)
    return ei.value


SPEC_EXAMPLE = """\
version: 1
params:
  prepare: {split: 0.2, seed: 42}
  train: {lr: 0.01, epochs: 20}
targets:
  prepare:
    cmd: python src/prepare.py --split ${prepare.split} --seed ${prepare.seed}
    deps: [src/prepare.py, data/raw/]
    outs: [data/prepared/]
  features:
    python: src.features:build
    deps: [data/prepared/]
    outs: [data/features.npz]
  train:
    python: src.train:train
    params: [train]
    deps: [data/features.npz]
    outs: [models/model.pkl]
    metrics: [metrics/train.json]
"""


def test_the_spec_example_loads_into_the_model(proj):
    root = proj(SPEC_EXAMPLE)
    p = pipetool.load(cwd=str(root))
    assert p.root == str(root)
    assert p.file == str(root / "pipeline.yaml")
    assert list(p.targets) == ["prepare", "features", "train"]
    prep = p.targets["prepare"]
    assert prep.cmd == "python src/prepare.py --split 0.2 --seed 42"
    assert prep.cmd_template == "python src/prepare.py --split ${prepare.split} --seed ${prepare.seed}"
    assert prep.params == ("prepare.split", "prepare.seed")
    assert prep.deps == (Dep("src/prepare.py"), Dep("data/raw/"))
    assert prep.outs == ("data/prepared/",)
    assert prep.kind == "cmd"
    train = p.targets["train"]
    assert train.kind == "python" and train.python == "src.train:train"
    assert train.params == ("train",)
    assert train.outs == ("models/model.pkl", "metrics/train.json")  # metrics are outs too
    assert train.metrics == ("metrics/train.json",)
    assert p.params == {"prepare": {"split": 0.2, "seed": 42}, "train": {"lr": 0.01, "epochs": 20}}


def test_optional_target_fields_reach_the_model(proj):
    root = proj("""\
        targets:
          a:
            cmd: echo hi > a.txt
            outs: [a.txt]
          b:
            cmd: "true"
            deps: [{path: x.py, hash: bytes}, a.txt]
            needs: [a]
            env: [HOME, MY_VAR]
            always: true
            cache: false
            desc: the b target
            code_version: 2
        """, **{"x.py": ""})
    b = pipetool.load(cwd=str(root)).targets["b"]
    assert b.deps == (Dep("x.py", "bytes"), Dep("a.txt", "auto"))
    assert b.needs == ("a",)
    assert b.env == ("HOME", "MY_VAR")
    assert b.always is True and b.cache is False
    assert b.desc == "the b target"
    assert b.code_version == "2"


def test_declared_and_interpolated_params_are_both_dependencies_once(proj):
    root = proj("""\
        params: {train: {lr: 0.01, epochs: 3}}
        targets:
          t:
            cmd: run ${train.lr} ${train.epochs} ${train.lr}
            params: [train.lr, train.lr]
        """)
    assert pipetool.load(cwd=str(root)).targets["t"].params == ("train.lr", "train.epochs")


def test_the_pipeline_file_is_found_in_a_parent_folder(proj):
    root = proj("targets:\n  t: {cmd: 'true'}\n")
    sub = root / "a" / "b"
    sub.mkdir(parents=True)
    assert find_pipeline_file(cwd=str(sub)) == str(root / "pipeline.yaml")
    assert pipetool.load(cwd=str(sub)).root == str(root)


def test_dash_f_names_another_pipeline_file(proj):
    root = proj("targets:\n  t: {cmd: 'true'}\n")
    (root / "other.yaml").write_text("targets:\n  other: {cmd: 'true'}\n")
    assert list(pipetool.load(file="other.yaml", cwd=str(root)).targets) == ["other"]


def test_a_missing_pipeline_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        pipetool.load(file="nope.yaml", cwd=str(tmp_path))
    with pytest.raises(UsageError, match=r"no pipeline\.yaml"):
        find_pipeline_file(cwd="/")


# --- errors -------------------------------------------------------------------------

def test_malformed_yaml_names_file_line_and_column(proj):
    root = proj("targets:\n  t:\n    cmd: [echo\n    outs: [a]\n")
    err = load_error(cwd=str(root))
    assert isinstance(err, PipelineError)
    assert err.where is not None and err.where.file == "pipeline.yaml"
    assert err.where.line is not None and err.where.column is not None
    assert str(err).startswith(f"pipeline.yaml:{err.where.line}:{err.where.column}: malformed YAML")


def test_a_non_utf8_pipeline_file_is_a_pipeline_error(proj):
    root = proj("")
    (root / "pipeline.yaml").write_bytes(b"targets:\n  t:\n    cmd: \xff\xfe\n")
    assert "UTF-8" in str(load_error(cwd=str(root)))


def test_an_empty_pipeline_file_is_a_pipeline_error(proj):
    root = proj("")
    assert isinstance(load_error(cwd=str(root)), PipelineError)


def test_a_pipeline_file_that_is_not_a_mapping_is_a_pipeline_error(proj):
    root = proj("- a\n- b\n")
    assert "must be a mapping" in str(load_error(cwd=str(root)))


def test_an_unknown_target_field_is_named_with_its_place(proj):
    root = proj("targets:\n  t:\n    cmd: x\n    outputs: [a.txt]\n")
    text = str(load_error(cwd=str(root)))
    assert "pipeline.yaml:4:5" in text
    assert "unknown field 'outputs'" in text
    assert "in targets.t" in text


def test_an_unknown_field_suggests_the_closest_known_one(proj):
    root = proj("targets:\n  t:\n    cmd: x\n    depz: [a.txt]\n")
    assert "did you mean 'deps'" in str(load_error(cwd=str(root)))


def test_an_unknown_top_level_field_is_an_error(proj):
    root = proj("parms: {}\ntargets:\n  t:\n    cmd: x\n")
    text = str(load_error(cwd=str(root)))
    assert "pipeline.yaml:1:1" in text and "unknown field 'parms'" in text and "did you mean 'params'" in text


def test_a_string_where_a_list_belongs_is_an_error_not_a_list_of_characters(proj):
    root = proj("targets:\n  t:\n    cmd: x\n    deps: a.txt\n", **{"a.txt": ""})
    text = str(load_error(cwd=str(root)))
    assert "pipeline.yaml:4:11" in text
    assert "targets.t.deps must be a list, not a string" in text


@pytest.mark.parametrize(
    "body, needle",
    [
        ("cmd: 5", "targets.t.cmd must be a string"),
        ("cmd: x\n    always: maybe", "targets.t.always must be boolean"),
        ("cmd: x\n    outs: {a: 1}", "targets.t.outs must be a list"),
        ("cmd: x\n    needs: [a b]", "targets.t.needs"),
        ("cmd: x\n    env: ['1X']", "targets.t.env"),
        ("python: not_a_callable", "must be 'module:function'"),
        ("cmd: x\n    deps: [{path: a.txt, hash: md5}]", "targets.t.deps[0]"),
        ("cmd: ''", "targets.t.cmd"),
    ],
)
def test_wrong_types_and_shapes_are_schema_errors(proj, body, needle):
    root = proj(f"targets:\n  t:\n    {body}\n")
    err = load_error(cwd=str(root))
    assert isinstance(err, PipelineError)
    assert needle in str(err)
    assert "pipeline.yaml:" in str(err)


def test_every_schema_violation_is_listed(proj):
    root = proj("targets:\n  t:\n    cmd: 1\n    deps: a\n    outs: b\n")
    text = str(load_error(cwd=str(root)))
    assert "invalid" in text
    for needle in ("targets.t.cmd", "targets.t.deps", "targets.t.outs"):
        assert needle in text


@pytest.mark.parametrize(
    "doc, needle",
    [
        ("params: {}\n", "'targets' is required"),
        ("targets: {}\n", "at least one target"),
        ("version: 2\ntargets:\n  t: {cmd: x}\n", "version must be 1"),
        ("targets:\n  'a b': {cmd: x}\n", "invalid target name 'a b'"),
        ("targets:\n  t:\n", "targets.t must be a mapping"),
    ],
)
def test_top_level_shape_errors(proj, doc, needle):
    root = proj(doc)
    assert needle in str(load_error(cwd=str(root)))


def test_version_1_is_accepted(proj):
    root = proj("version: 1\ntargets:\n  t: {cmd: x}\n")
    assert list(pipetool.load(cwd=str(root)).targets) == ["t"]


def test_both_cmd_and_python_is_an_error_naming_the_target(proj):
    root = proj("targets:\n  t:\n    cmd: x\n    python: m:f\n")
    err = load_error(cwd=str(root))
    assert "target 't' has both 'cmd' and 'python'" in err.message
    assert (err.where.line, err.where.column) == (2, 3)


def test_neither_cmd_nor_python_is_an_error_naming_the_target(proj):
    root = proj("targets:\n  ok: {cmd: x}\n  t:\n    outs: [a]\n")
    err = load_error(cwd=str(root))
    assert "target 't' has neither 'cmd' nor 'python'" in err.message
    assert (err.where.line, err.where.column) == (3, 3)


def test_duplicate_yaml_keys_are_an_error(proj):
    root = proj("targets:\n  t:\n    cmd: a\n  t:\n    cmd: b\n")
    err = load_error(cwd=str(root))
    assert "duplicate key 't'" in err.message
    assert (err.where.line, err.where.column) == (4, 3)


@pytest.mark.parametrize("field", ["deps", "outs", "metrics"])
def test_dotdot_escapes_are_errors_with_their_place(proj, field):
    root = proj(f"targets:\n  t:\n    cmd: x\n    {field}: [ok.txt, ../../etc/passwd]\n", **{"ok.txt": ""})
    err = load_error(cwd=str(root))
    assert "escapes the project root" in err.message
    assert "../../etc/passwd" in err.message
    assert err.where.line == 4 and err.where.column is not None


@pytest.mark.parametrize("field", ["deps", "outs"])
def test_absolute_paths_outside_the_root_are_errors(proj, field):
    root = proj(f"targets:\n  t:\n    cmd: x\n    {field}: [/etc/passwd]\n")
    err = load_error(cwd=str(root))
    assert "outside the project root" in err.message
    assert err.where.line == 4


def test_absolute_paths_inside_the_root_are_made_relative(proj, tmp_path):
    root = proj(f"targets:\n  t:\n    cmd: x\n    outs: ['{tmp_path}/out/a.txt']\n")
    assert pipetool.load(cwd=str(root)).targets["t"].outs == ("out/a.txt",)


def test_an_unknown_param_in_cmd_names_the_closest_key(proj):
    root = proj("params:\n  train: {lr: 0.01}\ntargets:\n  t:\n    cmd: run --lr ${train.lrr}\n")
    err = load_error(cwd=str(root))
    assert "unknown param '${train.lrr}'" in err.message
    assert "did you mean 'train.lr'" in err.message
    assert (err.where.line, err.where.column) == (5, 10)


def test_an_unknown_declared_param_names_the_closest_key(proj):
    root = proj("params:\n  train: {lr: 0.01}\ntargets:\n  t:\n    cmd: x\n    params: [trian]\n")
    err = load_error(cwd=str(root))
    assert "unknown param 'trian'" in err.message and "did you mean 'train'" in err.message
    assert err.where.line == 6


def test_errors_keep_their_place_when_the_parsed_file_comes_from_the_cache(proj):
    root = proj("params_files: [p.yaml]\ntargets:\n  t:\n    cmd: run ${a.b}\n", **{"p.yaml": "a: {b: 1}\n"})
    assert pipetool.load(cwd=str(root)).targets["t"].cmd == "run 1"
    assert (root / ".pipetool" / CACHE_NAME).exists()
    (root / "p.yaml").write_text("a: {c: 1}\n")  # same pipeline bytes, params changed
    err = load_error(cwd=str(root))
    assert "unknown param '${a.b}'" in err.message and "did you mean 'a.c'" in err.message
    assert (err.where.file, err.where.line, err.where.column) == ("pipeline.yaml", 4, 10)


def test_the_parse_cache_follows_params_changes(proj):
    root = proj("params_files: [p.yaml]\ntargets:\n  t:\n    cmd: run ${a}\n", **{"p.yaml": "a: 1\n"})
    assert pipetool.load(cwd=str(root)).targets["t"].cmd == "run 1"
    (root / "p.yaml").write_text("a: true\n")
    assert pipetool.load(cwd=str(root)).targets["t"].cmd == "run true"
    assert pipetool.load(cwd=str(root), set=["a=1.0"]).targets["t"].cmd == "run 1.0"


def test_the_parse_cache_never_hides_a_non_utf8_file(proj):
    root = proj("")
    (root / "pipeline.yaml").write_bytes("targets:\n  t: {cmd: x, desc: '\ufffd'}\n".encode())
    pipetool.load(cwd=str(root))
    (root / "pipeline.yaml").write_bytes(b"targets:\n  t: {cmd: x, desc: '\xff'}\n")
    assert "UTF-8" in str(load_error(cwd=str(root)))


def test_an_edited_file_is_validated_again_despite_the_cache(proj):
    root = proj("targets:\n  t: {cmd: x}\n")
    pipetool.load(cwd=str(root))
    (root / "pipeline.yaml").write_text("targets:\n  t: {cmd: x, bogus: 1}\n")
    assert "unknown field 'bogus'" in str(load_error(cwd=str(root)))


def test_a_corrupt_parse_cache_is_ignored(proj):
    root = proj("targets:\n  t: {cmd: x}\n")
    pipetool.load(cwd=str(root))
    (root / ".pipetool" / CACHE_NAME).write_bytes(b"garbage\x00\x01")
    assert list(pipetool.load(cwd=str(root)).targets) == ["t"]


# --- params, params_files and -S --------------------------------------------------------

def test_params_files_of_each_format_merge_over_params_in_order(proj):
    root = proj(
        """\
        params:
          train: {lr: 0.01, epochs: 20, opt: sgd}
          keep: 1
        params_files: [p1.yaml, p2.json, p3.toml]
        targets:
          t: {cmd: x}
        """,
        **{
            "p1.yaml": "train:\n  lr: 0.1\n  extra: a\n",
            "p2.json": json.dumps({"train": {"lr": 0.2, "epochs": 5}}),
            "p3.toml": "[train]\nlr = 0.3\n[new]\nx = 1\n",
        },
    )
    assert pipetool.load(cwd=str(root)).params == {
        "train": {"lr": 0.3, "epochs": 5, "opt": "sgd", "extra": "a"},
        "keep": 1,
        "new": {"x": 1},
    }


def test_params_from_files_can_be_interpolated(proj):
    root = proj("params_files: [conf/p.toml]\ntargets:\n  t: {cmd: 'run ${a.b}'}\n",
                **{"conf__p.toml": "[a]\nb = 'x y'\n"})
    assert pipetool.load(cwd=str(root)).targets["t"].cmd == "run 'x y'"


def test_a_missing_params_file_is_an_error_with_its_place(proj):
    root = proj("params_files: [a.yaml, nope.toml]\ntargets:\n  t: {cmd: x}\n", **{"a.yaml": "a: 1\n"})
    err = load_error(cwd=str(root))
    assert "nope.toml" in err.message and "does not exist" in err.message
    assert err.where.line == 1


def test_a_params_file_outside_the_root_is_an_error(proj):
    root = proj("params_files: [../p.yaml]\ntargets:\n  t: {cmd: x}\n")
    assert "escapes the project root" in load_error(cwd=str(root)).message


def test_set_values_are_yaml_1_2_core_scalars(proj):
    root = proj("params:\n  train: {lr: 0.01, opt: sgd, flag: false}\ntargets:\n  t: {cmd: x}\n")
    p = pipetool.load(cwd=str(root), set=["train.lr=1e-3", "train.opt=yes", "train.flag=true"])
    assert p.params["train"] == {"lr": 0.001, "opt": "yes", "flag": True}
    assert isinstance(p.params["train"]["lr"], float)
    assert p.overrides == {"train.lr": 0.001, "train.opt": "yes", "train.flag": True}


def test_set_overrides_apply_after_params_files_and_reach_the_command(proj):
    root = proj("params:\n  train: {lr: 0.01}\nparams_files: [p.yaml]\ntargets:\n  t: {cmd: 'run ${train.lr}'}\n",
                **{"p.yaml": "train: {lr: 0.5}\n"})
    p = pipetool.load(cwd=str(root), set=["train.lr=0.1"])
    assert p.params["train"]["lr"] == 0.1
    assert p.targets["t"].cmd == "run 0.1"


def test_a_set_key_known_only_through_a_params_file_is_valid(proj):
    root = proj("params_files: [p.json]\ntargets:\n  t: {cmd: x}\n", **{"p.json": '{"model": {"depth": 3}}'})
    assert pipetool.load(cwd=str(root), set=["model.depth=4"]).params == {"model": {"depth": 4}}


def test_an_unknown_set_key_names_the_closest_known_key(proj):
    root = proj("params:\n  train: {lr: 0.01}\ntargets:\n  t: {cmd: x}\n")
    err = load_error(cwd=str(root), set=["train.lrr=0.1"])
    assert isinstance(err, UsageError)
    assert "train.lrr" in err.message and "did you mean 'train.lr'" in err.message


def test_set_overrides_are_not_written_anywhere(proj):
    root = proj("params:\n  train: {lr: 0.01}\ntargets:\n  t: {cmd: 'run ${train.lr}'}\n")
    pipetool.load(cwd=str(root), set=["train.lr=0.1"])
    p = pipetool.load(cwd=str(root))
    assert p.params == {"train": {"lr": 0.01}} and p.targets["t"].cmd == "run 0.01"


def test_a_params_file_with_a_date_inside_an_interpolated_subtree_is_not_a_crash(proj):
    # TOML has dates: they become ISO 8601 strings; `${sec}` renders the mapping as compact JSON.
    root = proj("params_files: [p.toml]\ntargets:\n  t: {cmd: 'echo ${sec}'}\n",
                **{"p.toml": "[sec]\nwhen = 1979-05-27\n"})
    p = pipetool.load(cwd=str(root))
    assert p.params == {"sec": {"when": "1979-05-27"}}
    assert p.targets["t"].cmd == """echo '{"when":"1979-05-27"}'"""


def test_nothing_is_read_or_written_outside_the_project_state_folder(proj):
    root = proj("targets:\n  t: {cmd: x}\n")
    before = set(os.listdir(root))
    pipetool.load(cwd=str(root))
    assert set(os.listdir(root)) - before <= {".pipetool"}


@pytest.mark.parametrize("field", ["outs", "deps"])
def test_a_path_with_a_nul_byte_is_a_pipeline_error_not_a_crash(proj, field):
    root = proj(f'targets:\n  t:\n    cmd: x\n    {field}: ["a\\0b.txt"]\n')
    with pytest.raises(PipetoolError):
        pipetool.load(cwd=str(root))
        pipetool.status(cwd=str(root))


# --- params are JSON values; refusals are placed ------------------------------------------

def test_nan_in_the_pipeline_params_is_an_error_at_its_place(proj):
    root = proj("params:\n  train:\n    lr: .inf\ntargets:\n  t: {cmd: 'run ${train.lr}'}\n")
    err = load_error(cwd=str(root))
    assert isinstance(err, PipelineError)
    assert "param 'train.lr' (in the pipeline's params) is not a finite number (it reads as .inf)" in err.message
    assert (err.where.file, err.where.line, err.where.column) == ("pipeline.yaml", 3, 9)


def test_a_non_finite_set_value_is_a_usage_error(proj):
    root = proj("params: {a: 1}\ntargets:\n  t: {cmd: 'run ${a}'}\n")
    with pytest.raises(UsageError) as ei:
        pipetool.load(cwd=str(root), set=["a=1e400"])
    assert "param 'a' (set by -S) is not a finite number (it reads as .inf)" in ei.value.message


def test_an_api_set_mapping_must_hold_json_values(proj):
    root = proj("params: {a: 1}\ntargets:\n  t: {cmd: 'run ${a}'}\n")
    with pytest.raises(UsageError, match="is a set, which is not a JSON value"):
        pipetool.load(cwd=str(root), set={"a": {1, 2}})


def test_an_unsafe_placeholder_is_an_error_at_the_command(proj):
    root = proj("params: {s: 'a b'}\ntargets:\n  t:\n    cmd: echo $'${s}'\n")
    err = load_error(cwd=str(root))
    assert "target 't': cmd: '${s}' sits inside $'…'" in err.message
    assert (err.where.file, err.where.line) == ("pipeline.yaml", 4)


def test_an_unsafe_placeholder_in_a_check_is_an_error_naming_the_check(proj):
    root = proj("params: {s: 'a b'}\ntargets:\n  t:\n    cmd: 'true'\n    checks: ['true', 'echo $((${s}))']\n")
    assert "target 't': check 2: '${s}' sits where bash evaluates arithmetic" in load_error(cwd=str(root)).message


def test_an_ambiguous_declared_param_is_an_error_at_its_place(proj):
    root = proj("params:\n  a.b: 1\n  a: {b: 2}\ntargets:\n  t:\n    cmd: 'true'\n    params: [a.b]\n")
    err = load_error(cwd=str(root))
    assert "target 't' declares param 'a.b' is ambiguous" in err.message
    assert (err.where.file, err.where.line) == ("pipeline.yaml", 7)


# --- the spec cache: plain JSON, keyed before it is trusted ----------------------------------

def test_the_spec_cache_is_plain_json_and_rebuilds_the_same_model(proj):
    from pipetool.graph import build_graph

    root = proj(SPEC_EXAMPLE.replace("    deps: [src/prepare.py, data/raw/]",
                                     "    deps: [src/prepare.py, {path: data/raw/, hash: bytes}]\n"
                                     "    checks: ['test -d data/prepared', {python: 'src.c:check'}]\n"
                                     "    resources: {gpu: 1}\n    env: [HOME]\n    code_version: v2"))
    fresh = pipetool.load(cwd=str(root))
    graph = fresh.derived("graph", lambda: build_graph(fresh))
    saved = json.loads((root / ".pipetool" / CACHE_NAME).read_bytes())
    assert set(saved) == {"key", "head", "model_key", "targets", "params", "derived", "partitions"}
    assert json.loads((root / ".pipetool" / (CACHE_NAME + ".doc")).read_bytes())["key"] == saved["key"]
    again = pipetool.load(cwd=str(root))
    assert again.targets == fresh.targets and again.params == fresh.params
    assert again.targets["prepare"].checks[1].python == "src.c:check"
    assert again.targets["prepare"].resources == (("gpu", 1.0),)
    assert again.derived("graph", lambda: pytest.fail("the graph was built again")) == graph


@pytest.mark.parametrize("content", [b"\x80\x04garbage", b"[]", b'{"key": 1}', b"{", b"null", b"[" * 100000])
def test_a_foreign_or_broken_spec_cache_is_ignored(proj, content):
    root = proj("targets:\n  t: {cmd: x}\n")
    pipetool.load(cwd=str(root))
    for name in (CACHE_NAME, CACHE_NAME + ".doc"):
        (root / ".pipetool" / name).write_bytes(content)
    assert pipetool.load(cwd=str(root)).targets["t"].cmd == "x"


def test_a_cache_with_the_right_key_but_the_wrong_shape_is_ignored(proj):
    root = proj("targets:\n  t: {cmd: x}\n")
    pipetool.load(cwd=str(root))
    path = root / ".pipetool" / CACHE_NAME
    saved = json.loads(path.read_bytes())
    saved["targets"] = [["t", "x"]]  # too few fields for a Target
    path.write_text(json.dumps(saved))
    assert pipetool.load(cwd=str(root)).targets["t"].cmd == "x"


def test_a_cache_for_another_copy_of_the_same_file_is_not_used(proj):
    root = proj("targets:\n  t: {cmd: x}\n")
    pipetool.load(cwd=str(root))
    path = root / ".pipetool" / CACHE_NAME
    path.write_text(path.read_text().replace('"x"', '"touch PWNED"'))
    assert pipetool.load(cwd=str(root)).targets["t"].cmd == "touch PWNED"  # same file: the key holds
    (root / "new.yaml").write_text("targets:\n  t: {cmd: x}\n")
    os.replace(root / "new.yaml", root / "pipeline.yaml")  # same bytes, another file
    assert pipetool.load(cwd=str(root)).targets["t"].cmd == "x"
