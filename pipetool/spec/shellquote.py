"""Quoting one value for the place it sits in a bash command (see shellctx)."""
from __future__ import annotations

import re
import shlex

_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
QUOTED = "'"  # context names
UNQUOTED = ""
DOUBLE = '"'


class Refused(ValueError):
    """A placeholder sits where no quoting makes its value one safe word."""


def quote_word(text: str) -> str:
    """`text` as one unquoted shell word: `shlex.quote`, or `$'…'` when it holds a control
    character (a newline would end a comment, `$'…'` writes it as `\\n`)."""
    if not _CONTROL.search(text):
        return shlex.quote(text)
    out = []
    for ch in text:
        if ch in "\\'":
            out.append("\\" + ch)
        elif _CONTROL.match(ch):
            out.append(_NAMED.get(ch) or f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def in_context(text: str, context: str) -> str:
    """The replacement giving exactly `text` inside `context`. No rendering holds a newline:
    were bash to read the line differently (after a syntax error it starts afresh at the
    next line), no part of a value could start a command of its own."""
    if context == UNQUOTED:
        return quote_word(text)
    if context == QUOTED or _CONTROL.search(text):  # "…" cannot escape a newline: close, $'…', reopen
        quoted = quote_word(text)
        return text if quoted == text else context + quoted + context
    return re.sub(r'([\\"$`])', r"\\\1", text)


def is_number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


def is_plain(text: str) -> bool:
    """Letters, digits and @%+=:,./-_ only: the same text in every context."""
    return text != "" and shlex.quote(text) == text


def backtick_unescape(body: str, in_dq: bool) -> str:
    """The command a backtick substitution runs: bash drops the backslash before $, `, \\
    (and " inside "…") first."""
    special = '$`\\"' if in_dq else "$`\\"
    return re.sub(r"\\(.)", lambda m: m.group(1) if m.group(1) in special else m.group(0), body, flags=re.DOTALL)


def backtick_escape(inner: str, in_dq: bool) -> str:
    """The body that `backtick_unescape` turns back into `inner`."""
    return re.sub(r'([\\`$"])' if in_dq else r"([\\`$])", r"\\\1", inner)
