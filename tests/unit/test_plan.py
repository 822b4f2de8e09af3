"""plan: pure staleness verdicts with reasons, from fabricated traces and records (no I/O)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from pipetool.fingerprint.trace import Trace
from pipetool.plan import FRESH, PENDING, STALE, Verdict, decide, plan
from pipetool.store.records import Record


def trace(code="cmd:python train.py", params=None, deps=None, env=None) -> Trace:
    return Trace(code, dict(params or {}), dict(deps or {}), dict(env or {}))


def record(t: Trace, outs=None) -> Record:
    return Record(t.fingerprint, dict(outs or {}), t.to_dict())


BASE = trace(params={"train.lr": 0.01, "train.epochs": 20},
             deps={"data/raw/a.csv": "h-a", "src/train.py": "h-src"},
             env={"CUDA_VISIBLE_DEVICES": "h-env"})
OUTS = {"models/model.pkl": "h-model"}
REC = record(BASE, OUTS)


def with_(t: Trace, **changes) -> Trace:
    """`t` with some fields changed; dict values update that field's mapping."""
    new = {}
    for key, value in changes.items():
        new[key] = {**getattr(t, key), **value} if isinstance(value, dict) else value
    return dataclasses.replace(t, **new)


# --- decide: one target ---------------------------------------------------------------

def test_a_target_never_built_is_stale():
    v = decide(BASE, OUTS, None)
    assert v == Verdict(STALE, ("never built",))


def test_a_target_whose_trace_and_outs_match_its_record_is_fresh():
    v = decide(BASE, OUTS, REC)
    assert v.state == FRESH and v.reasons == ()


def test_a_changed_param_names_the_key_and_both_values():
    v = decide(with_(BASE, params={"train.lr": 0.1}), OUTS, REC)
    assert v == Verdict(STALE, ("param changed: train.lr 0.01 -> 0.1",))


def test_a_changed_leaf_inside_a_declared_subtree_is_named_by_its_full_path():
    old = trace(params={"train": {"lr": 0.01, "opt": {"name": "sgd"}}})
    new = trace(params={"train": {"lr": 0.01, "opt": {"name": "adam"}}})
    assert decide(new, {}, record(old)).reasons == ("param changed: train.opt.name sgd -> adam",)


def test_param_values_render_like_yaml_in_reasons():
    old = trace(params={"a": True, "b": None, "c": [1, 2], "s": "x"})
    new = trace(params={"a": False, "b": 3, "c": [1], "s": "y z"})
    assert decide(new, {}, record(old)).reasons == (
        "param changed: a true -> false",
        "param changed: b null -> 3",
        "param changed: c [1,2] -> [1]",
        "param changed: s x -> y z",
    )


def test_a_param_that_appears_or_disappears_is_shown_as_unset():
    old = trace(params={"a": 1})
    new = trace(params={"b": 2})
    assert decide(new, {}, record(old)).reasons == ("param changed: a 1 -> (unset)", "param changed: b (unset) -> 2")


@pytest.mark.parametrize("old, new, shown", [(1, True, "1 -> true"), (0, False, "0 -> false"), (1, 1.0, "1 -> 1.0")])
def test_params_equal_in_python_but_different_in_yaml_are_a_change(old, new, shown):
    # `${flag}` renders `1` and `true` differently, so the command really changed.
    v = decide(trace(params={"flag": new}), {}, record(trace(params={"flag": old})))
    assert v.state == STALE
    assert v.reasons == (f"param changed: flag {shown}",)


def test_a_changed_dep_is_named():
    v = decide(with_(BASE, deps={"data/raw/a.csv": "h-a2"}), OUTS, REC)
    assert v == Verdict(STALE, ("dep changed: data/raw/a.csv",))


def test_a_missing_dep_is_named():
    v = decide(with_(BASE, deps={"data/raw/a.csv": None}), OUTS, REC)
    assert v.reasons == ("dep missing: data/raw/a.csv",)


def test_added_and_removed_deps_are_named():
    new = trace(deps={"a": "1", "c": "3"})
    assert decide(new, {}, record(trace(deps={"a": "1", "b": "2"}))).reasons == ("dep removed: b", "dep added: c")


def test_a_changed_command_is_named():
    assert decide(with_(BASE, code="cmd:python train.py --fast"), OUTS, REC).reasons == ("command changed",)


def test_changed_python_code_names_the_callable():
    old = trace(code="python:src.train:train@h1")
    new = trace(code="python:src.train:train@h2")
    assert decide(new, {}, record(old)).reasons == ("code changed: src.train:train",)


def test_a_changed_code_version_shows_both_versions():
    old = trace(code="version:1")
    new = trace(code="version:2")
    assert decide(new, {}, record(old)).reasons == ("code_version changed: 1 -> 2",)


def test_a_changed_env_variable_is_named():
    v = decide(with_(BASE, env={"CUDA_VISIBLE_DEVICES": None}), OUTS, REC)
    assert v.reasons == ("env changed: CUDA_VISIBLE_DEVICES",)


def test_a_missing_out_is_named():
    v = decide(BASE, {"models/model.pkl": None}, REC)
    assert v == Verdict(STALE, ("out missing: models/model.pkl",))


def test_a_modified_out_is_named():
    v = decide(BASE, {"models/model.pkl": "h-edited"}, REC)
    assert v == Verdict(STALE, ("out modified: models/model.pkl",))


def test_a_new_out_never_recorded_is_named():
    v = decide(BASE, {**OUTS, "metrics.json": "h-m"}, REC)
    assert v.reasons == ("out not recorded: metrics.json",)


def test_every_difference_gets_its_own_reason():
    new = with_(BASE, params={"train.lr": 0.1}, deps={"src/train.py": "h-src2"})
    v = decide(new, {"models/model.pkl": None}, REC)
    assert v.state == STALE
    assert set(v.reasons) == {"param changed: train.lr 0.01 -> 0.1", "dep changed: src/train.py",
                              "out missing: models/model.pkl"}


def test_a_record_without_its_trace_still_says_the_fingerprint_changed():
    v = decide(with_(BASE, params={"train.lr": 0.1}), OUTS, Record(REC.fingerprint, OUTS, None))
    assert v == Verdict(STALE, ("fingerprint changed",))


def test_a_record_whose_trace_is_stored_as_json_text_is_explained():
    rec = Record(REC.fingerprint, OUTS, json.dumps(BASE.to_dict()))
    assert decide(with_(BASE, params={"train.lr": 0.1}), OUTS, rec).reasons == (
        "param changed: train.lr 0.01 -> 0.1",)
    assert decide(BASE, OUTS, rec).state == FRESH


def test_forced_makes_a_fresh_target_stale():
    assert decide(BASE, OUTS, REC, forced=True) == Verdict(STALE, ("forced",))


def test_always_makes_a_fresh_target_stale():
    assert decide(BASE, OUTS, REC, always=True) == Verdict(STALE, ("always: true",))


def test_a_fresh_target_below_a_stale_one_is_pending():
    v = decide(BASE, OUTS, REC, upstream_not_fresh=("features",))
    assert v == Verdict(PENDING, ("upstream stale: features",))


def test_a_target_with_its_own_reason_is_stale_even_below_a_stale_one():
    v = decide(with_(BASE, params={"train.lr": 0.1}), OUTS, REC, upstream_not_fresh=("features",))
    assert v.state == STALE
    assert v.reasons == ("param changed: train.lr 0.01 -> 0.1",)


def test_a_volatile_dep_change_is_not_a_reason_of_its_own():
    # The dep is an out of a stale upstream: its change is the upstream's business.
    new = with_(BASE, deps={"data/raw/a.csv": "h-a2"})
    v = decide(new, OUTS, REC, upstream_not_fresh=("prepare",), volatile=frozenset({"data/raw/a.csv"}))
    assert v == Verdict(PENDING, ("upstream stale: prepare",))


# --- plan: a whole selection ------------------------------------------------------------

def chain(names):
    """A straight line a -> b -> c where each target's dep is the previous one's out."""
    upstream, dep_producers, traces, outs, records = {}, {}, {}, {}, {}
    prev = None
    for n in names:
        deps = {f"{prev}.out": f"h-{prev}"} if prev else {f"{n}.in": f"h-{n}-in"}
        traces[n] = trace(code=f"cmd:make {n}", deps=deps)
        outs[n] = {f"{n}.out": f"h-{n}"}
        records[n] = record(traces[n], outs[n])
        upstream[n] = (prev,) if prev else ()
        if prev:
            dep_producers[n] = {f"{prev}.out": (prev,)}
        prev = n
    return upstream, dep_producers, traces, outs, records


def run_plan(names, upstream, dep_producers, traces, outs, records, **kw):
    return plan(names, upstream, dep_producers, traces, outs, records, **kw)


def test_a_fully_recorded_selection_is_all_fresh():
    names = ["a", "b", "c"]
    verdicts = run_plan(names, *chain(names))
    assert {n: v.state for n, v in verdicts.items()} == {"a": FRESH, "b": FRESH, "c": FRESH}


def test_everything_downstream_of_a_stale_target_is_pending_with_its_upstream_named():
    names = ["a", "b", "c"]
    upstream, dp, traces, outs, records = chain(names)
    traces["a"] = with_(traces["a"], deps={"a.in": "h-a-in-2"})
    verdicts = run_plan(names, upstream, dp, traces, outs, records)
    assert verdicts["a"] == Verdict(STALE, ("dep changed: a.in",))
    assert verdicts["b"] == Verdict(PENDING, ("upstream stale: a",))
    assert verdicts["c"] == Verdict(PENDING, ("upstream stale: b",))


def test_a_modified_upstream_out_leaves_downstream_pending_not_stale():
    names = ["a", "b"]
    upstream, dp, traces, outs, records = chain(names)
    outs["a"] = {"a.out": "h-edited"}
    traces["b"] = with_(traces["b"], deps={"a.out": "h-edited"})  # b sees the edited file
    verdicts = run_plan(names, upstream, dp, traces, outs, records)
    assert verdicts["a"] == Verdict(STALE, ("out modified: a.out",))
    assert verdicts["b"] == Verdict(PENDING, ("upstream stale: a",))


def test_upstream_stale_never_makes_targets_outside_its_closure_pending():
    upstream = {"a": (), "b": (), "c": ("a",)}
    traces = {n: trace(code=f"cmd:{n}") for n in upstream}
    records = {n: record(traces[n]) for n in upstream}
    traces["a"] = trace(code="cmd:a2")
    verdicts = run_plan(["a", "b", "c"], upstream, {}, traces, {n: {} for n in upstream}, records)
    assert [verdicts[n].state for n in "abc"] == [STALE, FRESH, PENDING]


def test_forced_and_always_sets_are_honoured_by_plan():
    names = ["a", "b", "c"]
    verdicts = run_plan(names, *chain(names), forced=frozenset({"b"}), always=frozenset({"a"}))
    assert verdicts["a"] == Verdict(STALE, ("always: true",))
    assert verdicts["b"] == Verdict(STALE, ("forced",))
    assert verdicts["c"] == Verdict(PENDING, ("upstream stale: b",))


def test_early_cutoff_a_downstream_whose_recorded_dep_hash_equals_the_new_upstream_hash_is_fresh():
    names = ["a", "b"]
    upstream, dp, traces, outs, records = chain(names)
    # a's input changed, a was rebuilt (new record) and wrote byte-identical output.
    traces["a"] = with_(traces["a"], deps={"a.in": "h-a-in-2"})
    records["a"] = record(traces["a"], outs["a"])
    verdicts = run_plan(names, upstream, dp, traces, outs, records)
    assert verdicts == {"a": Verdict(FRESH), "b": Verdict(FRESH)}
    # decided alone once its upstream is done, as the run loop does
    assert decide(traces["b"], outs["b"], records["b"]) == Verdict(FRESH)


def test_without_early_cutoff_a_changed_upstream_output_makes_downstream_stale():
    names = ["a", "b"]
    upstream, dp, traces, outs, records = chain(names)
    traces["a"] = with_(traces["a"], deps={"a.in": "h-a-in-2"})
    outs["a"] = {"a.out": "h-a-new"}
    records["a"] = record(traces["a"], outs["a"])
    traces["b"] = with_(traces["b"], deps={"a.out": "h-a-new"})
    verdicts = run_plan(names, upstream, dp, traces, outs, records)
    assert verdicts["a"].state == FRESH
    assert verdicts["b"] == Verdict(STALE, ("dep changed: a.out",))


def test_plan_is_pure_and_deterministic():
    names = ["a", "b", "c"]
    args = chain(names)
    args[2]["a"] = with_(args[2]["a"], deps={"a.in": "x"})
    snapshot = json.dumps([{k: (v.to_dict() if isinstance(v, Trace) else repr(v)) for k, v in a.items()} for a in args],
                          sort_keys=True, default=repr)
    first = run_plan(names, *args)
    assert run_plan(names, *args) == first
    assert json.dumps([{k: (v.to_dict() if isinstance(v, Trace) else repr(v)) for k, v in a.items()} for a in args],
                      sort_keys=True, default=repr) == snapshot


def test_a_fingerprint_covers_code_params_deps_and_env():
    fps = {with_(BASE, **change).fingerprint for change in (
        {}, {"code": "cmd:other"}, {"params": {"train.lr": 0.5}},
        {"deps": {"src/train.py": "h2"}}, {"env": {"CUDA_VISIBLE_DEVICES": "h3"}})}
    assert len(fps) == 5
    assert BASE.fingerprint == trace(params=dict(reversed(list(BASE.params.items()))), deps=BASE.deps,
                                     env=BASE.env).fingerprint  # key order does not matter


def test_a_fingerprint_that_differs_with_no_named_difference_is_still_stale():
    # e.g. a record written by another pipetool version: the fingerprint alone decides
    stale_record = Record("not-" + BASE.fingerprint, dict(OUTS), BASE.to_dict())
    assert decide(BASE, OUTS, stale_record) == Verdict(STALE, ("fingerprint changed",))


def test_a_lock_entry_without_its_trace_is_judged_by_the_fingerprint_alone():
    assert decide(BASE, OUTS, Record(BASE.fingerprint, dict(OUTS), None)).state == FRESH
    assert decide(BASE, OUTS, Record("other", dict(OUTS), None)).reasons == ("fingerprint changed",)
