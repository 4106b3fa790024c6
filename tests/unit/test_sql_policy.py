"""The parse-tree policy (query.sql.policy) on hand-built trees shaped like ClickHouse's parseQueryToJSON output."""

from __future__ import annotations

from typing import Any

import pytest

from query.sql import allowlist
from query.sql.errors import SqlRefused
from query.sql.policy import Policy, check_ast, function_allowed, sourceless

POLICY = Policy(views=frozenset({"metrics", "runs", "params"}), databases=frozenset({"runledger"}))
Node = dict[str, Any]


def ident(name: str) -> Node:
    node: Node = {"type": "Identifier", "name": name}
    if "." in name:
        node["name_parts"] = name.split(".")
    return node


def table(name: str, alias: str | None = None) -> Node:
    node: Node = {"type": "TableIdentifier", "name": name}
    if "." in name:
        node["name_parts"] = name.split(".")
    if alias:
        node["alias"] = alias
    return node


def lit(value: Any) -> Node:
    return {"type": "Literal", "value": {"field_type": "UInt64", "value": value}}


def exprs(*children: Node) -> Node:
    return {"type": "ExpressionList", "children": list(children)}


def fn(name: str, *args: Node, **extra: Any) -> Node:
    return {"type": "Function", "name": name, "arguments": exprs(*args), **extra}


def from_(*sources: Node) -> Node:
    elements = []
    for src in sources:
        if src["type"] == "TableIdentifier":
            te: Node = {"type": "TableExpression", "database_and_table_name": src}
        elif src["type"] == "Function":
            te = {"type": "TableExpression", "table_function": src}
        else:
            te = {"type": "TableExpression", "subquery": src}
        elements.append({"type": "TablesInSelectQueryElement", "table_expression": te})
    return {"type": "TablesInSelectQuery", "children": elements}


def select_query(*columns: Node, tables: Node | None = None, ctes: dict[str, Node] | None = None,
                 **clauses: Node) -> Node:
    q: Node = {"type": "SelectQuery", "select": exprs(*columns), **clauses}
    if tables is not None:
        q["tables"] = tables
    if ctes:
        q["with"] = exprs(*({"type": "WithElement", "name": n, "subquery": subquery(s)} for n, s in ctes.items()))
    return q


def union(*selects: Node, **root: Any) -> Node:
    return {"type": "SelectWithUnionQuery", "union_mode": "UNION_DEFAULT", "list_of_selects": exprs(*selects),
            "is_outfile_append": False, "is_outfile_truncate": False, "is_into_outfile_with_stdout": False, **root}


def subquery(tree: Node) -> Node:
    return {"type": "Subquery", "children": [tree]}


def q(*columns: Node, **kw: Any) -> Node:
    return union(select_query(*columns, **kw))


ALLOWED = {
    "a view": q(ident("run_id"), tables=from_(table("metrics"))),
    "a view qualified by the database": q(ident("key"), tables=from_(table("runledger.metrics", "m"))),
    "a join of views": q({"type": "Asterisk"}, tables={"type": "TablesInSelectQuery", "children": [
        {"type": "TablesInSelectQueryElement", "table_expression":
            {"type": "TableExpression", "database_and_table_name": table("runs", "r")}},
        {"type": "TablesInSelectQueryElement", "table_join": {"type": "TableJoin", "kind": "INNER",
                                                              "on_expression": fn("equals", ident("r.run_id"),
                                                                                  ident("p.run_id"))},
         "table_expression": {"type": "TableExpression", "database_and_table_name": table("params", "p")}}]}),
    "a CTE named like a raw table, used in its scope": q(
        {"type": "Asterisk"}, tables=from_(table("events")), ctes={"events": q(lit(1))}),
    "a CTE seen from a nested subquery": q(
        {"type": "Asterisk"}, ctes={"x": q(lit(1))},
        tables=from_(subquery(q({"type": "Asterisk"}, tables=from_(table("x")))))),
    "IN a view": q(lit(1), tables=from_(table("metrics")), where=fn("in", ident("run_id"), ident("runs"))),
    "IN a subquery": q(lit(1), tables=from_(table("metrics")),
                       where=fn("notIn", ident("run_id"), subquery(q(ident("run_id"), tables=from_(table("runs")))))),
    "aggregates, combinators, window functions, lambdas": q(
        fn("avgIf", ident("value"), fn("greater", ident("step"), lit(1))),
        fn("quantile", ident("value"), parameters=exprs(lit(0.5))),
        fn("uniqExactStateIf", ident("step"), lit(1)),
        fn("COUNT"), fn("Sum", ident("value")),
        fn("lagInFrame", ident("value"), is_window_function=True,
           window_definition={"type": "WindowDefinition", "order_by": exprs(
               {"type": "OrderByElement", "direction": 1, "expression": ident("step")})}),
        fn("arrayMap", fn("lambda", fn("tuple", ident("x")), fn("plus", ident("x"), lit(1))), ident("arr")),
        tables=from_(table("metrics"))),
    "a literal whose value looks like a node": q({"type": "Literal", "value": {"type": "TableIdentifier", "name": "events"}}),
    "APPLY of an allowed function": q({"type": "Asterisk", "transformers": {"type": "ColumnsTransformerList", "children": [
        {"type": "ColumnsApplyTransformer", "func_name": "toString"}]}}, tables=from_(table("metrics"))),
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_allows(name: str) -> None:
    check_ast(ALLOWED[name], POLICY)


REFUSED = {
    "a raw table": (q({"type": "Asterisk"}, tables=from_(table("metric_points"))), "'metric_points' is not reachable"),
    "the events log": (q({"type": "Asterisk"}, tables=from_(table("events"))), "'events' is not reachable"),
    "dead letters in a join": (q({"type": "Asterisk"}, tables=from_(table("metrics"), table("dead_letter"))),
                               "'dead_letter'"),
    "another database": (q({"type": "Asterisk"}, tables=from_(table("default.metrics"))), "'default.metrics'"),
    "a raw table qualified by the database": (q({"type": "Asterisk"}, tables=from_(table("runledger.events"))),
                                              "'runledger.events'"),
    "system tables": (q({"type": "Asterisk"}, tables=from_(table("system.tables"))), "system tables"),
    "INFORMATION_SCHEMA": (q({"type": "Asterisk"}, tables=from_(table("INFORMATION_SCHEMA.TABLES"))),
                           "system tables"),
    "three-part names": (q({"type": "Asterisk"}, tables=from_(table("a.b.c"))), "'a.b.c'"),
    "a raw table in a subquery": (q(lit(1), tables=from_(table("metrics")), where=fn(
        "in", ident("run_id"), subquery(q(ident("entity"), tables=from_(table("events")))))), "'events'"),
    "a raw table on the right of IN": (q(lit(1), tables=from_(table("metrics")),
                                         where=fn("globalNotIn", ident("run_id"), ident("events"))), "'events'"),
    "system on the right of IN": (q(lit(1), tables=from_(table("metrics")),
                                    where=fn("in", ident("key"), ident("system.tables"))), "system tables"),
    "a CTE name used outside its scope": (q(
        {"type": "Asterisk"},
        tables=from_(subquery(q({"type": "Asterisk"}, tables=from_(table("events")), ctes={"events": q(lit(1))})),
                     table("events"))), "'events' is not reachable"),
    "a table function": (q({"type": "Asterisk"}, tables=from_(fn("file", lit("/etc/passwd")))),
                         "table function file()"),
    "numbers()": (q({"type": "Asterisk"}, tables=from_(fn("numbers", lit(10)))), "table function numbers()"),
    "url() in a join": (q({"type": "Asterisk"}, tables=from_(table("metrics"), fn("url", lit("http://x")))),
                        "table function url()"),
    "the file() function": (q(fn("file", lit("/etc/passwd"))), "function file()"),
    "dictGet": (q(fn("dictGet", lit("d"), lit("a"), lit(1))), "function dictGet()"),
    "joinGet": (q(fn("joinGet", lit("t"), lit("c"), lit(1))), "function joinGet()"),
    "getSetting": (q(fn("getSetting", lit("readonly"))), "function getSetting()"),
    "a forbidden function deep inside a lambda": (q(fn("arrayMap", fn("lambda", fn("tuple", ident("x")),
                                                                      fn("file", ident("x"))), ident("a"))), "file()"),
    "a forbidden function in a window": (q(fn("row_number", is_window_function=True, window_definition={
        "type": "WindowDefinition", "order_by": exprs({"type": "OrderByElement", "expression": fn("hostName")})})),
                                        "hostName()"),
    "a forbidden function under APPLY": (q({"type": "Asterisk", "transformers": {
        "type": "ColumnsTransformerList", "children": [{"type": "ColumnsApplyTransformer", "func_name": "file"}]}}),
                                         "function file()"),
    "an unknown combinator base": (q(fn("fileIf", lit(1), lit(1))), "fileIf()"),
    "SETTINGS in a SELECT": (q(lit(1), settings={"type": "SetQuery", "changes": []}), "SETTINGS"),
    "a SetQuery node": (q(fn("plus", {"type": "SetQuery", "changes": []}, lit(1))), "SETTINGS"),
    "FORMAT": (union(select_query(lit(1)), format_ast=ident("CSV")), "FORMAT"),
    "INTO OUTFILE": (union(select_query(lit(1)), out_file=lit("/tmp/x")), "INTO OUTFILE"),
    "INTO OUTFILE AND STDOUT": (union(select_query(lit(1)), is_into_outfile_with_stdout=True), "INTO OUTFILE"),
    "query parameters": (q({"type": "QueryParameter", "name": "x", "param_type": "String"}), "query parameters"),
    "an unknown node type": (q({"type": "SomethingNew", "children": []}), "unsupported construct in a query: SomethingNew"),
    "an unknown SELECT clause": (q(lit(1), into_table=table("metrics")), "unsupported clause in a SELECT: into_table"),
    "an unknown top-level clause": (union(select_query(lit(1)), partition=lit(1)), "unsupported clause in a query"),
    "an INSERT": ({"type": "InsertQuery", "table": table("metrics")}, "only SELECT queries"),
    "a SET": ({"type": "SetQuery", "changes": []}, "only SELECT queries"),
    "not a tree at all": ([], "only SELECT queries"),  # type: ignore[dict-item]
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refuses_with_a_reason(name: str) -> None:
    tree, reason = REFUSED[name]
    with pytest.raises(SqlRefused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_ast(tree, POLICY)


def test_deep_trees_do_not_exhaust_the_stack() -> None:
    expr = lit(1)
    for _ in range(20_000):
        expr = fn("negate", expr)
    check_ast(q(expr), POLICY)
    expr = fn("file", lit("/etc/passwd"))
    for _ in range(20_000):
        expr = fn("abs", expr)
    with pytest.raises(SqlRefused, match="file"):
        check_ast(q(expr), POLICY)


@pytest.mark.parametrize("name", [
    "count", "COUNT", "sum", "avg", "min", "max", "argMin", "argMax", "corr", "quantile", "quantileExact",
    "row_number", "rank", "dense_rank", "lagInFrame", "leadInFrame", "first_value", "exponentialMovingAverage",
    "avgIf", "countIf", "sumArray", "uniqExactState", "argMaxMerge", "quantilesIfOrNull", "groupArray",
    "if", "multiIf", "caseWithExpression", "lambda", "exists", "in", "notIn", "plus", "tuple", "tupleElement",
    "arrayElement", "arrayJoin", "CAST", "toDateTime64", "toStartOfInterval", "dateDiff", "startsWith", "like",
    "JSONExtract", "JSONExtractString", "mapFromArrays", "log10", "toFloat64OrNull", "runningDifference",
    "round", "coalesce", "concat", "replaceRegexpAll", "cityHash64", "range", "now", "toUnixTimestamp64Milli",
])
def test_useful_functions_are_allowed(name: str) -> None:
    assert function_allowed(name)


@pytest.mark.parametrize("name", [
    "file", "url", "s3", "remote", "dictGet", "dictGetString", "dictGetOrDefault", "joinGet", "joinGetOrNull",
    "getSetting", "getSettingOrDefault", "getServerSetting", "getMergeTreeSetting", "getMacro", "hostName",
    "FQDN", "version", "uptime", "currentUser", "currentDatabase", "currentQueryID", "serverUUID", "tcpPort",
    "filesystemAvailable", "hasColumnInTable", "sleep", "sleepEachRow", "aiGenerate", "aiClassify",
    "catboostEvaluate", "naiveBayesClassifier", "evalMLMethod", "encrypt", "decrypt", "addressToSymbol",
    "demangle", "logTrace", "globalVariable", "generateSerialID", "getClientHTTPHeader", "formatRow",
    "chdb", "regionToName", "transactionID", "zookeeperSessionUptime", "_CAST", "__getScalar", "fileIf",
    "hostNameState", "dictGetIf",
])
def test_functions_that_reach_outside_are_not(name: str) -> None:
    assert not function_allowed(name)


def test_allowlist_blocks_are_disjoint_from_forbidden_categories() -> None:
    names = allowlist.FUNCTIONS | allowlist.AGGREGATES
    assert len(names) > 1000
    assert not {n for n in names if n.startswith(("dictGet", "ai", "filesystem", "getSetting", "region"))}
    assert {n.lower() for n in allowlist.CASE_INSENSITIVE} == allowlist.CASE_INSENSITIVE


def test_sourceless_queries_are_spotted_for_the_row_limit() -> None:
    assert sourceless(q(fn("arrayJoin", fn("range", lit(9)))))
    assert sourceless(union(select_query(ident("x"), tables=from_(table("metrics"))), select_query(lit(1))))
    assert sourceless(union(union(select_query(lit(1)))))
    assert not sourceless(q(ident("x"), tables=from_(table("metrics"))))
    assert not sourceless(q(ident("x"), tables=from_(subquery(q(fn("arrayJoin", fn("range", lit(9))))))))
