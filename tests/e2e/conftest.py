"""Fixtures for the end-to-end tests (helpers live in support.py)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .support import Project, kill_group_quietly


@pytest.fixture
def project(tmp_path: Path):
    proj = Project(tmp_path / "proj")
    proj.root.mkdir()
    yield proj
    for p in proj.popened:  # never leave a background pipetool (or its children) behind
        if p.poll() is None:
            kill_group_quietly(p.pid)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for stream in (p.stdout, p.stderr):
            if stream:
                stream.close()
    for pgid in proj.kill_at_end:
        kill_group_quietly(pgid)


@pytest.fixture
def pt(project: Project):
    return project.pt
