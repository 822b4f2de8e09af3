"""Fuzzing the loader: whatever bytes sit in pipeline.yaml, `load` (and `status` on what
loads) either succeeds or raises a PipetoolError, never any other exception."""
from __future__ import annotations

import os
import tempfile

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import pipetool
from pipetool.errors import PipetoolError
from pipetool.graph import build_graph

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID = """\
version: 1
params:
  prepare: {split: 0.2, seed: 42}
  train: {lr: 0.01, epochs: 20, layers: [64, 32]}
params_files: [params.json]
targets:
  prepare:
    cmd: cat data/raw/*.csv > data/prepared.csv # --split ${prepare.split} --seed ${prepare.seed}
    deps: [data/raw/, "data/raw/*.csv"]
    outs: [data/prepared.csv]
    desc: split the raw data
  train:
    cmd: echo ${train.lr} ${train} $${HOME} > models/model.txt
    params: [train.epochs]
    deps: [data/prepared.csv, {path: src/train.py, hash: bytes}]
    outs: [models/model.txt]
    metrics: [metrics/train.json]
    env: [HOME]
    needs: [prepare]
  report:
    cmd: "true"
    always: true
    cache: false
    code_version: 2
    deps: [models/, metrics/train.json]
"""

FILES = {
    "params.json": '{"train": {"lr": 0.1}}',
    "data/raw/a.csv": "1,2\n",
    "src/train.py": "def train():\n    pass\n",
}


def check(text: bytes, also_status: bool = False) -> None:
    with tempfile.TemporaryDirectory() as root:
        for name, content in FILES.items():
            path = os.path.join(root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(content)
        with open(os.path.join(root, "pipeline.yaml"), "wb") as f:
            f.write(text)
        try:
            p = pipetool.load(cwd=root)
        except PipetoolError as exc:
            assert str(exc)
            return
        # A second load (from the parse cache) must agree with the first.
        again = pipetool.load(cwd=root)
        assert again.targets == p.targets and again.params == p.params
        if not also_status:
            return
        try:
            build_graph(p)
            pipetool.status(cwd=root)
        except PipetoolError as exc:
            assert str(exc)


def test_the_fuzz_seed_document_is_valid():
    with tempfile.TemporaryDirectory() as root:
        for name, content in FILES.items():
            path = os.path.join(root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(content)
        with open(os.path.join(root, "pipeline.yaml"), "w") as f:
            f.write(VALID)
        p = pipetool.load(cwd=root)
        assert list(p.targets) == ["prepare", "train", "report"]
        assert set(pipetool.status(cwd=root).targets) == {"prepare", "train", "report"}


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_load_or_fail_with_a_pipetool_error(data):
    check(data)


YAML_TOKENS = [
    "targets", "params", "params_files", "version", "cmd", "python", "deps", "outs", "metrics",
    "needs", "env", "always", "cache", "desc", "code_version", "path", "hash", "bytes",
    ":", ": ", "-", "- ", "[", "]", "{", "}", ",", "#", "&a", "*a", "!", "!!str", "!!int", "!!map",
    "|", ">", "'", '"', "%YAML 1.2", "---", "...", "?", "<<", "@", "`", "\n", "\n  ", "\n    ",
    "\t", " ", "${", "}", "$${", "${a.b}", "a.b", "../", "/", "*", "**", ".pipetool", "\\x00",
    "true", "yes", "null", "~", "1e-3", "0x1F", ".inf", ".nan", "a.txt", "m:f", "1", "-1", "é", "\u2028",
]


@FUZZ
@given(st.lists(st.sampled_from(YAML_TOKENS), max_size=60).map("".join))
def test_random_yaml_ish_text_loads_or_fails_with_a_pipetool_error(text):
    check(text.encode("utf-8"))


@st.composite
def mutations(draw) -> bytes:
    text = VALID
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "replace_line", "dup_line", "swap_lines", "indent"]))
        lines = text.split("\n")
        if op == "delete":
            a = draw(st.integers(0, len(text)))
            b = draw(st.integers(a, min(len(text), a + 20)))
            text = text[:a] + text[b:]
        elif op == "insert":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(YAML_TOKENS)) + text[at:]
        elif op == "replace_line":
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = draw(st.sampled_from(lines + ["    deps: a.txt", "    cmd: 5", "  bad name:", "    x: 1",
                                                     "    outs: [../x]", "    outs: [/etc/passwd]",
                                                     "    cmd: echo ${nope}", "    python: src.train:train",
                                                     "    needs: [nope]", "    deps: [{path: 1}]"]))
            text = "\n".join(lines)
        elif op == "dup_line":
            i = draw(st.integers(0, len(lines) - 1))
            text = "\n".join(lines[: i + 1] + [lines[i]] + lines[i + 1:])
        elif op == "swap_lines":
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        else:
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = draw(st.sampled_from(["", " ", "  ", "\t"])) + lines[i].lstrip(" ")
            text = "\n".join(lines)
    return text.encode("utf-8")


@FUZZ
@given(mutations())
def test_mutations_of_a_valid_pipeline_load_or_fail_with_a_pipetool_error(data):
    check(data, also_status=True)


# --- structured documents: well-formed YAML, random shapes and values ----------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=8))
values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
                      max_leaves=8)
path_texts = st.one_of(
    st.sampled_from(["a.txt", "data/", "data/raw/", "data/raw/a.csv", "data/*.csv", "data/**/*.csv", "out.txt",
                     "out/", "out/x.txt", "../x", "/etc/passwd", "", " ", ".", "./", ".pipetool/x", "a\x00b",
                     "~/x", "a/../b", "//x", "data/raw/../../..", "[", "*", "**", "out\nx", "models/"]),
    st.text(max_size=10),
)
params_strategy = st.dictionaries(st.sampled_from(["a", "b", "train", "lr", "x.y", ""]),
                                  values, max_size=4)
cmd_texts = st.one_of(
    st.sampled_from(["echo hi > out.txt", "x ${a}", "x ${a.b}", "${}", "$${x}", "${nope}", "${train.lr}",
                     "echo ${a} ${b} ${train}", "${ a }", "$$", "${a", "}"]),
    st.text(max_size=12),
)


def maybe_wrong(good, rate: int = 12):
    """Mostly a value of the right shape, about one in `rate` times anything."""
    return st.sampled_from([good] * (rate - 1) + [values]).flatmap(lambda s: s)


optional_fields = st.fixed_dictionaries({}, optional={
    "deps": maybe_wrong(st.lists(st.one_of(path_texts, st.fixed_dictionaries(
        {"path": path_texts}, optional={"hash": st.sampled_from(["bytes", "ast", "md5"])})), max_size=3)),
    "outs": maybe_wrong(st.lists(path_texts, max_size=3)),
    "metrics": maybe_wrong(st.lists(path_texts, max_size=2)),
    "params": maybe_wrong(st.lists(st.sampled_from(["a", "a.b", "train", "train.lr", "nope", ""]), max_size=2)),
    "needs": maybe_wrong(st.lists(st.sampled_from(["t0", "t1", "t2", "nope"]), max_size=2)),
    "env": maybe_wrong(st.lists(st.sampled_from(["HOME", "X_Y", "1bad"]), max_size=2)),
    "always": maybe_wrong(st.booleans()),
    "cache": maybe_wrong(st.booleans()),
    "desc": maybe_wrong(st.text(max_size=5)),
    "code_version": maybe_wrong(st.one_of(st.text(max_size=3), st.integers())),
})
code_fields = st.sampled_from([
    st.fixed_dictionaries({"cmd": maybe_wrong(cmd_texts)}),
    st.fixed_dictionaries({"cmd": maybe_wrong(cmd_texts)}),
    st.fixed_dictionaries({"python": maybe_wrong(st.sampled_from(
        ["src.train:train", "m:f", "json:dumps", "a.b.c:d.e", "bad"]))}),
    st.fixed_dictionaries({}, optional={"cmd": values, "python": values}),
]).flatmap(lambda s: s)
target_strategy = maybe_wrong(st.builds(lambda a, b: {**a, **b}, code_fields, optional_fields))

documents = st.fixed_dictionaries(
    {"targets": maybe_wrong(st.dictionaries(maybe_wrong(st.sampled_from(["t0", "t1", "t2", "a.b"]), rate=20).filter(
                                                lambda k: isinstance(k, str)),
                                            target_strategy, min_size=1, max_size=3))},
    optional={
        "version": maybe_wrong(st.just(1)),
        "params": maybe_wrong(params_strategy),
        "params_files": maybe_wrong(st.lists(st.sampled_from(["params.json", "nope.yaml", "../p.toml",
                                                              "data/raw/a.csv", "data/"]), max_size=2)),
    },
)


@FUZZ
@given(documents)
@example({"targets": {"t0": {"cmd": "echo", "outs": ["a\x00b"]}}})  # found by this test
@example({"targets": {"t0": {"cmd": "echo", "deps": ["a\x00b"]}}})
def test_random_well_formed_documents_load_or_fail_with_a_pipetool_error(doc):
    check(yaml.safe_dump(doc, allow_unicode=True).encode("utf-8"), also_status=True)


SET_TOKENS = ["train.lr", "train", "a", "=", "==", "1e-3", "yes", "true", "[", "]", "{", "}", "'", '"', ":", ",",
              " ", "#", "&a", "*a", "!!str", "null", "~", "\n", "${x}", ".", "..", "-", "0x1F", "é"]


@FUZZ
@given(st.lists(st.one_of(st.lists(st.sampled_from(SET_TOKENS), max_size=8).map("".join), st.text(max_size=12)),
                max_size=3))
def test_random_set_overrides_apply_or_fail_with_a_pipetool_error(pairs):
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "pipeline.yaml"), "w") as f:
            f.write("params:\n  train: {lr: 0.01, opt: sgd}\n  a: 1\n"
                    "targets:\n  t: {cmd: 'run ${train.lr} ${a}'}\n")
        try:
            p = pipetool.load(cwd=root, set=pairs)
        except PipetoolError as exc:
            assert str(exc)
            return
        assert set(p.params) >= {"train", "a"}
