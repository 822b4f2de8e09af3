"""paths: project-relative posix spelling; nothing may reach outside the project root."""
from __future__ import annotations

import os

import pytest

from pipetool.errors import PipelineError, Where
from pipetool.spec.paths import inside, normalize, strip_dir

ROOT = "/proj/root"


def norm(raw: str) -> str:
    return normalize(raw, ROOT, "dep", None)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("a.txt", "a.txt"),
        ("./a.txt", "a.txt"),
        ("data/raw/", "data/raw/"),
        ("data//raw", "data/raw"),
        ("data/./raw/../prepared/", "data/prepared/"),
        ("  spaced.txt  ", "spaced.txt"),
        ("data/*.csv", "data/*.csv"),
        ("data/**/*.csv", "data/**/*.csv"),
    ],
)
def test_relative_paths_are_normalized_and_a_trailing_slash_is_kept(raw, expected):
    assert norm(raw) == expected


def test_an_absolute_path_inside_the_root_becomes_relative():
    assert norm(ROOT + "/data/a.csv") == "data/a.csv"
    assert norm(ROOT + "/data/") == "data/"


@pytest.mark.parametrize("raw", ["/etc/passwd", "/proj/rootother/a", "/proj/a.txt", "/"])
def test_an_absolute_path_outside_the_root_is_an_error(raw):
    with pytest.raises(PipelineError, match="outside the project root"):
        norm(raw)


@pytest.mark.parametrize("raw", ["../a.txt", "..", "data/../../a", "./../x/", "a/b/../../../c", "../*.csv"])
def test_dotdot_escapes_are_errors(raw):
    with pytest.raises(PipelineError, match=r"escapes the project root through '\.\.'"):
        norm(raw)


@pytest.mark.parametrize("raw", [".", "./", "a/..", ROOT, ROOT + "/"])
def test_the_root_itself_is_not_a_dep_or_out(raw):
    with pytest.raises(PipelineError, match="project root itself"):
        norm(raw)


@pytest.mark.parametrize("raw", ["", "   "])
def test_an_empty_path_is_an_error(raw):
    with pytest.raises(PipelineError, match="empty path"):
        norm(raw)


@pytest.mark.parametrize("raw", [".pipetool", ".pipetool/cache/x", "./.pipetool/", "a/../.pipetool/state.db"])
def test_pipetools_own_state_folder_is_off_limits(raw):
    with pytest.raises(PipelineError, match=r"\.pipetool/"):
        norm(raw)


def test_errors_name_what_the_path_is_and_where_it_was_written():
    where = Where("pipeline.yaml", 7, 12)
    with pytest.raises(PipelineError) as ei:
        normalize("../x", ROOT, "target 'train' dep", where)
    assert ei.value.where == where
    assert ei.value.message.startswith("target 'train' dep '../x'")
    assert str(ei.value).startswith("pipeline.yaml:7:12: ")


def test_the_real_project_root_refuses_its_parent(tmp_path):
    root = str(tmp_path / "proj")
    os.makedirs(root)
    with pytest.raises(PipelineError):
        normalize(str(tmp_path / "secret.txt"), root, "dep", None)
    assert normalize(os.path.join(root, "a", "b.txt"), root, "dep", None) == "a/b.txt"


def test_strip_dir_and_inside():
    assert strip_dir("data/") == "data"
    assert strip_dir("data") == "data"
    assert inside("data/raw/a.csv", "data/")
    assert inside("data/", "data")
    assert not inside("database/x", "data/")
    assert not inside("data", "data/raw")
