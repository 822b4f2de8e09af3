"""Outs are cleared before a build or a restore, but nothing pipetool could not put back is
ever deleted: such files are moved under .pipetool/displaced/ID/ and the run says so; and
pipetool's own files can never be outs."""
from __future__ import annotations

import json

from .support import assert_invalid, ok, run_id

SPLIT = """
    targets:
      split:
        cmd: echo split >> runs.log && mkdir -p data && cp in/src.txt data/train.txt
        deps: [in/src.txt]
        outs: [data/]
"""


def displaced(project, rid: str) -> dict[str, str]:
    """Files moved aside by run (or id) `rid`: relative path -> content."""
    base = project.root / ".pipetool" / "displaced" / rid
    return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*")) if p.is_file()}


def test_a_hand_placed_file_in_a_never_built_out_folder_is_moved_aside_not_deleted(project):
    project.write("in/src.txt", "rows\n")
    project.write("data/raw.csv", "precious,data\n")
    project.pipeline(SPLIT)
    res = ok(project.pt("run", "--json"))
    rid = json.loads(res.stdout)["run_id"]
    assert displaced(project, rid) == {"data/raw.csv": "precious,data\n"}
    assert not project.exists("data/raw.csv")
    assert project.read("data/train.txt") == "rows\n"
    assert (f"pipetool: warning: split: moved 1 file(s) pipetool did not build out of the way, "
            f"to .pipetool/displaced/{rid}/: data/raw.csv") in res.stderr
    assert project.runs() == ["split"]


def test_what_the_target_built_is_cleared_and_only_the_unknown_file_moved_on_a_rebuild(project):
    project.write("in/src.txt", "rows\n")
    project.pipeline(SPLIT)
    ok(project.pt("run"))
    project.write("data/notes.txt", "mine\n")
    project.write("in/src.txt", "rows v2\n")
    rid = run_id(project, "run")
    assert displaced(project, rid) == {"data/notes.txt": "mine\n"}  # data/train.txt was ours
    assert sorted(p.name for p in (project.root / "data").iterdir()) == ["train.txt"]
    assert project.read("data/train.txt") == "rows v2\n"


def test_an_out_edited_by_hand_is_kept_when_the_cache_puts_the_built_one_back(project):
    project.write("in/a.txt", "a\n")
    project.pipeline("""
        targets:
          model:
            cmd: echo model >> runs.log && cat in/a.txt > model.txt
            deps: [in/a.txt]
            outs: [model.txt]
    """)
    ok(project.pt("run"))
    project.write("model.txt", "tuned by hand\n")
    out = json.loads(ok(project.pt("run", "--json")).stdout)
    assert out["targets"]["model"]["action"] == "restored"
    assert displaced(project, out["run_id"]) == {"model.txt": "tuned by hand\n"}
    assert project.read("model.txt") == "a\n"
    assert project.runs() == ["model"]


def test_a_restore_from_the_cache_moves_an_unknown_file_aside_too(project):
    project.write("in/src.txt", "v1\n")
    project.pipeline(SPLIT)
    ok(project.pt("run"))
    project.write("in/src.txt", "v2\n")
    ok(project.pt("run"))
    project.write("data/extra.txt", "keep me\n")
    project.write("in/src.txt", "v1\n")  # back to a build the cache holds: restored, not run
    res = ok(project.pt("run", "--json"))
    out = json.loads(res.stdout)
    assert out["targets"]["split"]["action"] == "restored"
    assert displaced(project, out["run_id"]) == {"data/extra.txt": "keep me\n"}
    assert project.read("data/train.txt") == "v1\n"
    assert project.runs() == ["split", "split"]


def test_checkout_moves_an_unknown_file_in_the_way_aside(project):
    project.write("in/src.txt", "v1\n")
    project.pipeline(SPLIT)
    first = run_id(project, "run")
    project.write("in/src.txt", "v2\n")
    ok(project.pt("run"))
    project.write("data/extra.txt", "keep me\n")
    res = ok(project.pt("checkout", first))
    moved = list((project.root / ".pipetool" / "displaced").iterdir())
    assert [p.name.startswith("checkout-") for p in moved] == [True]
    assert displaced(project, moved[0].name) == {"data/extra.txt": "keep me\n"}
    assert "data/extra.txt" in res.stderr
    assert project.read("data/train.txt") == "v1\n"


def test_a_file_that_cannot_be_moved_aside_fails_its_target_and_is_left_in_place(project):
    project.write("in/src.txt", "rows\n")
    project.write("data/raw.csv", "precious\n")
    project.pipeline(SPLIT)
    (project.root / ".pipetool").mkdir()
    (project.root / ".pipetool" / "displaced").write_text("in the way")  # not a folder
    res = ok(project.pt("run"), code=1)
    assert "Traceback" not in res.stderr
    assert "split failed: cannot move aside files pipetool did not build" in res.stderr
    assert "data/raw.csv; nothing was deleted" in res.stderr
    assert project.read("data/raw.csv") == "precious\n"
    assert project.runs() == []


def test_a_target_whose_outs_are_exactly_what_it_built_moves_nothing(project):
    project.write("in/src.txt", "rows\n")
    project.pipeline(SPLIT)
    ok(project.pt("run"))
    project.write("in/src.txt", "rows v2\n")
    res = ok(project.pt("run"))
    assert "moved" not in res.stderr
    assert not (project.root / ".pipetool" / "displaced").exists()


def test_pipetools_own_files_cannot_be_outs(project):
    project.write("in/a.txt", "a\n")
    project.write("conf/params.yaml", "lr: 0.1\n")
    project.write("conf/schema.json", "{}\n")
    for out, needle in (("pipeline.yaml", "pipeline.yaml"), ("pipetool.lock", "pipetool.lock"),
                        (".pipetool/x", ".pipetool"), ("conf/params.yaml", "conf/params.yaml"),
                        ("conf/", "conf/params.yaml"), ("conf/schema.json", "conf/schema.json")):
        project.pipeline(f"""
            params_files: [conf/params.yaml]
            params_schema: conf/schema.json
            targets:
              bad:
                cmd: echo bad >> runs.log && echo x > {out}
                deps: [in/a.txt]
                outs: [{out}]
        """)
        assert_invalid(project.pt("run"), needle, "bad", project=project)
        assert_invalid(project.pt("status"), needle, project=project)
