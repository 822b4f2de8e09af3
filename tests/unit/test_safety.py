"""Nothing pipetool writes or deletes may reach outside the project root, symlinks included."""
from __future__ import annotations

import os

import pytest

import pipetool
from pipetool.errors import PipetoolError


@pytest.fixture
def outside(tmp_path):
    d = tmp_path / "outside"
    (d / "sub").mkdir(parents=True)
    (d / "victim.txt").write_text("precious\n")
    (d / "sub" / "keep.txt").write_text("precious too\n")
    return d


@pytest.fixture
def project(tmp_path, outside):
    root = tmp_path / "proj"
    root.mkdir()
    os.symlink(outside, root / "link")  # a folder inside the root pointing outside it
    return root


@pytest.mark.parametrize("out", ["link/victim.txt", "link/sub/"])
def test_an_out_through_a_symlink_to_outside_the_root_is_never_deleted(project, outside, out):
    (project / "pipeline.yaml").write_text(f"targets:\n  a:\n    cmd: 'false'\n    outs: [{out}]\n")
    try:
        pipetool.run(cwd=str(project), jobs=1)
    except PipetoolError:
        pass  # refusing the pipeline is the expected outcome
    assert (outside / "victim.txt").read_text() == "precious\n"
    assert (outside / "sub" / "keep.txt").read_text() == "precious too\n"


def test_an_out_through_a_symlink_to_outside_the_root_is_a_pipeline_error(project):
    (project / "pipeline.yaml").write_text("targets:\n  a:\n    cmd: 'true'\n    outs: [link/victim.txt]\n")
    with pytest.raises(PipetoolError, match="outside"):
        pipetool.run(cwd=str(project), jobs=1)


def test_an_out_that_is_itself_a_symlink_is_replaced_not_followed(project, outside):
    os.symlink(outside / "victim.txt", project / "out.txt")
    (project / "pipeline.yaml").write_text("targets:\n  a:\n    cmd: echo new > out.txt\n    outs: [out.txt]\n")
    pipetool.run(cwd=str(project), jobs=1)
    assert (outside / "victim.txt").read_text() == "precious\n"
    assert (project / "out.txt").read_text() == "new\n"


# --- special files among deps: a clear answer, never a traceback or a hang --------------

def status_in_subprocess(root, timeout=60):
    """`status` in a child process, so a hang is a failure and not a stuck test run."""
    import subprocess
    import sys

    code = (
        "import sys, pipetool\n"
        "from pipetool.errors import PipetoolError\n"
        "try:\n"
        "    pipetool.status(cwd=sys.argv[1])\n"
        "except PipetoolError as e:\n"
        "    print('PipetoolError:', e)\n"
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"status did not finish within {timeout} s")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_a_dep_that_is_a_symlink_loop_is_not_a_crash(tmp_path):
    os.symlink("loop", tmp_path / "loop")
    (tmp_path / "pipeline.yaml").write_text("targets:\n  a:\n    cmd: 'true'\n    deps: [loop]\n")
    with pytest.raises(PipetoolError) as ei:
        pipetool.status(cwd=str(tmp_path))
    assert ei.value.message.startswith("'loop' cannot be read: "), ei.value.message


def test_a_symlink_loop_inside_a_dep_folder_is_not_a_crash(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("x")
    os.symlink("l2", tmp_path / "d" / "l2")
    (tmp_path / "pipeline.yaml").write_text("targets:\n  a:\n    cmd: 'true'\n    deps: [d/]\n")
    report = pipetool.status(cwd=str(tmp_path))  # the loop counts in the folder's digest by its link text
    assert report.targets["a"].state == "stale" and report.targets["a"].reasons == ("never built",)


def test_a_dep_that_is_a_named_pipe_does_not_hang_status(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "pipeline.yaml").write_text("targets:\n  a:\n    cmd: 'true'\n    deps: [pipe]\n")
    out = status_in_subprocess(tmp_path)
    assert out.startswith("PipetoolError: 'pipe' is not a regular file or folder"), out
