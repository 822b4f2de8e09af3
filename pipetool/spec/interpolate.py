"""`${a.b}` substitution in commands: render a param as YAML would, shell-quoted if needed."""
from __future__ import annotations

import json
import math
import re
import shlex
from typing import Any

from .params import MISSING, lookup

_PATTERN = re.compile(r"\$\$\{|\$\{([^}]*)\}")


def render_value(value: Any) -> str:
    """Scalars as YAML writes them, lists and mappings as compact JSON."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), sort_keys=False, default=str)
    return str(value)


def interpolate(cmd: str, params: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """Return (command, keys used, unknown keys); a literal `${` is written `$${`."""
    used: list[str] = []
    unknown: list[str] = []

    def sub(m: re.Match) -> str:
        if m.group(0) == "$${":
            return "${"
        key = m.group(1).strip()
        value = lookup(params, key)
        if value is MISSING:
            unknown.append(key)
            return m.group(0)
        if key not in used:
            used.append(key)
        return shlex.quote(render_value(value))

    return _PATTERN.sub(sub, cmd), used, unknown
