"""The authoritative check: walk the engine's parse tree of the query, allowlists only.

Input is the JSON tree ClickHouse's own parser produces for the query
(``parseQueryToJSON``), so this module never re-implements SQL parsing; it
is pure (no I/O) and unit-tested on hand-built trees. What passes:

* node types from a fixed list (SELECT, UNION / INTERSECT / EXCEPT,
  subqueries, CTEs, joins, ARRAY JOIN, window definitions, column matchers,
  literals, identifiers, functions); any other node is refused;
* table references (``FROM``, ``JOIN``, and the right side of ``IN``) that
  name a documented view — bare, or qualified by an accepted database — or a
  CTE visible at that point of the query;
* functions on the allowlist of :mod:`query.sql.allowlist` (aggregate
  combinators included);

and what is refused, each with its own message: table functions of every
kind, other databases (``system``, ``INFORMATION_SCHEMA`` ...), raw tables,
``SETTINGS``, ``FORMAT``, ``INTO OUTFILE``, query parameters.

The walk is iterative, so a deeply nested query cannot exhaust Python's stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .allowlist import (
    AGGREGATES,
    CASE_INSENSITIVE,
    COMBINATORS,
    FUNCTIONS,
    SPECIAL_FORMS,
)
from .errors import SqlRefused

__all__ = ["Policy", "check_ast", "function_allowed", "sourceless"]

_NODE_TYPES = frozenset({
    "SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery", "Subquery", "WithElement",
    "ExpressionList", "Identifier", "Literal", "Function", "Asterisk", "QualifiedAsterisk",
    "ColumnsRegexpMatcher", "ColumnsListMatcher", "QualifiedColumnsRegexpMatcher", "QualifiedColumnsListMatcher",
    "ColumnsTransformerList", "ColumnsApplyTransformer", "ColumnsExceptTransformer",
    "ColumnsReplaceTransformer", "ColumnsReplaceTransformerReplacement",
    "TablesInSelectQuery", "TablesInSelectQueryElement", "TableExpression", "TableIdentifier", "TableJoin",
    "ArrayJoin", "OrderByElement", "InterpolateElement", "SampleRatio", "WindowDefinition", "WindowListElement",
})
_ROOT_KEYS = frozenset({"type", "union_mode", "list_of_modes", "list_of_selects",
                        "is_outfile_append", "is_outfile_truncate", "is_into_outfile_with_stdout"})
_SELECT_KEYS = frozenset({
    "type", "with", "recursive_with", "distinct", "select", "tables", "prewhere", "where", "group_by",
    "group_by_with_totals", "group_by_with_rollup", "group_by_with_cube", "group_by_with_grouping_sets",
    "having", "window", "qualify", "order_by", "order_by_all", "interpolate", "limit_by_length", "limit_by",
    "limit_offset", "limit_length", "limit_with_ties",
})
_ROOT_REFUSALS = {
    "format_ast": 'FORMAT clauses are not allowed: choose the format with the request\'s "format" field',
    "out_file": "INTO OUTFILE is not allowed: results come back in the HTTP answer",
    "compression": "INTO OUTFILE ... COMPRESSION is not allowed",
    "settings": "SETTINGS clauses are not allowed: the server sets the limits",
}
_IN_FUNCTIONS = frozenset(
    f"{prefix}{name}{suffix}"
    for prefix, name in (("", "in"), ("", "notIn"), ("", "nullIn"), ("", "notNullIn"),
                         ("global", "In"), ("global", "NotIn"), ("global", "NullIn"), ("global", "NotNullIn"))
    for suffix in ("", "IgnoreSet")
)
_SYSTEM_DATABASES = frozenset({"system", "information_schema"})
_CASE_INSENSITIVE_AGGREGATES = frozenset(a.lower() for a in AGGREGATES) & CASE_INSENSITIVE


@dataclass(frozen=True, slots=True)
class Policy:
    """What user SQL may reach."""

    views: frozenset[str]
    """Names of the documented views (case-sensitive, as ClickHouse table names are)."""
    databases: frozenset[str] = frozenset()
    """Databases that may qualify a view name (``runledger.metrics``); a bare view name always works."""


def function_allowed(name: str) -> bool:
    """Whether user SQL may call ``name`` (exact spelling, or any case where the engine allows it)."""
    if name in FUNCTIONS or name in AGGREGATES or name in SPECIAL_FORMS or name.lower() in CASE_INSENSITIVE:
        return True
    return _aggregate_with_combinators(name)


def _aggregate_with_combinators(name: str) -> bool:
    for suffix in COMBINATORS:
        if len(name) > len(suffix) and name.endswith(suffix):
            base = name[: -len(suffix)]
            if base in AGGREGATES or base.lower() in _CASE_INSENSITIVE_AGGREGATES or _aggregate_with_combinators(base):
                return True
    return False


def check_ast(ast: Mapping[str, Any], policy: Policy) -> None:
    """Return if the parse tree ``ast`` is a query over ``policy``'s views only; raise SqlRefused otherwise."""
    if not isinstance(ast, Mapping) or ast.get("type") not in ("SelectWithUnionQuery", "SelectIntersectExceptQuery"):
        kind = ast.get("type") if isinstance(ast, Mapping) else type(ast).__name__
        raise SqlRefused(f"only SELECT queries are allowed, got a {kind}")
    stack: list[tuple[Any, frozenset[str]]] = [(ast, frozenset())]
    while stack:
        value, ctes = stack.pop()
        if isinstance(value, list):
            stack.extend((v, ctes) for v in value)
        elif isinstance(value, Mapping):
            if "type" in value:
                stack.extend(_check_node(value, ctes, policy))
            else:
                stack.extend((v, ctes) for v in value.values())


def _check_node(node: Mapping[str, Any], ctes: frozenset[str], policy: Policy) -> list[tuple[Any, frozenset[str]]]:
    """Check one node; return its children to visit, each with the CTE names visible there."""
    kind = node["type"]
    if kind == "QueryParameter":
        raise SqlRefused(f"query parameters ({{{node.get('name')}:...}}) are not supported: write the value inline")
    if kind == "SetQuery":
        raise SqlRefused(_ROOT_REFUSALS["settings"])
    if kind not in _NODE_TYPES:
        raise SqlRefused(f"unsupported construct in a query: {kind}")
    if kind == "Literal":
        return []
    if kind in ("SelectWithUnionQuery", "SelectIntersectExceptQuery"):
        _check_root_keys(node)
    elif kind == "SelectQuery":
        _check_select_keys(node)
        ctes = ctes | _cte_names(node.get("with"))
    elif kind == "TableExpression" and "table_function" in node:
        name = node["table_function"].get("name", "?") if isinstance(node["table_function"], Mapping) else "?"
        raise SqlRefused(f"table function {name}() is not allowed: query the documented views")
    elif kind == "TableIdentifier":
        _check_table(node, ctes, policy)
    elif kind == "Function":
        _check_function(node, ctes, policy)
    elif kind == "ColumnsApplyTransformer" and node.get("func_name") is not None:
        _check_function_name(str(node["func_name"]))
    return [(v, ctes) for k, v in node.items() if k != "type" and isinstance(v, (list, Mapping))]


def _check_root_keys(node: Mapping[str, Any]) -> None:
    for key, value in node.items():
        if key in _ROOT_REFUSALS:
            raise SqlRefused(_ROOT_REFUSALS[key])
        if key not in _ROOT_KEYS:
            raise SqlRefused(f"unsupported clause in a query: {key}")
        if key.startswith("is_") and value:
            raise SqlRefused(_ROOT_REFUSALS["out_file"])


def _check_select_keys(node: Mapping[str, Any]) -> None:
    for key in node:
        if key in _ROOT_REFUSALS:
            raise SqlRefused(_ROOT_REFUSALS[key])
        if key not in _SELECT_KEYS:
            raise SqlRefused(f"unsupported clause in a SELECT: {key}")


def _cte_names(with_list: Any) -> frozenset[str]:
    if not isinstance(with_list, Mapping):
        return frozenset()
    return frozenset(
        str(item["name"]) for item in with_list.get("children", ())
        if isinstance(item, Mapping) and item.get("type") == "WithElement" and "name" in item
    )


def _table_parts(node: Mapping[str, Any]) -> list[str]:
    parts = node.get("name_parts")
    if isinstance(parts, list) and parts:
        return [str(p) for p in parts]
    return [str(node.get("name", ""))]


def _check_table(node: Mapping[str, Any], ctes: frozenset[str], policy: Policy) -> None:
    parts = _table_parts(node)
    views = ", ".join(sorted(policy.views))
    if len(parts) == 1:
        if parts[0] in policy.views or parts[0] in ctes:
            return
        raise SqlRefused(f"table {parts[0]!r} is not reachable from SQL; the documented views are: {views}")
    if len(parts) == 2:
        database, table = parts
        if database.lower() in _SYSTEM_DATABASES:
            raise SqlRefused(f"{database}.{table}: system tables are not reachable from SQL")
        if database in policy.databases and table in policy.views:
            return
    raise SqlRefused(f"table {'.'.join(parts)!r} is not reachable from SQL; the documented views are: {views}")


def _check_function_name(name: str) -> None:
    if not function_allowed(name):
        raise SqlRefused(f"function {name}() is not allowed in SQL queries (not on the allowlist)")


def _check_function(node: Mapping[str, Any], ctes: frozenset[str], policy: Policy) -> None:
    name = str(node.get("name", ""))
    _check_function_name(name)
    if name in _IN_FUNCTIONS:
        args = node.get("arguments")
        children = args.get("children", []) if isinstance(args, Mapping) else []
        if len(children) == 2 and isinstance(children[1], Mapping) and children[1].get("type") == "Identifier":
            _check_table(children[1], ctes, policy)


def sourceless(ast: Mapping[str, Any]) -> bool:
    """Whether a top-level SELECT of the query reads no table (``SELECT arrayJoin(range(9))``).

    ClickHouse checks ``max_result_rows`` only where rows come from a source,
    so such a query must run wrapped in ``SELECT * FROM (...)`` to be counted.
    """
    pending: list[Any] = [ast]
    while pending:
        node = pending.pop()
        if not isinstance(node, Mapping):
            continue
        kind = node.get("type")
        if kind == "SelectQuery":
            if "tables" not in node:
                return True
        elif kind in ("SelectWithUnionQuery", "SelectIntersectExceptQuery", "ExpressionList", "Subquery"):
            for key in ("list_of_selects", "children"):
                value = node.get(key)
                pending.extend(value if isinstance(value, list) else [value])
    return False
