"""A substituted param is exactly its value in every quoting context, and nothing else runs.

Each example interpolates a random string (quotes, `$`, backticks, backslashes, newlines,
globs, comment signs, command separators, and whole attack fragments) into a command, runs
it with the real `bash -c` in a scratch folder, and checks that the output is exactly the
value (printf, so no echo option or escape handling gets in the way) and that the canary
file the attack fragments would create does not exist.
"""
from __future__ import annotations

import os
import random
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipetool.spec.interpolate import interpolate
from pipetool.spec.shellquote import in_context, quote_word

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FRAGMENTS = ["'", '"', "$", "`", "\\", "\n", "*", "?", "[a]", "#", " # ", ";", "&", "|", "(", ")", "{", "}",
             "<", ">", "~", "!", "-n", "-e", "%s", "\t", "\r", "$(touch CANARY)", "`touch CANARY`",
             "'; touch CANARY; '", '"; touch CANARY; "', "\ntouch CANARY\n", "${HOME}", "$HOME", "EOF", "é", "a"]
values = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=8).map("".join),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20),
)

# (template, expected stdout for the value)
FORMS = {
    "unquoted": ("printf %s ${s}", lambda v: v),
    "single": ("printf %s '${s}'", lambda v: v),
    "double": ('printf %s "${s}"', lambda v: v),
    "inside double": ('printf %s "pre${s}post"', lambda v: f"pre{v}post"),
    "inside single": ("printf %s 'pre${s}post'", lambda v: f"pre{v}post"),
    "joined unquoted": ("printf %s pre${s}post", lambda v: f"pre{v}post"),
    "echo unquoted": ("echo ${s}", None),
    "echo single": ("echo '${s}'", None),
    "echo double": ('echo "${s}"', None),
    # command substitution drops trailing newlines: that is bash, not the value
    "in $( ) in double": ('printf %s "$(printf %s "${s}")"', lambda v: v.rstrip("\n")),
    "backticks in double": ('printf %s "`printf %s \\"${s}\\"`"', lambda v: v.rstrip("\n")),
    "backticks unquoted": ("printf %s \"`printf %s ${s}`\"", lambda v: v.rstrip("\n")),
    "after a comment line": ("# it's a ${s} comment\nprintf %s ${s} # and ${s}", lambda v: v),
}


def _echo(v: str) -> str:
    """What bash's echo prints for one argument: `-n`, `-e`, `-E` and their mixes are options."""
    if re.fullmatch(r"-[neE]+", v):
        return "" if "n" in v else "\n"
    return v + "\n"


def _run(command: str) -> tuple[str, bool]:
    with tempfile.TemporaryDirectory() as scratch:
        res = subprocess.run(["bash", "-c", command], cwd=scratch, capture_output=True, timeout=60)
        assert res.returncode == 0, (command, res.stderr)
        return res.stdout.decode("utf-8", "surrogateescape"), os.path.exists(os.path.join(scratch, "CANARY"))


@pytest.mark.parametrize("form", sorted(FORMS))
@SETTINGS
@given(value=values)
@example(value="'; touch CANARY; '")
@example(value="$(touch CANARY)")
@example(value="a\ntouch CANARY\n")
def test_the_command_prints_exactly_the_value_and_runs_nothing_else(form, value):
    template, expect = FORMS[form]
    command, used, unknown = interpolate(template, {"s": value})
    assert used == ["s"] and unknown == []
    out, canary = _run(command)
    assert not canary, f"{command!r} ran a command from the value"
    assert out == (expect(value) if expect is not None else _echo(value)), command


@SETTINGS
@given(value=values.filter(lambda v: not re.search(r"[\x00-\x1f\x7f]", v)))
def test_unquoted_rendering_is_unchanged_so_check_fingerprints_are_too(value):
    """Unquoted, a value without control characters renders as it always did (shlex.quote):
    a check command (whose rendered text is in its target's fingerprint) keeps its text."""
    assert interpolate("x ${s} y", {"s": value})[0] == f"x {shlex.quote(value)} y"
    assert quote_word(value) == shlex.quote(value)


@SETTINGS
@given(value=values)
def test_each_rendering_reads_back_as_the_value_through_a_shell_lexer(value):
    """Unquoted and single-quoted renderings without `$'…'` are plain POSIX quoting."""
    for context in ("", "'"):
        text = in_context(value, context)
        if "$'" not in text:
            wrapped = text if context == "" else "'" + text + "'"
            assert shlex.split(wrapped) == [value]


# -- random valid commands: every placeholder, wherever it sits, is exactly the value ---------

def _lit(rng: random.Random, alphabet: str = "abcxyz019_.-/") -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))


def _piece(rng: random.Random, depth: int) -> tuple[str, Callable[[str], str]]:
    """(template text, its value given the param's value) of one piece of a word."""
    kind = rng.choice(["lit", "param", "single", "double", "double", "ansi"])
    if kind == "lit":
        text = _lit(rng)
        return text, lambda v: text
    if kind == "param":
        return "${s}", lambda v: v
    if kind == "ansi":
        return "$'a\\tb'", lambda v: "a\tb"
    parts: list[tuple[str, Callable[[str], str]]] = []
    for _ in range(rng.randint(0, 3)):
        r = rng.random()
        if r < 0.4:
            parts.append(("${s}", lambda v: v))
        elif kind == "double" and r < 0.6 and depth < 2:
            inner, value = _word(rng, depth + 1)
            parts.append(("$(printf %s " + inner + ")", lambda v, value=value: value(v).rstrip("\n")))
        elif kind == "double" and r < 0.7 and depth < 2:
            inner, value = _word(rng, depth + 1)
            parts.append(("$(case a in a) printf %s " + inner + ";; esac)", lambda v, value=value: value(v).rstrip("\n")))
        elif kind == "double" and r < 0.8:
            parts.append(('`printf %s \\"${s}\\"`', lambda v: v.rstrip("\n")))
        else:
            text = _lit(rng, "ab c#;|&()*" + ('"`\\' if kind == "single" else "'"))
            parts.append((text, lambda v, text=text: text))
    quote = "'" if kind == "single" else '"'
    return quote + "".join(t for t, _ in parts) + quote, lambda v: "".join(f(v) for _, f in parts)


def _word(rng: random.Random, depth: int = 0) -> tuple[str, Callable[[str], str]]:
    pieces = [_piece(rng, depth) for _ in range(rng.randint(1, 3))]
    return "".join(t for t, _ in pieces), lambda v: "".join(f(v) for _, f in pieces)


def _command(rng: random.Random, depth: int = 0) -> tuple[str, Callable[[str], str]]:
    """A valid bash command printing `WORD|` per word, nested in bash's compound forms."""
    kind = rng.choice(["simple", "simple", "seq", "and", "brace", "subshell", "if", "for", "assign", "comment",
                       "case", "pipe", "newline", "arith"])
    if kind == "simple" or depth > 2:
        words = [_word(rng) for _ in range(rng.randint(1, 3))]
        return "printf '%s|' " + " ".join(t for t, _ in words), lambda v: "".join(f(v) + "|" for _, f in words)
    a, fa = _command(rng, depth + 1)
    if kind in ("seq", "and", "newline"):
        b, fb = _command(rng, depth + 1)
        return a + {"seq": "; ", "and": " && ", "newline": "\n"}[kind] + b, lambda v: fa(v) + fb(v)
    wrapped = {"brace": "{ %s; }", "subshell": "( %s )", "if": "if true; then %s; fi", "for": "for i in 1; do %s; done",
               "comment": "{ %s # it's ${s} \"(\n}", "case": "case ${s} in *) %s;; esac", "pipe": "%s | cat"}
    if kind in wrapped:
        return wrapped[kind] % a, fa
    if kind == "assign":
        return f'x=$( {a} ); printf %s "$x"', lambda v: fa(v).rstrip("\n")
    return f"printf %s $(( 1 + 2 )); {a}", lambda v: "3" + fa(v)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), value=values)
def test_random_valid_commands_print_exactly_what_they_would_with_the_value_written_in(seed, value):
    template, expect = _command(random.Random(seed))
    command, _, unknown = interpolate(template, {"s": value})
    assert unknown == []
    out, canary = _run(command)
    assert not canary, f"{command!r} ran a command from the value"
    assert out == expect(value), (template, command)
