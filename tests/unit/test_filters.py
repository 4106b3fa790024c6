"""MLflow's search grammar: what parses, to what, and what is refused with a reason."""

from __future__ import annotations

import pytest

from query.filters import Clause, FilterError, OrderBy, parse_filter, parse_order_by
from query.mlflow_api.common_registry import VERSION_ATTRIBUTES
from query.reads import search_sql


@pytest.mark.parametrize(
    "text, expected",
    [
        ("metrics.loss < 0.5", [Clause("metric", "loss", "<", 0.5)]),
        ("metric.acc >= 1e-3", [Clause("metric", "acc", ">=", 0.001)]),
        ("params.lr = '0.01'", [Clause("param", "lr", "=", "0.01")]),
        ('tags.team != "nlp"', [Clause("tag", "team", "!=", "nlp")]),
        ("tags.`mlflow.prompt.is_prompt` != 'true'", [Clause("tag", "mlflow.prompt.is_prompt", "!=", "true")]),
        ("metrics.`train/loss` > 2", [Clause("metric", "train/loss", ">", 2.0)]),
        ("metrics.eval.loss <= 1", [Clause("metric", "eval.loss", "<=", 1.0)]),
        ("attributes.status = 'FINISHED'", [Clause("attribute", "status", "=", "FINISHED")]),
        ("attribute.run_name LIKE 'lora%'", [Clause("attribute", "run_name", "LIKE", "lora%")]),
        ("run_name ILIKE '%LoRa%'", [Clause("attribute", "run_name", "ILIKE", "%LoRa%")]),
        ("attributes.run_id IN ('a', 'b')", [Clause("attribute", "run_id", "IN", ("a", "b"))]),
        ("tags.x NOT IN ('a')", [Clause("tag", "x", "NOT IN", ("a",))]),
        ("params.opt IS NULL", [Clause("param", "opt", "IS NULL", None)]),
        ("tags.opt IS NOT NULL", [Clause("tag", "opt", "IS NOT NULL", None)]),
        ("attributes.start_time > 1700000000000", [Clause("attribute", "start_time", ">", 1.7e12)]),
        ("params.name = 'it''s'", [Clause("param", "name", "=", "it's")]),
        (
            "metrics.loss < 0.5 and params.lr = '0.01' AND tags.team LIKE 'n%'",
            [Clause("metric", "loss", "<", 0.5), Clause("param", "lr", "=", "0.01"), Clause("tag", "team", "LIKE", "n%")],
        ),
        ("", []),
        (None, []),
    ],
)
def test_parses(text: str | None, expected: list[Clause]) -> None:
    assert list(parse_filter(text)) == expected


@pytest.mark.parametrize(
    "text, reason",
    [
        ("metrics.loss < 'a'", "compares with numbers"),
        ("params.lr < '1'", "not valid for param"),
        ("params.lr = 0.1", "quoted strings"),
        ("metrics.loss LIKE 'a%'", "not valid for metric"),
        ("metrics.loss < 1 OR metrics.loss > 2", "OR is not supported"),
        ("metrics.loss <", "unexpected end"),
        ("foo.bar = 'x'", "Invalid attribute key"),
        ("attributes.nope = 'x'", "Invalid attribute key"),
        ("metrics.loss ~ 1", "unexpected character"),
        ("tags.a IN 'x'", "parenthesised"),
        ("tags.a IN ('x' 'y')", "expected ','"),
        ("metrics.loss = 1 metrics.acc = 2", "expected AND"),
        ("tags.a IS 'x'", "expected NULL"),
        ("tags.a BETWEEN 1", "unknown comparator"),
    ],
)
def test_refuses_with_reason(text: str, reason: str) -> None:
    with pytest.raises(FilterError, match=reason):
        parse_filter(text)


def test_order_by() -> None:
    assert parse_order_by(["metrics.loss DESC", "attributes.start_time", "params.lr ASC", ""]) == (
        OrderBy("metric", "loss", False), OrderBy("attribute", "start_time", True), OrderBy("param", "lr", True))
    with pytest.raises(FilterError):
        parse_order_by(["metrics.loss SIDEWAYS"])


def test_search_sql_binds_every_user_value() -> None:
    clauses = parse_filter("metrics.loss < 0.5 and tags.team = 'x''; DROP TABLE runs' and attributes.run_id IN ('a')")
    sql, params = search_sql(["1"], clauses, parse_order_by(["metrics.loss DESC"]), "ACTIVE_ONLY", 10, 0)
    assert "DROP" not in sql and "x'; DROP TABLE runs" in params.values()
    assert params["k0"] == "loss" and params["v0"] == 0.5 and params["ok0"] == "loss"
    assert "ORDER BY j0.o0 DESC NULLS LAST, r.start_time DESC, r.run_id ASC" in sql


def test_model_version_numbers_compare_with_numbers_or_strings() -> None:
    for text in ("version_number = 1", "version_number = '1'", "version_number >= 2"):
        assert parse_filter(text, VERSION_ATTRIBUTES)
