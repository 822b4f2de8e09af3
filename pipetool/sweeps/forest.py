"""A point's workspace as a symlink forest of the project (SPEC §10; Bazel's sandboxes).

The point sees the project's files at their usual paths, so its commands run with cwd =
the point's folder and `python:` callables import the project's modules from there. The
folders that hold outs are real folders (a point's own outputs land in its own folder,
never through a link into the project), with every other entry in them a link; every
other top-level entry is one link to the project's. `.pipetool/` and `pipetool.lock` are
not linked. The project's own symlinks are copied as symlinks (the same target text), so
a point hashes a folder exactly as the project does.

`plan_forest` is pure (it lists folders through the function it is given); `make_forest`
carries a plan out under a point's folder.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from ..spec.paths import inside
from ..store.failures import raise_write_error

NOT_LINKED = (".pipetool", "pipetool.lock")  # at the top level only

Kind = Literal["dir", "file", "link", "linkdir"]  # link: a symlink; linkdir: one to a folder


@dataclass(frozen=True)
class Entry:
    name: str
    kind: Kind


@dataclass(frozen=True)
class ForestPlan:
    """What a point's folder holds, parents before children (paths relative to the root)."""

    dirs: tuple[str, ...]  # real folders
    links: tuple[str, ...]  # links to the project's entry at the same path
    copies: tuple[str, ...]  # the project's own symlinks, made again with the same target


def must_be_real(outs: Iterable[str]) -> set[str]:
    """Every folder above an out: what a build writes lands in the point's own folders."""
    real: set[str] = set()
    for out in outs:
        parent = os.path.dirname(out.rstrip("/"))
        while parent and parent not in real:
            real.add(parent)
            parent = os.path.dirname(parent)
    return real


def plan_forest(listdir: Callable[[str], list[Entry]], outs: Iterable[str], deep: Iterable[str] = (),
                leave_out: Iterable[str] = ()) -> ForestPlan:
    """The forest for a pipeline whose targets write `outs`. `deep`: folders whose whole
    tree is real (a foreach glob's partitions write anywhere below them); `leave_out`:
    paths not linked (outs a `--from` run provides, linked to the cache instead)."""
    deep = [d.rstrip("/") for d in deep]
    real = must_be_real([*outs, *(f"{d}/x" for d in deep)])
    skipped = {p.rstrip("/") for p in leave_out}
    dirs: list[str] = []
    links: list[str] = []
    copies: list[str] = []
    stack = [""]
    while stack:
        folder = stack.pop()
        for e in sorted(listdir(folder), key=lambda e: e.name):
            rel = f"{folder}/{e.name}" if folder else e.name
            if (not folder and e.name in NOT_LINKED) or rel in skipped:
                continue
            if e.kind in ("dir", "linkdir") and (rel in real or any(inside(rel, d) for d in deep)):
                dirs.append(rel)
                stack.append(rel)
            elif e.kind in ("link", "linkdir"):
                copies.append(rel)
            else:
                links.append(rel)
    return ForestPlan(tuple(dirs), tuple(links), tuple(copies))


def project_lister(project_root: str) -> Callable[[str], list[Entry]]:
    """`listdir` over the project's folders (a missing folder lists as empty)."""
    def listdir(rel: str) -> list[Entry]:
        out: list[Entry] = []
        try:
            with os.scandir(os.path.join(project_root, rel)) as it:
                for e in it:
                    if e.is_symlink():
                        out.append(Entry(e.name, "linkdir" if e.is_dir() else "link"))
                    else:
                        out.append(Entry(e.name, "dir" if e.is_dir(follow_symlinks=False) else "file"))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            from ..errors import PipelineError

            raise PipelineError(f"'{rel or '.'}' cannot be listed for a sweep's point workspaces: "
                                f"{exc.strerror}") from None
        return out
    return listdir


def make_forest(plan: ForestPlan, project_root: str, point_root: str) -> None:
    """Make the point's folder afresh from `plan` (what a former run of the point left
    there is removed: links are unlinked, never followed)."""
    try:
        if os.path.lexists(point_root):
            shutil.rmtree(point_root)
        os.makedirs(point_root)
        for d in plan.dirs:
            os.mkdir(os.path.join(point_root, d))
        base = os.path.join(project_root, "")
        for rel in plan.links:
            os.symlink(base + rel, os.path.join(point_root, rel))
        for rel in plan.copies:
            os.symlink(os.readlink(base + rel), os.path.join(point_root, rel))
    except OSError as exc:
        raise_write_error(exc, point_root, "a sweep point's workspace")


def is_forest_link(project_root: str, point_root: str, rel: str) -> bool:
    """Whether `rel` in the point's folder is a link the forest made to the project."""
    try:
        return os.readlink(os.path.join(point_root, rel)) == os.path.join(project_root, rel)
    except OSError:
        return False
