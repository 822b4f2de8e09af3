"""The pure parts of `foreach` (spec/partitions.py), the placeholder verdicts in plan.py,
and status lines grouping partitions."""
from __future__ import annotations

import pytest

from pipetool.errors import PipelineError
from pipetool.fingerprint.trace import Trace
from pipetool.plan import FRESH, PENDING, Verdict, plan
from pipetool.render import status_lines
from pipetool.spec.partitions import (
    fill,
    is_param_ref,
    item_vars,
    items_of,
    partition_name,
    static_folder,
    template_of,
)
from pipetool.store.records import Record


def test_a_whole_placeholder_names_a_param_and_anything_else_is_a_glob():
    assert is_param_ref("${grid.seeds}") == "grid.seeds"
    assert is_param_ref(" ${ grid.seeds } ") == "grid.seeds"
    assert is_param_ref("data/${x}/*.csv") is None
    assert is_param_ref("data/*.csv") is None
    assert is_param_ref("${item}") is None


def test_list_items_are_keyed_by_their_scalar_rendering_or_their_index():
    assert items_of([1, 0.5, True, None, "a"], "t", None) == [
        ("1", 1), ("0.5", 0.5), ("true", True), ("null", None), ("a", "a")]
    assert items_of([[8, 4], {"w": 1}], "t", None) == [("0", [8, 4]), ("1", {"w": 1})]
    assert items_of({"small": 1, "large": 2}, "t", None) == [("small", 1), ("large", 2)]


@pytest.mark.parametrize("items", [[1, 1], ["1", 1], [True, "true"]])
def test_items_with_the_same_key_are_refused(items):
    with pytest.raises(PipelineError, match="twice"):
        items_of(items, "t", None)


def test_a_foreach_that_is_not_a_list_or_mapping_is_refused():
    with pytest.raises(PipelineError, match="must be a list, a mapping or a glob"):
        items_of(3, "t", None)


def test_a_paths_parts_and_a_mappings_fields():
    v = item_vars("out/shards/a.tar.gz", "out/shards/a.tar.gz", True)
    assert (v["item.name"], v["item.stem"], v["item.suffix"], v["item.parent"]) == (
        "a.tar.gz", "a.tar", ".gz", "out/shards")
    assert item_vars(".hidden", ".hidden", True)["item.stem"] == ".hidden"
    m = item_vars("small", {"width": 8, "opt": {"lr": 0.1}}, False)
    assert (m["key"], m["item.width"], m["item.opt.lr"]) == ("small", 8, 0.1)


def test_fill_substitutes_item_parts_in_paths_and_refuses_unknown_ones():
    v = item_vars("data/a.csv", "data/a.csv", True)
    assert fill("out/${item.stem}.txt", v, "t", None) == "out/a.txt"
    assert fill("${ key }", v, "t", None) == "data/a.csv"
    assert fill("no placeholder", v, "t", None) == "no placeholder"
    with pytest.raises(PipelineError, match=r"'\$\{item.width\}': the item has no such part"):
        fill("${item.width}", v, "t", None)


def test_the_folder_an_out_pattern_writes_into():
    assert static_folder("out/clean/${item.stem}.parquet") == "out/clean/"
    assert static_folder("models/seed-${item}.pkl") == "models/"
    assert static_folder("${item}.out") is None


def test_partition_names_and_their_target():
    name = partition_name("clean", "out/shards/a.csv")
    assert name == "clean[out/shards/a.csv]"
    assert template_of(name) == "clean"
    assert template_of("clean") is None


def test_a_placeholder_is_pending_on_a_stale_upstream_and_fresh_otherwise():
    up = {"split": (), "clean": ("split",)}
    trace = Trace("cmd:split", {}, {}, {})
    order = ["split", "clean"]
    never_built = plan(order, up, {}, {"split": trace}, {"split": {"out/": "d"}}, {},
                       placeholders=frozenset({"clean"}))
    assert never_built["clean"] == Verdict(PENDING, ("upstream stale: split",))
    built = {"split": Record(trace.fingerprint, {"out/": "d"}, trace.to_dict())}
    fresh = plan(order, up, {}, {"split": trace}, {"split": {"out/": "d"}}, built, placeholders=frozenset({"clean"}))
    assert fresh == {"split": Verdict(FRESH), "clean": Verdict(FRESH)}


def test_status_lines_group_partitions_on_a_terminal_only():
    verdicts = {
        "split": Verdict(FRESH),
        "clean[a]": Verdict("stale", ("dep changed: a",)),
        "clean[b]": Verdict(FRESH),
        "clean[c]": Verdict(PENDING, ("upstream stale: x",)),
        "report": Verdict("stale", ("never built",)),
    }
    assert status_lines(verdicts, grouped=True) == [
        "stale    clean   1 of 3 stale, 1 pending (e.g. dep changed: a)",
        "stale    report  never built",
    ]
    assert status_lines(verdicts, grouped=False) == [
        "stale    clean[a]  dep changed: a",
        "pending  clean[c]  upstream stale: x",
        "stale    report    never built",
    ]
