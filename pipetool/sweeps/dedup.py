"""Shared work once: a fingerprint several points need is built by one of them (SPEC §10).

The first point to launch a target with a given fingerprint *claims* it and builds (or
restores) it; a point that launches the same fingerprint meanwhile *follows* that build:
its job is parked, holding no job slot (`shared.Lane`), until the build is *settled*, then
it restores the outputs from the run cache (as links). A build that failed fails its
followers with the same message, and any later point that needs it, without running it
again. A build abandoned (its point stopped for another reason) is claimed afresh.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import EXIT_FAILED, PipetoolError


class SharedBuildFailed(PipetoolError):
    """The build another point ran for this very fingerprint failed (exit 1)."""

    exit_code = EXIT_FAILED


@dataclass
class Build:
    """One fingerprint being built (or restored) by one point for all of them."""

    fingerprint: str
    target: str
    point: int  # the point's number (1-based)
    run_id: str
    followers: list[Callable[[], None]] = field(default_factory=list)  # called once it is settled
    ok: bool | None = None  # None until settled, and when abandoned
    message: str = ""

    def failure(self) -> str:
        return f"{self.message} (built once for the sweep, by point {self.point}: run {self.run_id})"


class Builds:
    """The registry of a sweep's builds in progress, and of those that failed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now: dict[str, Build] = {}
        self._failed: dict[str, Build] = {}

    def claim(self, fingerprint: str, target: str, point: int, run_id: str,
              follower: Callable[[], None]) -> Build | None:
        """None: the caller builds it now (it must `settle` it). Else the build of another
        point: in progress (`follower` will be called when it is settled) or failed (ok False)."""
        with self._lock:
            failed = self._failed.get(fingerprint)
            if failed is not None:
                return failed
            build = self._now.get(fingerprint)
            if build is None or build.point == point:
                self._now[fingerprint] = Build(fingerprint, target, point, run_id)
                return None
            build.followers.append(follower)
            return build

    def settle(self, fingerprint: str, point: int, ok: bool | None, message: str = "") -> None:
        """The claimed build is done: succeeded (its outputs are in the run cache, or it is
        up to date), failed (`message`), or abandoned (None: followers claim it afresh)."""
        with self._lock:
            build = self._now.get(fingerprint)
            if build is None or build.point != point:
                return
            del self._now[fingerprint]
            build.ok, build.message = ok, message
            if ok is False:
                self._failed[fingerprint] = build
            followers, build.followers = build.followers, []
        for wake in followers:
            wake()

    def abandon(self, point: int) -> None:
        """A point stopped: what it still had claimed is left to the others."""
        with self._lock:
            mine = [fp for fp, b in self._now.items() if b.point == point]
        for fp in mine:
            self.settle(fp, point, None)

    def owned(self, fingerprint: str, point: int) -> bool:
        with self._lock:
            build = self._now.get(fingerprint)
            return build is not None and build.point == point
