"""Unquoted bash text, read as bash reads it: words, comments, operators, here-document
operators and the keywords that change how the text after them is read (part of shellctx)."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .shellquote import UNQUOTED

if TYPE_CHECKING:
    from .shellctx import Scanner

_NAME_SUBSCRIPT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[")
_BRACKET = re.compile(r"\[")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[.*\])?\+?=", re.DOTALL)
_ARITH_TEST = re.compile(r"\s-(?:eq|ne|lt|le|gt|ge)\s")
_BREAK = " \t\n;&|()<>"  # a `#` after one of these starts a comment
_OPENS_COMMAND = {"then", "do", "else", "elif", "if", "while", "until", "!", "{", "}", "time"}
_DECLARE = {"declare", "local", "export", "readonly", "typeset"}


class CommandReader:
    """Unquoted shell text: words, comments, operators, and the keywords that change how
    the text after them is read (case … esac, ((, let, [[, here-documents)."""

    def __init__(self, sc: Scanner, closer: str | None):
        self.sc, self.closer = sc, closer
        self.depth = 0  # ( … ) opened inside a $( … )
        self.word = ""  # the word so far ("\0" marks quoted parts: never a keyword)
        self.word_start = True
        self.cmd_pos = True  # the next word is a command name (or a keyword)
        self.cases: list[str] = []  # "head" (before `in`), "pattern", "body"
        self.heredocs: list[tuple[str, bool, bool]] = []  # delimiter, <<-, quoted
        self.let = self.declare = False
        self.dbracket = 0  # 1: inside [[ … ]] that compares numbers (arithmetic)
        self.last = ""  # the word before this one
        self.compound: int | None = None  # the depth of a `name=( … )` array being read

    def run(self) -> None:
        sc = self.sc
        while sc.i < len(sc.s):
            c = sc.s[sc.i]
            if c == "\\" and sc.s[sc.i + 1:sc.i + 2] == "\n":
                sc.emit("\\\n")  # a line continuation joins the word
                continue
            if self.word_start:
                self.word_start = False
                if c == "#":
                    self.comment()
                    self.word_start = True
                    continue
                if (self.cmd_pos or self.last == "for") and sc.s.startswith("((", sc.i):
                    sc.emit("((")
                    sc.arithmetic("))")
                    self.word = "\0"
                    continue
                m = _NAME_SUBSCRIPT.match(sc.s, sc.i)
                if m is None and c == "[" and self.compound is not None:
                    m = _BRACKET.match(sc.s, sc.i)  # `[i]=v` in an array's ( … )
                if m is not None and (self.cmd_pos or self.declare or self.compound is not None):
                    sc.emit(m.group(0))
                    sc.arithmetic("]")  # bash evaluates an indexed array's subscript
                    self.word += m.group(0) + "0]"  # reads as `name[0]`: an assignment still
                    continue
            if c in " \t\n;&|()<>":
                if self.operator(c):
                    return
                continue
            self.word += c if c not in "'\"$`\\" else "\0"
            if c == "$" and sc.dollar(UNQUOTED):
                continue
            if c == "\\":
                sc.escaped()
            elif c == "'":
                sc.single()
            elif c == '"':
                sc.double()
            elif c == "$" and sc.s.startswith("$'", sc.i):
                sc.ansi_c()
            elif c == "$" and sc.s.startswith('$"', sc.i):
                sc.emit("$")
                sc.double()
            elif not sc.substitution(in_dq=False):
                sc.emit(c)
        self.end_word()
        self.end_command()
        if self.dbracket:  # a [[ never closed
            sc.arith -= 1

    def operator(self, c: str) -> bool:
        """A blank or a metacharacter at i; True when it is the closer (consumed)."""
        sc = self.sc
        word = self.word
        self.end_word()
        self.word_start = True
        if c in " \t":
            sc.emit(c)
            return False
        if c == "\n":
            sc.emit(c)
            self.end_command()
            if self.heredocs:
                pending, self.heredocs = self.heredocs, []
                sc.heredoc_bodies(pending)
            return False
        if sc.s.startswith("<<<", sc.i):
            sc.emit("<<<")  # a here-string: one word follows
            return False
        if sc.s.startswith("<<", sc.i):
            self.heredoc_operator()
            return False
        if c == "(":
            sc.emit(c)
            if self.cases and self.cases[-1] == "pattern":
                return False  # the optional "(" before a case pattern
            if word.endswith("=") and self.compound is None:
                self.compound = self.depth
            self.depth += 1
            self.cmd_pos = True
            return False
        if c == ")" and self.compound is not None and self.depth == self.compound + 1:
            self.compound = None
        if c == ")":
            if self.cases and self.cases[-1] == "pattern":
                self.cases[-1] = "body"
                sc.emit(c)
                self.cmd_pos = True
                return False
            if self.depth == 0 and self.closer == ")":
                self.end_command()
                sc.emit(c)
                return True
            self.depth = max(0, self.depth - 1)
            sc.emit(c)
            return False
        if c == ";" and self.cases and self.cases[-1] == "body" and sc.s[sc.i + 1:sc.i + 2] in (";", "&"):
            self.cases[-1] = "pattern"
            sc.emit(";;&" if sc.s.startswith(";;&", sc.i) else sc.s[sc.i:sc.i + 2])
            self.end_command()
            return False
        sc.emit(c)
        if c in ";&|":
            self.end_command()
        return False

    def end_command(self) -> None:
        if self.let:
            self.sc.arith -= 1
        self.let = self.declare = False
        self.cmd_pos = True

    def end_word(self) -> None:
        w, self.word = self.word, ""
        if not w:
            return
        self.last = w
        cases = self.cases
        if cases and cases[-1] == "head":
            if w == "in":
                cases[-1] = "pattern"
            return
        if cases and cases[-1] == "pattern":
            if w == "esac":
                cases.pop()
            return
        if w == "]]" and self.dbracket:
            self.dbracket = 0
            self.sc.arith -= 1
        if not self.cmd_pos:
            return
        if w in _OPENS_COMMAND:
            return
        if _ASSIGNMENT.match(w):
            return  # assignments come before the command name
        self.cmd_pos = False
        if w == "case":
            cases.append("head")
        elif w == "esac" and cases:
            cases.pop()
        elif w == "let":
            self.let = True
            self.sc.arith += 1
        elif w in _DECLARE:
            self.declare = True
        elif w == "[[":
            self.double_bracket()

    def double_bracket(self) -> None:
        """[[ … ]] evaluates both sides of -eq/-lt/… as arithmetic: numbers only in it."""
        sc = self.sc
        end = re.compile(r"(?:^|\s)\]\](?:\s|;|&|\||\)|$)").search(sc.s, sc.i)
        region = sc.s[sc.i:end.end() if end else len(sc.s)]
        if _ARITH_TEST.search(" " + region + " "):
            self.dbracket = 1
            sc.arith += 1

    def comment(self) -> None:
        """`#` to the end of the line; a placeholder there is rendered as unquoted."""
        sc = self.sc
        while sc.i < len(sc.s) and sc.s[sc.i] != "\n":
            if sc.s[sc.i] == "$" and sc.dollar(UNQUOTED, expands=False):
                continue
            sc.emit(sc.s[sc.i])

    def heredoc_operator(self) -> None:
        """`<<` or `<<-` and the delimiter word; the body is read after the next newline."""
        sc = self.sc
        strip = sc.s.startswith("<<-", sc.i)
        sc.emit("<<-" if strip else "<<")
        while sc.i < len(sc.s) and sc.s[sc.i] in " \t":
            sc.emit(sc.s[sc.i])
        saved, sc.forbid = sc.forbid, "in a here-document's delimiter"
        delimiter, quoted = [], False
        while sc.i < len(sc.s) and sc.s[sc.i] not in _BREAK:
            c = sc.s[sc.i]
            if c == "$" and sc.dollar(UNQUOTED, expands=False):
                delimiter.append("${")
                continue
            if c in "'\"\\":
                quoted = True
            if c in "'\"":
                close = sc.s.find(c, sc.i + 1)
                close = len(sc.s) if close < 0 else close
                delimiter.append(sc.s[sc.i + 1:close])
                sc.emit(sc.s[sc.i:close + 1])
            elif c == "\\":
                delimiter.append(sc.s[sc.i + 1:sc.i + 2])
                sc.emit(sc.s[sc.i:sc.i + 2])
            else:
                delimiter.append(c)
                sc.emit(c)
        sc.forbid = saved
        if delimiter:
            self.heredocs.append(("".join(delimiter), strip, quoted))
        self.word_start = True
