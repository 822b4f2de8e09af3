"""The validated pipeline model: frozen dataclasses, paths relative to the project root."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import Where


@dataclass(frozen=True)
class Dep:
    path: str  # relative, posix; a trailing "/" marks a directory; may be a glob
    hash_mode: str = "auto"  # "auto" | "bytes" | "ast"


@dataclass(frozen=True)
class Check:
    """A check run after its target succeeds: a command, or a callable (`module:function`)."""

    cmd: str | None = None
    python: str | None = None

    @property
    def name(self) -> str:
        return self.python if self.python is not None else (self.cmd or "")


@dataclass(frozen=True)
class Target:
    name: str
    cmd: str | None  # after ${...} substitution
    python: str | None  # "module:function"
    deps: tuple[Dep, ...]
    outs: tuple[str, ...]  # outs + metrics, in declaration order
    metrics: tuple[str, ...]
    params: tuple[str, ...]  # declared keys plus keys interpolated into cmd
    needs: tuple[str, ...]
    env: tuple[str, ...]
    always: bool = False
    cache: bool = True
    desc: str = ""
    code_version: str | None = None
    cmd_template: str | None = None  # cmd as written, ${...} unexpanded
    checks: tuple[Check, ...] = ()
    resources: tuple[tuple[str, float], ...] = ()
    # A partition of a `foreach` target (SPEC §10): the foreach target's name, the item's
    # KEY and the item itself (a JSON value; a glob's item is its path).
    template: str | None = None
    key: str | None = None
    item: Any = None
    # The stand-in for a `foreach` over a glob before its items are known: the glob, and
    # the target as written, from which the partitions are made once the files exist.
    foreach: str | None = None
    raw: dict[str, Any] | None = None

    @property
    def is_placeholder(self) -> bool:
        return self.foreach is not None

    @property
    def kind(self) -> str:
        return "cmd" if self.cmd is not None else "python"


@dataclass(frozen=True)
class Pipeline:
    root: str  # absolute project root (folder holding the pipeline file)
    file: str  # absolute path of the pipeline file
    targets: dict[str, Target]
    params: dict[str, Any]  # effective params: params, params_files, -S overrides
    overrides: dict[str, Any] = field(default_factory=dict)
    order: tuple[str, ...] = ()  # targets in declaration order
    remote: str | None = None  # `remote:` as written (an fsspec URL or a path)
    config_files: tuple[str, ...] = ()  # params files and a params schema file, relative to the root
    partitioned: tuple[str, ...] = ()  # the `foreach` targets, by name
    # Finds a key's place in the file on demand (parsing marks only on the error path).
    locate: Callable[[tuple], Where] | None = field(default=None, compare=False, repr=False)
    # derive(name, build): build() once per model, cached with it (the loader's spec cache).
    derive: Callable[[str, Callable[[], Any]], Any] | None = field(default=None, compare=False, repr=False)
    # Where partitions of foreach globs are kept between commands (the loader's spec cache).
    partition_cache: Any = field(default=None, compare=False, repr=False)

    def derived(self, name: str, build: Callable[[], Any]) -> Any:
        return self.derive(name, build) if self.derive else build()

    def where(self, *path: Any) -> Callable[[], Where | None]:
        """A finder for the place of `path`, for PipelineError (parsed only when raised)."""
        return lambda: self.locate(tuple(path)) if self.locate else None
