"""graph: edges from data and `needs`; duplicate/nested outs, missing deps and cycles are
errors; selection by target name or out path."""
from __future__ import annotations

import itertools
import textwrap

import pytest

import pipetool
from pipetool.errors import PipelineError, UsageError
from pipetool.graph import build_graph, resolve_targets, select


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def make(yaml_text: str, files=()):
        (tmp_path / "pipeline.yaml").write_text(textwrap.dedent(yaml_text))
        for f in files:
            path = tmp_path / f
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x\n")
        return pipetool.load(cwd=str(tmp_path))

    return make


def graph_of(project, yaml_text: str, files=()):
    p = project(yaml_text, files)
    return p, build_graph(p)


def test_a_dep_equal_to_an_out_makes_its_producer_upstream(project):
    _, g = graph_of(project, """\
        targets:
          prepare: {cmd: x, deps: [raw.csv], outs: [prepared.csv]}
          train: {cmd: x, deps: [prepared.csv], outs: [model.pkl]}
        """, ["raw.csv"])
    assert g.upstream == {"prepare": (), "train": ("prepare",)}
    assert g.downstream == {"prepare": ("train",), "train": ()}
    assert g.order == ("prepare", "train")
    assert g.dep_producers == {"train": {"prepared.csv": ("prepare",)}}
    assert g.producer == {"prepared.csv": "prepare", "model.pkl": "train"}


def test_a_dep_inside_a_directory_out_makes_its_producer_upstream(project):
    _, g = graph_of(project, """\
        targets:
          prepare: {cmd: x, outs: [data/prepared/]}
          a: {cmd: x, deps: [data/prepared/part-0.csv], outs: [a.txt]}
          b: {cmd: x, deps: [data/prepared/sub/], outs: [b.txt]}
          c: {cmd: x, deps: [data/prepared], outs: [c.txt]}
        """)
    assert g.upstream["a"] == ("prepare",)
    assert g.upstream["b"] == ("prepare",)
    assert g.upstream["c"] == ("prepare",)


def test_a_directory_dep_holding_outs_depends_on_every_writer(project):
    _, g = graph_of(project, """\
        targets:
          one: {cmd: x, outs: [data/one.csv]}
          two: {cmd: x, outs: [data/sub/two.csv]}
          other: {cmd: x, outs: [elsewhere.csv]}
          merge: {cmd: x, deps: [data/], outs: [merged.csv]}
        """)
    assert set(g.upstream["merge"]) == {"one", "two"}


def test_a_glob_dep_depends_on_the_producers_of_matching_outs(project):
    _, g = graph_of(project, """\
        targets:
          a: {cmd: x, outs: [parts/a.csv]}
          b: {cmd: x, outs: [parts/b.csv]}
          c: {cmd: x, outs: [parts/c.txt]}
          merge: {cmd: x, deps: ["parts/*.csv"], outs: [merged.csv]}
        """)
    assert set(g.upstream["merge"]) == {"a", "b"}


def test_a_glob_dep_matching_files_inside_a_directory_out_depends_on_its_producer(project):
    # `out/*.txt` matches the files `gen` writes into `out/`.
    _, g = graph_of(project, """\
        targets:
          gen: {cmd: x, outs: [out/]}
          merge: {cmd: x, deps: ["out/*.txt"], outs: [all.txt]}
        """)
    assert g.upstream["merge"] == ("gen",)


def test_a_recursive_glob_dep_depends_on_the_producer_of_a_top_level_match(project):
    # glob's `data/**/*.csv` matches `data/x.csv` (`**` matches zero folders).
    _, g = graph_of(project, """\
        targets:
          gen: {cmd: x, outs: [data/x.csv]}
          merge: {cmd: x, deps: ["data/**/*.csv"], outs: [all.txt]}
        """)
    assert g.upstream["merge"] == ("gen",)


def test_a_glob_star_does_not_cross_folders_when_finding_producers(project):
    # `data/*.csv` does not match `data/sub/x.csv` (as glob and hashing see it), so there
    # is no edge split -> summarize and no cycle.
    _, g = graph_of(project, """\
        targets:
          summarize: {cmd: x, deps: ["data/*.csv"], outs: [data/summary.txt]}
          split: {cmd: x, deps: [data/summary.txt], outs: [data/sub/x.csv]}
        """, ["data/a.csv"])
    assert g.upstream["split"] == ("summarize",)
    assert g.upstream["summarize"] == ()


def test_a_glob_dep_does_not_look_below_a_file_out(project):
    # `runs/*/metrics.json` can match below the folder `runs/a/`, never below the file
    # `runs/summary.txt`, so `summarize` does not depend on its own out.
    _, g = graph_of(project, """\
        targets:
          gen: {cmd: x, outs: [runs/a/metrics.json]}
          summarize: {cmd: x, deps: ["runs/*/metrics.json"], outs: [runs/summary.txt]}
        """)
    assert g.upstream == {"gen": (), "summarize": ("gen",)}


def test_a_glob_dep_below_a_file_out_of_another_target_invents_no_cycle(project):
    _, g = graph_of(project, """\
        targets:
          report: {cmd: x, deps: ["out/*/part.csv"], outs: [report.md]}
          index: {cmd: x, deps: [report.md], outs: [out/index.txt]}
        """, ["out/a/part.csv"])
    assert g.upstream == {"report": (), "index": ("report",)}


def test_a_glob_dep_can_match_below_a_directory_out(project):
    _, g = graph_of(project, """\
        targets:
          gen: {cmd: x, outs: [runs/]}
          summarize: {cmd: x, deps: ["runs/*/metrics.json"], outs: [summary.txt]}
        """)
    assert g.upstream["summarize"] == ("gen",)


def test_needs_adds_an_edge_without_data(project):
    _, g = graph_of(project, """\
        targets:
          setup: {cmd: x}
          work: {cmd: x, needs: [setup], outs: [w.txt]}
        """)
    assert g.upstream["work"] == ("setup",)
    assert g.order == ("setup", "work")


def test_needs_of_an_unknown_target_is_an_error_naming_the_closest(project):
    p = project("targets:\n  setup: {cmd: x}\n  work: {cmd: x, needs: [stup]}\n")
    with pytest.raises(PipelineError) as ei:
        build_graph(p)
    assert "unknown target 'stup'" in ei.value.message and "did you mean 'setup'" in ei.value.message
    assert ei.value.where is not None and ei.value.where.line == 3


def test_a_target_that_needs_itself_is_an_error(project):
    p = project("targets:\n  work: {cmd: x, needs: [work]}\n")
    with pytest.raises(PipelineError, match="needs itself"):
        build_graph(p)


def test_a_duplicate_out_is_an_error_naming_both_producers(project):
    p = project("""\
        targets:
          a: {cmd: x, outs: [model.pkl]}
          b: {cmd: x, outs: [other.pkl, ./model.pkl]}
        """)
    with pytest.raises(PipelineError) as ei:
        build_graph(p)
    assert "'model.pkl'" in ei.value.message
    assert "'a'" in ei.value.message and "'b'" in ei.value.message
    assert ei.value.where is not None and ei.value.where.line == 3


def test_a_file_and_a_directory_spelling_of_one_out_are_duplicates(project):
    p = project("targets:\n  a: {cmd: x, outs: [data/]}\n  b: {cmd: x, outs: [data]}\n")
    with pytest.raises(PipelineError, match="declared by both"):
        build_graph(p)


def test_an_out_inside_another_targets_directory_out_is_an_error(project):
    p = project("targets:\n  a: {cmd: x, outs: [data/]}\n  b: {cmd: x, outs: [data/sub/b.csv]}\n")
    with pytest.raises(PipelineError) as ei:
        build_graph(p)
    assert "lies inside out 'data/'" in ei.value.message
    assert "'a'" in ei.value.message and "'b'" in ei.value.message


def test_a_target_listing_its_own_out_as_a_dep_is_an_error(project):
    p = project("targets:\n  a: {cmd: x, deps: [a.txt], outs: [a.txt]}\n")
    with pytest.raises(PipelineError, match="its own out"):
        build_graph(p)


def test_a_missing_dep_that_no_target_produces_is_an_error_naming_it(project, tmp_path):
    project("""\
        targets:
          a: {cmd: x, deps: [raw.csv, data/missing.csv], outs: [a.txt]}
        """, ["raw.csv"])
    with pytest.raises(PipelineError) as ei:
        pipetool.status(cwd=str(tmp_path))
    assert "data/missing.csv" in ei.value.message
    assert "target 'a'" in ei.value.message
    assert ei.value.where is not None and ei.value.where.line == 2


def test_a_glob_dep_matching_nothing_and_produced_by_no_target_is_an_error(project, tmp_path):
    project("targets:\n  a: {cmd: x, deps: ['data/*.csv'], outs: [a.txt]}\n")
    with pytest.raises(PipelineError, match=r"data/\*\.csv"):
        pipetool.status(cwd=str(tmp_path))


def test_a_dep_produced_by_a_target_need_not_exist_yet(project, tmp_path):
    project("targets:\n  a: {cmd: x, outs: [a.txt]}\n  b: {cmd: x, deps: [a.txt], outs: [b.txt]}\n")
    report = pipetool.status(cwd=str(tmp_path))
    assert set(report.targets) == {"a", "b"}


def test_a_cycle_is_an_error_naming_every_target_on_it(project):
    p = project("""\
        targets:
          entry: {cmd: x, outs: [e.txt]}
          a: {cmd: x, deps: [c.txt, e.txt], outs: [a.txt]}
          b: {cmd: x, deps: [a.txt], outs: [b.txt]}
          c: {cmd: x, deps: [b.txt], outs: [c.txt]}
          after: {cmd: x, deps: [c.txt], outs: [z.txt]}
        """)
    with pytest.raises(PipelineError) as ei:
        build_graph(p)
    msg = ei.value.message
    assert "cycle" in msg
    chain = msg.split("cycle:")[1].strip().split(" -> ")
    assert set(chain) == {"a", "b", "c"}
    assert chain[0] == chain[-1] and len(chain) == 4
    # the chain follows the data: each step is a real edge
    edges = {("c", "a"), ("a", "b"), ("b", "c")}
    assert all((x, y) in edges for x, y in itertools.pairwise(chain))
    assert "entry" not in msg and "after" not in msg


def test_a_cycle_through_needs_is_an_error(project):
    p = project("targets:\n  a: {cmd: x, needs: [b]}\n  b: {cmd: x, needs: [a]}\n")
    with pytest.raises(PipelineError) as ei:
        build_graph(p)
    assert "'a'" not in ei.value.message  # names are shown bare in the chain
    assert set(ei.value.message.split("cycle:")[1].strip().split(" -> ")) == {"a", "b"}


def test_the_order_is_topological(project):
    _, g = graph_of(project, """\
        targets:
          report: {cmd: x, deps: [model.pkl, stats.txt], outs: [report.md]}
          stats: {cmd: x, outs: [stats.txt]}
          train: {cmd: x, deps: [feat.npz], outs: [model.pkl]}
          features: {cmd: x, outs: [feat.npz]}
          lonely: {cmd: x}
        """)
    order = list(g.order)
    for n, ups in g.upstream.items():
        assert all(order.index(u) < order.index(n) for u in ups)
    assert order[-1] == "lonely"


CHAIN = """\
targets:
  prepare: {cmd: x, outs: [data/prepared/]}
  features: {cmd: x, deps: [data/prepared/], outs: [data/features.npz]}
  train: {cmd: x, deps: [data/features.npz], outs: [models/model.pkl]}
  evaluate: {cmd: x, deps: [models/model.pkl], outs: [metrics.json]}
  side: {cmd: x, outs: [side.txt]}
"""


def test_closures_follow_edges_both_ways(project):
    _, g = graph_of(project, CHAIN)
    assert g.closure_up(["train"]) == {"prepare", "features", "train"}
    assert g.closure_down(["features"]) == {"features", "train", "evaluate"}
    assert g.closure_down(["side"]) == {"side"}


def test_selecting_a_target_selects_what_it_needs_in_order(project):
    p, g = graph_of(project, CHAIN)
    assert select(g, resolve_targets(p, g, ["train"])) == ["prepare", "features", "train"]
    assert select(g, []) == list(g.order)


@pytest.mark.parametrize("spelled", ["models/model.pkl", "./models/model.pkl", "models//model.pkl"])
def test_a_target_can_be_selected_by_its_out_path(project, spelled):
    p, g = graph_of(project, CHAIN)
    assert resolve_targets(p, g, [spelled]) == ["train"]


def test_a_directory_out_can_be_selected_with_or_without_its_slash(project):
    p, g = graph_of(project, CHAIN)
    assert resolve_targets(p, g, ["data/prepared/"]) == ["prepare"]
    assert resolve_targets(p, g, ["data/prepared"]) == ["prepare"]


def test_an_out_path_is_resolved_from_the_current_folder(project, tmp_path, monkeypatch):
    p, g = graph_of(project, CHAIN)
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path / "models")
    assert resolve_targets(p, g, ["model.pkl"]) == ["train"]
    assert resolve_targets(p, g, [str(tmp_path / "metrics.json")]) == ["evaluate"]


def test_naming_a_target_twice_selects_it_once(project):
    p, g = graph_of(project, CHAIN)
    assert resolve_targets(p, g, ["train", "models/model.pkl"]) == ["train"]


def test_an_unknown_target_is_a_usage_error_naming_the_closest(project):
    p, g = graph_of(project, CHAIN)
    with pytest.raises(UsageError) as ei:
        resolve_targets(p, g, ["trian"])
    assert "unknown target 'trian'" in ei.value.message
    assert "did you mean 'train'" in ei.value.message


def test_an_unknown_target_through_the_api_is_a_usage_error(project, tmp_path):
    project(CHAIN)
    with pytest.raises(UsageError):
        pipetool.status(["nope"], cwd=str(tmp_path))
