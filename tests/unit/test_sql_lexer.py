"""The engine-free first check of user SQL (query.sql.lexer): one SELECT, nothing around it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from query.sql.errors import SqlRefused
from query.sql.lexer import MAX_SQL_CHARS, Token, precheck, tokenize


@pytest.mark.parametrize("sql, expected", [
    ("SELECT 1", "SELECT 1"),
    ("  select 1 ;  ", "  select 1 "),
    ("SELECT 1; -- trailing comment", "SELECT 1"),
    ("WITH x AS (SELECT 1 AS a) SELECT a FROM x", None),
    ("(SELECT 1) UNION ALL (SELECT 2)", None),
    ("SELECT ';' AS s", None),
    ("SELECT 'it''s; fine' AS s", None),
    ("SELECT 'a\\';b' AS s", None),
    ("SELECT 1 -- ; DROP TABLE metric_points", None),
    ("SELECT 1 /* ; DROP TABLE metric_points */", None),
    ("SELECT 1 # ; comment", None),
    ("SELECT `a;b` FROM metrics", None),
    ('SELECT "x; y" FROM metrics', None),
    ("SELECT $$;$$ AS s", None),
    ("SELECT $tag$ ; $tag$ AS s", None),
    ("SELECT format('{} {}', 1, 2)", None),
    ("SELECT 1 AS format FROM metrics", None),
    ("SELECT key FROM metrics AS format", None),
    ("SELECT settings_like_column FROM metrics", None),
])
def test_accepts_one_select(sql: str, expected: str | None) -> None:
    assert precheck(sql) == (sql if expected is None else expected)


@pytest.mark.parametrize("sql, reason", [
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("-- nothing but a comment", "empty"),
    (";", "empty"),
    ("INSERT INTO metrics VALUES (1)", "only SELECT"),
    ("insert into metric_points select * from metric_points", "only SELECT"),
    ("ALTER TABLE metric_points DELETE WHERE 1", "only SELECT"),
    ("CREATE TABLE x (a Int8) ENGINE = Memory", "only SELECT"),
    ("DROP TABLE metric_points", "only SELECT"),
    ("ATTACH TABLE x", "only SELECT"),
    ("DETACH TABLE metric_points", "only SELECT"),
    ("KILL QUERY WHERE 1", "only SELECT"),
    ("OPTIMIZE TABLE metric_points FINAL", "only SELECT"),
    ("SYSTEM SHUTDOWN", "only SELECT"),
    ("SET readonly = 0", "only SELECT"),
    ("USE system", "only SELECT"),
    ("GRANT ALL ON *.* TO default", "only SELECT"),
    ("TRUNCATE TABLE metric_points", "only SELECT"),
    ("SHOW TABLES", "only SELECT"),
    ("DESCRIBE TABLE events", "only SELECT"),
    ("EXPLAIN SELECT 1", "only SELECT"),
    ("/* hidden */ DROP TABLE metric_points", "only SELECT"),
    ("(DROP TABLE metric_points)", "only SELECT"),
    ("SELECT 1; SELECT 2", "one statement"),
    ("SELECT 1; DROP TABLE metric_points", "one statement"),
    ("SELECT 1;;", "one statement"),
    ("SELECT 1; /* c */ ;", "one statement"),
    ("SELECT 1 SETTINGS readonly = 0", "SETTINGS"),
    ("SELECT * FROM (SELECT 1 settings max_threads = 1)", "SETTINGS"),
    ("SELECT 1 INTO OUTFILE '/tmp/x'", "INTO"),
    ("SELECT 1 FORMAT CSV", "FORMAT"),
    ("SELECT 1 FORMAT `JSONEachRow`", "FORMAT"),
    ("SELECT 1 FORMAT CSV;", "FORMAT"),
    ("SELECT 1\x00", "control character"),
    ("SELECT 1 -- \x1b[2J", "control character"),
    ("SELECT 'unterminated", "unterminated string"),
    ("SELECT `unterminated", "unterminated quoted identifier"),
    ("SELECT 1 /* unterminated", "unterminated /\\* comment"),
    ("SELECT $x$ unterminated", "unterminated heredoc"),
    ("SELECT 1 /* /* */ ; SELECT 2 */", "nested"),
])
def test_refuses_with_a_reason(sql: str, reason: str) -> None:
    with pytest.raises(SqlRefused, match=reason) as err:
        precheck(sql)
    assert err.value.status == 400 and err.value.code == "SQL_REFUSED"


def test_refuses_overlong_sql() -> None:
    with pytest.raises(SqlRefused, match=f"limit is {MAX_SQL_CHARS}"):
        precheck("SELECT 1" + " " * MAX_SQL_CHARS)
    assert precheck("SELECT 1 ", max_chars=9) == "SELECT 1 "


def test_tokens_skip_comments_and_keep_literals_whole() -> None:
    tokens = tokenize("select a, 'x;y' /* c */ FROM `t t` -- end\n WHERE b=1.5e3#x")
    assert [(t.kind, t.text) for t in tokens] == [
        ("word", "SELECT"), ("word", "A"), ("punct", ","), ("string", "'x;y'"), ("word", "FROM"),
        ("quoted", "`t t`"), ("word", "WHERE"), ("word", "B"), ("punct", "="), ("number", "1.5e3"),
        ("punct", "#"), ("word", "X"),
    ]
    assert tokens[3] == Token("string", "'x;y'", 10)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from(list("SELECT 1;'\"`$/*-#\n()xFORMATSETINGS\\")), max_size=60))
def test_never_fails_with_anything_but_a_refusal(sql: str) -> None:
    try:
        out = precheck(sql)
    except SqlRefused:
        return
    assert ";" not in [t.text for t in tokenize(out) if t.kind == "semicolon"]
