"""`${a.b}` substitution in commands: render a param as YAML would, then quote it for the
place it sits in the command (shellctx), so it is exactly its value there, nothing more."""
from __future__ import annotations

import functools
import json
import math
import re
import shutil
import subprocess
from typing import Any

from .params import MISSING, lookup
from .shellctx import Scanner
from .shellquote import Refused, in_context, is_number, is_plain


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


def interpolate(cmd: str, params: dict[str, Any],
                extra: dict[str, Any] | None = None) -> tuple[str, list[str], list[str]]:
    """Return (command, param keys used, unknown keys); a literal `${` is written `$${`.
    `extra`: names that stand for values before any param does (a partition's `item`,
    `item.stem`, `key`); they are not params and are not reported as used.

    Raises `Refused` for a placeholder that no quoting makes safe where it sits, and
    `AmbiguousParam` for a key naming two params."""
    used: list[str] = []
    unknown: list[str] = []

    def place(raw: str, context: str, arithmetic: bool, nowhere: str) -> str:
        key = raw.strip()
        if extra is not None and key in extra:
            value = extra[key]
        else:
            value = lookup(params, key)
            if value is MISSING:
                unknown.append(key)
                return "${" + raw + "}"
            if key not in used:
                used.append(key)
        text = render_value(value)
        if "\0" in text:
            raise Refused(f"param '{key}' holds a NUL character, which no shell command can carry")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise Refused(f"param '{key}' holds a lone surrogate ({text!r}), which is not UTF-8 text") from None
        if arithmetic:
            if not is_number(text):
                raise Refused(f"'${{{raw}}}' sits where bash evaluates arithmetic ($((…)), ((…)), let, "
                              f"[[ … -eq … ]], an array subscript), where only a number is safe, "
                              f"and param '{key}' is {text!r}")
            return text
        if nowhere:
            if not is_plain(text):
                raise Refused(f"'${{{raw}}}' sits {nowhere}, where no quoting works and only a plain value "
                              f"(letters, digits and @%+=:,./-_) is safe, and param '{key}' is {text!r}")
            return text
        rendered = in_context(text, context)
        if rendered != text:
            quoted.append(key)
        return rendered

    quoted: list[str] = []
    out = Scanner(cmd, place).render()
    if quoted:
        complaint = bash_syntax_error(out)
        if complaint:
            raise Refused(f"with its params in place the command is not valid bash ({complaint}), so where "
                          f"'${{{quoted[0]}}}' sits cannot be known for sure; fix the command")
    return out, used, unknown


@functools.lru_cache(maxsize=4096)
def bash_syntax_error(command: str) -> str | None:
    """What `bash -n` says against `command`, or None when bash parses it. Asked only of a
    command holding a quoted value: the quoting is right only where bash reads the command
    as shellctx does, and after a syntax error bash reads on from the next line afresh."""
    try:
        res = subprocess.run([shutil.which("bash") or "/bin/bash", "-n", "-c", command], capture_output=True,
                             timeout=60, stdin=subprocess.DEVNULL, env={})  # env: no BASH_ENV
    except (OSError, subprocess.SubprocessError):
        return None  # no bash here: no command runs either
    if res.returncode == 0:
        return None
    err = res.stderr.decode("utf-8", "replace")
    lines = [re.sub(r"^.*?: -c: ", "", ln).strip() for ln in err.splitlines() if ln.strip()]
    return lines[0] if lines else f"bash -n exits {res.returncode}"
