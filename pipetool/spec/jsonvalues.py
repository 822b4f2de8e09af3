"""Params are JSON values: null, booleans, finite numbers, strings, lists, string-keyed maps.

Every source (the pipeline's `params`, each params file, `-S`, a params schema's defaults,
the params of a run branched from) is checked when it is read, before anything runs, so a
value that JSON cannot hold never reaches a command, a fingerprint, the run store or
`pipetool.lock`. Dates, datetimes and times (TOML has them) become ISO 8601 strings
(`1979-05-27`, `1979-05-27T07:32:00+00:00`); NaN and infinities (`.nan`, `.inf`, `1e400`)
and anything else are refused with the param's path and where it came from.
"""
from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, NoReturn

from ..errors import PipelineError, PipetoolError, Where, WhereLike

Path = tuple[str | int, ...]
ALLOWED = "null, true/false, finite numbers, strings, lists and mappings with string keys"


def param_path(path: Path) -> str:
    """`train.lr`, `layers[2]`: the spelling the other params errors use."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + p
    return out or "(top level)"


def plain(value: Any, origin: str, where: WhereLike | Locate = None, path: Path = (),
          error: type[PipetoolError] = PipelineError) -> Any:
    """`value` as JSON values (dates as ISO 8601 strings), or `error` naming the param's
    path and `origin` ("params file p.toml", "-S train.lr", …). `where` is a place, or a
    `Locate` finding the place of a param's path in the pipeline file."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            shown = ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
            _refuse(f"is not a finite number (it reads as {shown})", origin, where, path, error)
        return value
    if isinstance(value, (datetime.date, datetime.time)):  # a datetime is a date too
        return value.isoformat()
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                _refuse(f"has a key {k!r} that is not a string", origin, where, path, error)
            out[k] = plain(v, origin, where, path + (k,), error)
        return out
    if isinstance(value, (list, tuple)):
        return [plain(v, origin, where, path + (i,), error) for i, v in enumerate(value)]
    _refuse(f"is a {type(value).__name__}, which is not a JSON value", origin, where, path, error)


@dataclass(frozen=True)
class Locate:
    """Finds the place of the param at `path` (relative to `prefix`) in the pipeline file."""

    find: Callable[[tuple], Where]
    prefix: tuple = ("params",)

    def __call__(self, path: Path) -> Where:
        return self.find(self.prefix + tuple(path))


def _refuse(what: str, origin: str, where: WhereLike | Locate, path: Path, error: type[PipetoolError]) -> NoReturn:
    place: WhereLike = partial(where, path) if isinstance(where, Locate) else where
    raise error(f"param '{param_path(path)}' ({origin}) {what}; params must be JSON values: {ALLOWED}", place)
