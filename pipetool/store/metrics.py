"""Metrics files (JSON, YAML or TOML outs) read into a run's manifest, kept strict JSON."""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import PipelineError


def read_metrics(root: str, paths: Iterable[str], warn: Callable[[str], None]) -> dict[str, Any]:
    """Parse metrics files; an unreadable one is skipped, and `warn` says so."""
    from ..spec.params import read_params_file

    out: dict[str, Any] = {}
    for rel in paths:
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            continue
        try:
            out[rel] = _finite(read_params_file(path, rel, None, kind="metrics file"))
        except PipelineError as exc:
            warn(f"{exc.render()} (not recorded)")
    return out


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON: they are kept as the strings "NaN", "Infinity",
    "-Infinity", so `runs --json` stays strict JSON after a diverged training run."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
