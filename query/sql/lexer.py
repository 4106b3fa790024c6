"""The first, engine-free check of user SQL: one SELECT statement, nothing around it.

A small scanner that knows ClickHouse's lexical rules for what hides text
from the parser — string literals (``'…'`` with ``\\`` escapes and doubled
quotes), quoted identifiers (`````…````` and ``"…"``), heredocs
(``$tag$…$tag$``) and comments (``--``, ``# ``, ``/* … */``) — so that a
semicolon or keyword inside them is not mistaken for code, and one outside
them is never missed. Where its reading could differ from the engine's
(a comment opened inside a comment, an unterminated literal) it refuses
instead of guessing.

It is the cheap half of the guard: the authoritative check walks the
engine's own parse tree (:mod:`query.sql.policy`). This one gives early,
precise messages for the statement-level rules: a single ``SELECT`` /
``WITH … SELECT``, no ``SETTINGS``, no ``INTO OUTFILE``, no trailing
``FORMAT``, no control characters, bounded length.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import SqlRefused

__all__ = ["MAX_SQL_CHARS", "Token", "precheck", "tokenize"]

MAX_SQL_CHARS = 100_000
"""Longest SQL text accepted, in characters."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9][A-Za-z0-9_.]*")
_HEREDOC = re.compile(r"\$([A-Za-z0-9_]*)\$")
_FIRST_WORDS = {"SELECT", "WITH"}
_FORBIDDEN_WORDS = {
    "SETTINGS": "SETTINGS clauses are not allowed: the server sets the limits",
    "INTO": "INTO OUTFILE (or any INTO) is not allowed: results come back in the HTTP answer",
    "OUTFILE": "INTO OUTFILE is not allowed: results come back in the HTTP answer",
}


class Token(NamedTuple):
    """One lexical token outside strings and comments."""

    kind: str
    """``word`` (bare identifier or keyword), ``quoted`` (identifier in quotes), ``string``,
    ``number``, ``semicolon`` or ``punct`` (any other character)."""
    text: str
    """Upper-cased for words, verbatim otherwise."""
    position: int
    """Offset of the token's first character in the SQL text."""


def _skip_quoted(sql: str, start: int, quote: str) -> int:
    """Index just past the literal opened by ``quote`` at ``start``."""
    i, n = start + 1, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    what = "string literal" if quote == "'" else "quoted identifier"
    raise SqlRefused(f"unterminated {what} starting at position {start}")


def _skip_block_comment(sql: str, start: int) -> int:
    end = sql.find("*/", start + 2)
    if end < 0:
        raise SqlRefused(f"unterminated /* comment starting at position {start}")
    if "/*" in sql[start + 2:end]:
        raise SqlRefused(f"nested /* comments are not allowed (position {start})")
    return end + 2


def tokenize(sql: str) -> list[Token]:
    """The tokens of ``sql`` that are code (comments dropped). Raises SqlRefused on unterminated literals."""
    tokens: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i) or (ch == "#" and (i + 1 == n or sql[i + 1].isspace() or sql[i + 1] == "!")):
            eol = sql.find("\n", i)
            i = n if eol < 0 else eol + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif ch in "'\"`":
            end = _skip_quoted(sql, i, ch)
            tokens.append(Token("string" if ch == "'" else "quoted", sql[i:end], i))
            i = end
        elif ch == "$" and (m := _HEREDOC.match(sql, i)):
            close = sql.find(m.group(0), m.end())
            if close < 0:
                raise SqlRefused(f"unterminated heredoc {m.group(0)} starting at position {i}")
            end = close + len(m.group(0))
            tokens.append(Token("string", sql[i:end], i))
            i = end
        elif m := _WORD.match(sql, i):
            tokens.append(Token("word", m.group(0).upper(), i))
            i = m.end()
        elif m := _NUMBER.match(sql, i):
            tokens.append(Token("number", m.group(0), i))
            i = m.end()
        else:
            tokens.append(Token("semicolon" if ch == ";" else "punct", ch, i))
            i += 1
    return tokens


def precheck(sql: str, *, max_chars: int = MAX_SQL_CHARS) -> str:
    """``sql`` without a trailing semicolon, if it can be one read-only SELECT; else SqlRefused saying why."""
    if len(sql) > max_chars:
        raise SqlRefused(f"SQL is {len(sql)} characters long; the limit is {max_chars}")
    bad = _CONTROL.search(sql)
    if bad:
        raise SqlRefused(f"control character {bad.group(0)!r} at position {bad.start()}")
    tokens = tokenize(sql)
    if not tokens:
        raise SqlRefused("the SQL is empty")
    for k, tok in enumerate(tokens):
        if tok.kind == "semicolon":
            if k != len(tokens) - 1:
                raise SqlRefused(f"only one statement is allowed (';' at position {tok.position})")
            tokens = tokens[:-1]
            sql = sql[:tok.position]
    if not tokens:
        raise SqlRefused("the SQL is empty")
    first = next((t for t in tokens if t.text != "("), tokens[0])
    if first.kind != "word" or first.text not in _FIRST_WORDS:
        raise SqlRefused(f"only SELECT queries (optionally WITH ... SELECT) are allowed, got {first.text[:40]!r}")
    for tok in tokens:
        if tok.kind == "word" and tok.text in _FORBIDDEN_WORDS:
            raise SqlRefused(f"{_FORBIDDEN_WORDS[tok.text]} (position {tok.position})")
    if len(tokens) >= 2 and tokens[-2].kind == "word" and tokens[-2].text == "FORMAT" \
            and tokens[-1].kind in ("word", "quoted"):
        raise SqlRefused('FORMAT clauses are not allowed: choose the format with the request\'s "format" field')
    return sql
