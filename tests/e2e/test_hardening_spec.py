"""The spec layer's hardening, through the real `pipetool` command: a param is exactly its
value in every quoting context of a command; params are JSON values (dates become ISO
strings, NaN and infinities are refused); a dotted top-level key; comments in `-S`; a
planted spec cache never runs code."""
from __future__ import annotations

import json
import os
import pickle

import pytest

from .support import assert_invalid, ok, runs_json, show_json, status_json

# -- item 4: a placeholder is its value, whatever quotes it sits in ----------------------------

CONTEXTS = """
    params:
      s: plain
    targets:
      bare:
        cmd: echo bare >> runs.log && echo ${s} > out/bare.txt
        outs: [out/bare.txt]
      single:
        cmd: echo single >> runs.log && echo '${s}' > out/single.txt
        outs: [out/single.txt]
      double:
        cmd: echo double >> runs.log && echo "${s}" > out/double.txt
        outs: [out/double.txt]
      inside:
        cmd: echo inside >> runs.log && printf %s "pre-${s}-post" > out/inside.txt
        outs: [out/inside.txt]
      subst:
        cmd: echo subst >> runs.log && echo "$(printf %s '${s}')" > out/subst.txt
        outs: [out/subst.txt]
"""

ATTACKS = ["; touch X", "'; touch X; '", '"; touch X; "', "$(touch X)", "`touch X`", "x  y *", "a\\\"b'c$HOME"]


@pytest.mark.parametrize("value", ATTACKS)
def test_a_set_value_is_exactly_one_word_in_every_quoting_context_and_runs_nothing(project, pt, value):
    project.pipeline(CONTEXTS)
    as_set = json.dumps(value) if value[0] in "'\"" else value  # a leading quote: YAML's own
    ok(pt("run", "-S", f"s={as_set}"))
    assert not project.exists("X"), "the value ran a command"
    assert sorted(project.runs()) == ["bare", "double", "inside", "single", "subst"]
    for name in ("bare", "single", "double", "subst"):
        assert project.read(f"out/{name}.txt") == value + "\n", name
    assert project.read("out/inside.txt") == f"pre-{value}-post"


def test_a_value_with_a_newline_from_a_params_file_is_one_word_even_before_a_comment(project, pt):
    project.write("p.json", json.dumps({"s": "a\ntouch X\n# b"}))
    project.pipeline("""
        params_files: [p.json]
        targets:
          t:
            cmd: "printf %s ${s} > out/t.txt # ${s}"
            outs: [out/t.txt]
    """)
    ok(pt("run"))
    assert not project.exists("X")
    assert project.read("out/t.txt") == "a\ntouch X\n# b"


def test_the_fingerprint_of_an_unquoted_placeholder_is_the_template_and_values(project, pt):
    """Only the rendering moved: the code part is still the command as written."""
    project.pipeline(CONTEXTS)
    ok(pt("run", "bare"))
    lock = json.loads(project.read("pipetool.lock"))
    assert lock["targets"]["bare"]["code"] == "cmd:echo bare >> runs.log && echo ${s} > out/bare.txt"
    assert lock["targets"]["bare"]["params"] == {"s": "plain"}


def test_a_placeholder_in_a_here_document_takes_a_plain_value_and_refuses_others(project, pt):
    project.pipeline("""
        params:
          n: 3
          s: "x; y"
        targets:
          t:
            cmd: |-
              echo t >> runs.log
              cat > out/t.txt <<EOF
              n=${n}
              s=${s}
              EOF
            outs: [out/t.txt]
    """)
    res = pt("run")
    assert_invalid(res, "target 't': cmd", "'${s}' sits inside a here-document", "param 's' is 'x; y'",
                   "pipeline.yaml:7", project=project)
    ok(pt("run", "-S", "s=plain"))
    assert project.read("out/t.txt") == "n=3\ns=plain\n"


def test_arithmetic_takes_only_numbers(project, pt):
    project.pipeline("""
        params:
          n: 3
        targets:
          t:
            cmd: echo t >> runs.log && echo $(( ${n} * 2 )) > out/t.txt
            outs: [out/t.txt]
    """)
    res = pt("run", "-S", "n=a[$(touch X)]")
    assert_invalid(res, "sits where bash evaluates arithmetic", "param 'n' is 'a[$(touch X)]'", project=project)
    assert not project.exists("X")
    ok(pt("run"))
    assert project.read("out/t.txt") == "6\n"


# -- items 10 and 12: params are JSON values --------------------------------------------------

def test_a_toml_datetime_is_an_iso_string_and_the_run_is_recorded_once(project, pt):
    project.write("p.toml", "[w]\nwhen = 1979-05-27T07:32:00Z\nday = 1979-05-27\nat = 07:32:00\n")
    project.pipeline("""
        params_files: [p.toml]
        targets:
          t:
            cmd: echo t >> runs.log && echo ${w.when} ${w.day} ${w.at} > out/t.txt
            outs: [out/t.txt]
    """)
    ok(pt("run"))
    assert project.read("out/t.txt") == "1979-05-27T07:32:00+00:00 1979-05-27 07:32:00\n"
    first = runs_json(project)[0]
    ok(pt("run"))
    assert project.runs() == ["t"], "the second run repeated the command"
    assert first["status"] == "succeeded" and first["targets"]["t"]["action"] == "built"
    assert first["params"]["w"] == {"when": "1979-05-27T07:32:00+00:00", "day": "1979-05-27", "at": "07:32:00"}


def _strict(text: str):
    def refuse(name: str):
        raise AssertionError(f"{name} in JSON output")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1e400"])
def test_a_non_finite_set_value_is_refused_before_anything_runs(project, pt, value):
    project.pipeline("""
        params:
          train: {lr: 0.1}
        targets:
          t:
            cmd: echo t >> runs.log && echo ${train.lr} > out/t.txt
            outs: [out/t.txt]
    """)
    res = pt("run", "-S", f"train.lr={value}")
    assert_invalid(res, "param 'train.lr' (set by -S) is not a finite number", project=project)
    assert _strict(ok(pt("runs", "--json")).stdout) == []
    assert not project.exists("pipetool.lock")


def test_nan_in_the_pipeline_params_is_refused_at_its_place(project, pt):
    project.pipeline("""
        params:
          train: {lr: .nan}
        targets:
          t:
            cmd: echo t >> runs.log && echo ${train.lr} > out/t.txt
            outs: [out/t.txt]
    """)
    assert_invalid(pt("status"), "pipeline.yaml:3:", "param 'train.lr' (in the pipeline's params)",
                   "not a finite number (it reads as .nan)", project=project)


def test_nan_in_a_json_params_file_is_refused_naming_the_file(project, pt):
    project.write("p.json", '{"train": {"lr": NaN, "layers": [1, Infinity]}}')
    project.pipeline("""
        params_files: [p.json]
        targets:
          t:
            cmd: echo t >> runs.log && echo ${train.lr} > out/t.txt
            outs: [out/t.txt]
    """)
    assert_invalid(pt("run"), "p.json: param 'train.lr' (in params file p.json) is not a finite number",
                   project=project)


def test_nan_as_a_params_schema_default_is_refused_naming_the_schema(project, pt):
    project.write("schema.json", '{"type": "object", "properties": {"lr": {"default": NaN}}}')
    project.pipeline("""
        params_schema: schema.json
        targets:
          t:
            cmd: echo t >> runs.log && echo ${lr} > out/t.txt
            outs: [out/t.txt]
    """)
    assert_invalid(pt("run"), "param 'lr' (a default in params schema schema.json) is not a finite number",
                   project=project)


def test_records_and_the_lock_are_strict_json_after_a_run(project, pt):
    project.pipeline("""
        params:
          train: {lr: 0.1, big: 1e300}
        targets:
          t:
            cmd: echo t >> runs.log && echo ${train.lr} > out/t.txt
            outs: [out/t.txt]
    """)
    ok(pt("run", "-S", "train.lr=1e-3"))
    (record,) = _strict(ok(pt("runs", "--json")).stdout)
    assert record["overrides"] == {"train.lr": 0.001}
    _strict(ok(pt("show", record["id"], "--json")).stdout)
    assert _strict(project.read("pipetool.lock"))["targets"]["t"]["params"] == {"train.lr": 0.001}


# -- item 13: a dotted top-level key, comments in -S -------------------------------------------

DOTTED = """
    params:
      a.b: 1
      c: {d: 2}
    targets:
      t:
        cmd: echo t >> runs.log && echo ${a.b} ${c.d} > out/t.txt
        outs: [out/t.txt]
      u:
        cmd: echo u >> runs.log && echo u > out/u.txt
        params: [a.b]
        outs: [out/u.txt]
"""


def test_a_dotted_top_level_key_is_read_set_and_declared(project, pt):
    project.pipeline(DOTTED)
    ok(pt("run", "-S", "a.b=5", "-S", "c.d=7"))
    assert project.read("out/t.txt") == "5 7\n"
    (record,) = runs_json(project)
    assert record["params"] == {"a.b": 5, "c": {"d": 7}}
    assert status_json(project, "-S", "a.b=6")["targets"]["u"]["state"] == "stale"


@pytest.mark.parametrize("how", ["cmd", "declared", "set"])
def test_a_dotted_key_naming_two_params_is_an_error_naming_both(project, pt, how):
    body = {"cmd": "echo ${a.b} > out/t.txt", "declared": "echo x > out/t.txt\n            params: [a.b]",
            "set": "echo x > out/t.txt"}[how]
    project.pipeline(f"""
        params:
          a.b: 1
          a: {{b: 2}}
        targets:
          t:
            cmd: echo t >> runs.log && {body}
            outs: [out/t.txt]
    """)
    res = pt("run", *(["-S", "a.b=3"] if how == "set" else []))
    assert_invalid(res, "param 'a.b' is ambiguous: it names both 'a.b' and 'a' → 'b'", project=project)


@pytest.mark.parametrize("arg, shown, kept", [
    ("n=1 # a comment", "1", 1),
    ("msg=a#b", "a#b", "a#b"),
    ("msg='x # y'", "x # y", "x # y"),
    ("n=2\t# tab", "2", 2),
])
def test_a_set_value_reads_like_yaml_comments_included(project, pt, arg, shown, kept):
    project.pipeline("""
        params:
          n: 0
          msg: hi
        targets:
          t:
            cmd: echo t >> runs.log && echo "${n}|${msg}" > out/t.txt
            outs: [out/t.txt]
    """)
    ok(pt("run", "-S", arg))
    key = arg.partition("=")[0]
    assert project.read("out/t.txt").strip().split("|")[0 if key == "n" else 1] == shown
    (record,) = runs_json(project)
    assert record["overrides"] == {key: kept}


# -- item 13: the spec cache holds no code ------------------------------------------------------

class _Payload:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_planted_pickle_in_the_spec_cache_is_never_unpickled(project, pt):
    project.pipeline("""
        targets:
          t:
            cmd: echo t >> runs.log && echo t > out/t.txt
            outs: [out/t.txt]
    """)
    pwned = project.root / "PWNED"
    state = project.root / ".pipetool"
    state.mkdir()
    for name in ("spec.cache", "spec.cache.doc"):
        (state / name).write_bytes(pickle.dumps(_Payload(str(pwned))))
    res = ok(pt("status"))
    assert "t" in res.stdout and "never built" in res.stdout
    assert not pwned.exists(), "status unpickled the planted cache"
    ok(pt("run"))
    assert not pwned.exists()
    assert project.runs() == ["t"]


def test_a_cache_edited_by_someone_else_does_not_survive_a_checkout_of_the_pipeline_file(project, pt):
    """The key holds the pipeline file's identity on this machine: a cache written for
    another copy of the same bytes is ignored, so it cannot swap in another command."""
    text = """
        targets:
          t:
            cmd: echo t >> runs.log && echo t > out/t.txt
            outs: [out/t.txt]
    """
    project.pipeline(text)
    ok(pt("status"))
    cache = project.root / ".pipetool" / "spec.cache"
    planted = cache.read_text().replace("echo t > out/t.txt", "touch PWNED > out/t.txt")
    assert planted != cache.read_text()
    project.write("pipeline.new", text)  # a checkout: the same bytes in a new file
    os.replace(project.root / "pipeline.new", project.root / "pipeline.yaml")
    cache.write_text(planted)
    ok(pt("run"))
    assert not project.exists("PWNED")
    assert project.read("out/t.txt") == "t\n"
    cached = json.loads(cache.read_text())
    assert "PWNED" not in json.dumps(cached)
    assert show_json(project, runs_json(project)[0]["id"])["targets"]["t"]["action"] == "built"
