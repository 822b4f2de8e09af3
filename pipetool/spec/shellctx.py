"""Where each `${…}` placeholder sits in a bash command, and the text that gives exactly
its value there.

A command is scanned as bash tokenizes it: unquoted text, '…', "…", $'…', backslash
escapes, comments, $( … ) and backticks (nested), here-documents and arithmetic. A
placeholder becomes one piece of the word it sits in, whatever its value holds: unquoted
it is shell-quoted (`shlex.quote`, or `$'…'` when the value holds a control character such
as a newline, so no line of it can end a comment); inside '…' the quote is closed, the
quoted value put in and the quote reopened; inside "…" the characters special there
(backslash, ", $, backtick) are escaped; inside backticks the result is escaped once more
for the backtick's own unescaping. Where bash evaluates text as arithmetic ($((…)), ((…)),
$[…], `let`, array subscripts of assignments, `[[ … -eq … ]]`) only a number may go, since
bash runs the command substitutions that arithmetic names. Where no quoting works (a
here-document, $'…', inside a shell `${…}` expansion) only a plain value (`is_plain`: no
character the shell treats specially) may go; and a placeholder right after an escaping
backslash is always refused. A refusal is a `Refused` error saying why.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from .shellcmd import CommandReader
from .shellquote import DOUBLE, QUOTED, UNQUOTED, Refused, backtick_escape, backtick_unescape

_PLACE = re.compile(r"\$\{([^}]*)\}")

# key, context (UNQUOTED, QUOTED or DOUBLE), in arithmetic, where no quoting works (or "")
# -> replacement text
Place = Callable[[str, str, bool, str], str]


class Scanner:
    """One pass over a command, writing the rendered text to `out`."""

    def __init__(self, text: str, place: Place, arith: int = 0, forbid: str = ""):
        self.s, self.i, self.place = text, 0, place
        self.out: list[str] = []
        self.arith = arith  # > 0: inside text bash evaluates as arithmetic
        self.forbid = forbid  # why no placeholder may appear here ("" when they may)

    # -- helpers -----------------------------------------------------------------------
    def render(self) -> str:
        self.command(None)
        return "".join(self.out)

    def emit(self, text: str) -> None:
        self.out.append(text)
        self.i += len(text)

    def dollar(self, context: str, expands: bool = True) -> bool:
        """Handle `$${` (a literal `${`, whose shell expansion is read on when `expands`) or
        a placeholder at i; False when neither is there."""
        s, i = self.s, self.i
        if s.startswith("$${", i):
            self.out.append("${")
            self.i += 3
            if expands and context != QUOTED:
                self._shell_expansion(context == DOUBLE)
            return True
        m = _PLACE.match(s, i)
        if m is None:
            return False
        self.out.append(self.place(m.group(1), context, self.arith > 0, self.forbid))
        self.i = m.end()
        return True

    def escaped(self) -> None:
        """A backslash and the character it escapes; one before a placeholder is refused."""
        if self.s.startswith("$${", self.i + 1):  # `$${` is a literal `${` wherever it is
            self.emit("\\")
            return
        m = _PLACE.match(self.s, self.i + 1)
        if m is not None:
            raise Refused(f"'\\{m.group(0)}' (a backslash before a placeholder) has no safe meaning; "
                          "write $${ for a literal ${, or drop the backslash")
        self.emit(self.s[self.i:self.i + 2])

    # -- contexts ------------------------------------------------------------------------
    def command(self, closer: str | None) -> None:
        """Unquoted text up to `closer` (the ")" ending a $( … ), consumed) or the end."""
        CommandReader(self, closer).run()

    def single(self) -> None:
        self.emit("'")
        while self.i < len(self.s):
            if self.s[self.i] == "$" and self.dollar(QUOTED):
                continue
            if self.s[self.i] == "'":
                self.emit("'")
                return
            self.emit(self.s[self.i])

    def double(self) -> None:
        self.emit('"')
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "$" and self.dollar(DOUBLE):
                continue
            if c == "\\":
                if self.s[self.i + 1:self.i + 2] in ('$', '`', '"', "\\", "\n"):
                    self.escaped()
                else:
                    self.emit(c)
            elif c == '"':
                self.emit(c)
                return
            elif not self.substitution(in_dq=True):
                self.emit(c)

    def ansi_c(self) -> None:
        """$'…': backslash escapes inside; no placeholder may go there."""
        self.emit("$'")
        saved, self.forbid = self.forbid, "inside $'…'"
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "$" and self.dollar(QUOTED):
                continue
            if c == "\\":
                self.emit(self.s[self.i:self.i + 2])
            elif c == "'":
                self.emit(c)
                break
            else:
                self.emit(c)
        self.forbid = saved

    def substitution(self, in_dq: bool) -> bool:
        """$( … ), $(( … )), $[ … ] or a backtick substitution at i; False when none is."""
        s, i = self.s, self.i
        if s.startswith("$((", i):
            self.emit("$((")
            self.arithmetic("))")
        elif s.startswith("$(", i):
            self.emit("$(")
            self.command(")")
        elif s.startswith("$[", i):
            self.emit("$[")
            self.arithmetic("]")
        elif s[i] == "`":
            self.backtick(in_dq)
        else:
            return False
        return True

    def backtick(self, in_dq: bool) -> None:
        """`…`: the body is unescaped (\\$ \\` \\\\, and \\" inside "…"), rendered as a command of
        its own and escaped back; a body without placeholders is kept as written."""
        s, j = self.s, self.i + 1
        while j < len(s) and s[j] != "`":
            j += 2 if s[j] == "\\" else 1
        body = s[self.i + 1:min(j, len(s))]
        inner = backtick_unescape(body, in_dq)
        sub = Scanner(inner, self.place, self.arith, self.forbid)
        rendered = sub.render()
        self.out.append("`" + (body if rendered == inner else backtick_escape(rendered, in_dq)))
        self.i = j
        if j < len(s):
            self.emit("`")

    def arithmetic(self, closer: str) -> None:
        """Text bash evaluates as arithmetic, up to `closer` ("))" or "]"): numbers only."""
        self.arith += 1
        depth = 0
        opener = "(" if closer == "))" else "["
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "$" and self.dollar(UNQUOTED):
                continue
            if c == "\\":
                self.escaped()
            elif c == "'":
                self.single()
            elif c == '"':
                self.double()
            elif self.substitution(in_dq=False):
                pass
            elif c == opener:
                depth += 1
                self.emit(c)
            elif c == closer[0] and depth == 0:
                self.emit(closer if self.s.startswith(closer, self.i) else c)
                break
            elif c == closer[0]:
                depth -= 1
                self.emit(c)
            else:
                self.emit(c)
        self.arith -= 1

    def _shell_expansion(self, in_dq: bool) -> None:
        """The body of a shell `${…}` (written `$${…}`), up to its `}`: no placeholders."""
        saved, self.forbid = self.forbid, "inside a shell ${…} expansion"
        depth = 0
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "$" and self.dollar(DOUBLE if in_dq else UNQUOTED):
                continue
            if c == "\\":
                self.emit(self.s[self.i:self.i + 2])
            elif c == "'" and not in_dq:
                self.single()
            elif c == '"':
                self.double()
            elif self.substitution(in_dq):
                pass
            elif c == "{":
                depth += 1
                self.emit(c)
            elif c == "}":
                self.emit(c)
                if depth == 0:
                    break
                depth -= 1
            else:
                self.emit(c)
        self.forbid = saved

    def heredoc_bodies(self, pending: list[tuple[str, bool, bool]]) -> None:
        """Here-document bodies, line by line after the newline that ends their command. With
        an unquoted delimiter a backslash-newline joins two lines before the delimiter is
        looked for (as bash does), so `x\\` above `EOF` does not end the body."""
        saved, self.forbid = self.forbid, "inside a here-document"
        for heredoc in pending:
            quoted = heredoc[2]
            while self.i < len(self.s):
                end = self._line_end(joins=not quoted)
                line = self.s[self.i:end]
                if _ends(line, heredoc):
                    self.emit(line)
                    break
                start = len(self.out)
                while self.i < end:
                    if self.s[self.i] == "$" and self.dollar(UNQUOTED, expands=False):
                        continue
                    self.emit(self.s[self.i])
                rendered = "".join(self.out[start:])
                if _ends(rendered, heredoc):
                    raise Refused(f"a value makes the line {line!r} of a here-document read {rendered!r}, "
                                  "its delimiter, which would end it early")
        self.forbid = saved

    def _line_end(self, joins: bool) -> int:
        """Where the line at i ends (after its newline), continued past backslash-newlines."""
        j = self.i
        while True:
            nl = self.s.find("\n", j)
            if nl < 0:
                return len(self.s)
            backslashes = (nl - j) - len(self.s[j:nl].rstrip("\\"))
            if not (joins and backslashes % 2):
                return nl + 1
            j = nl + 1


def _joined(text: str) -> str:
    """`text` with its backslash-newlines removed (an escaped backslash stays)."""
    return re.sub(r"\\(.)", lambda m: "" if m.group(1) == "\n" else m.group(0), text, flags=re.DOTALL)


def _ends(text: str, heredoc: tuple[str, bool, bool]) -> bool:
    """Whether the (logical) line `text` is the delimiter of `heredoc` (delimiter, <<-, quoted)."""
    delimiter, strip_tabs, quoted = heredoc
    line = (text if quoted else _joined(text)).rstrip("\n")
    return (line.lstrip("\t") if strip_tabs else line) == delimiter
