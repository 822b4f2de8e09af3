"""Installed packages by version, read from the `*.dist-info` folders on `sys.path`
(nothing imported): what a callable's use of a third-party package counts as."""
from __future__ import annotations

import functools
import os
import re
import sys

# -- installed packages ---------------------------------------------------------------

STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | frozenset(sys.builtin_module_names)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@functools.cache
def _dist_index() -> dict[str, tuple[str, str | None, str]]:
    """Installed distributions from the `*.dist-info` / `*.egg-info` folders on sys.path
    (first one wins, as for imports): normalized name -> (name, version, info dir). Read
    once per process; no importlib.metadata (its import alone costs more)."""
    index: dict[str, tuple[str, str | None, str]] = {}
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for n in names:
            if n.endswith(".dist-info"):
                name, _, version = n[: -len(".dist-info")].partition("-")
            elif n.endswith(".egg-info"):
                name, _, rest = n[: -len(".egg-info")].partition("-")
                version = rest.split("-py")[0]
            else:
                continue
            index.setdefault(_norm(name), (name, version or None, os.path.join(entry, n)))
    return index


def _dist_version(info_dir: str) -> str | None:
    for meta in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(info_dir, meta), "rb") as f:
                head = f.read(4096).decode("utf-8", "replace")
        except OSError:
            continue
        m = re.search(r"^Version:\s*(\S+)", head, re.MULTILINE)
        if m:
            return m.group(1)
    return None


@functools.cache
def _top_level_map() -> dict[str, str]:
    """Top-level module -> distribution, for modules not named after their distribution
    (sklearn, yaml, PIL): from top_level.txt, else RECORD. Built only when needed."""
    tops: dict[str, str] = {}
    for key, (_, _, info_dir) in _dist_index().items():
        names: set[str] = set()
        try:
            with open(os.path.join(info_dir, "top_level.txt"), encoding="utf-8", errors="replace") as f:
                names = {line.strip() for line in f if line.strip()}
        except OSError:
            try:
                with open(os.path.join(info_dir, "RECORD"), encoding="utf-8", errors="replace") as f:
                    for line in f:
                        first = line.split(",", 1)[0].split("/", 1)[0]
                        first = first.removesuffix(".py")
                        if first and first.isidentifier():
                            names.add(first)
            except OSError:
                pass
        for name in names:
            tops.setdefault(name, key)
    return tops


def _dist_of(module: str) -> tuple[str, str | None, str] | None:
    top = module.split(".")[0]
    index = _dist_index()
    key = _norm(top)
    if key not in index:
        key = _top_level_map().get(top, "")
    return index.get(key)


def package_of(module: str) -> tuple[str, str | None] | None:
    """(distribution name, version) of an installed module's top-level package; None for
    the standard library; (top-level name, None) when no installed distribution has it."""
    top = module.split(".")[0]
    if top in STDLIB or not top:
        return None
    dist = _dist_of(top)
    if dist is None:
        return top, None
    name, version, info_dir = dist
    if version is None:
        version = _dist_version(info_dir)
    return name, version


def is_editable(module: str) -> bool:
    """Whether the module's distribution is an editable install (`pip install -e`): its
    code changes without its version."""
    dist = _dist_of(module)
    if dist is None:
        return False
    try:
        with open(os.path.join(dist[2], "direct_url.json"), "rb") as f:
            return re.search(rb'"editable"\s*:\s*true', f.read()) is not None
    except OSError:
        return False


