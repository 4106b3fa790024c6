"""MLflow's run-search grammar, parsed into plain data (no I/O).

Grammar (what ``mlflow.search_runs(filter_string=...)`` sends)::

    filter   := clause ( AND clause )*
    clause   := entity comparator value | entity IS [NOT] NULL
    entity   := (metrics|metric|params|param|tags|tag|attributes|attribute|attr|run) "." key
                | datasets "." (name|digest|context)   (runs only: the datasets a run logged as inputs)
                | key                       (bare attribute: status, run_name, ...)
    key      := identifier (dots allowed) | `back quoted` | "double quoted"
    comparator := = | != | < | <= | > | >= | LIKE | ILIKE | NOT LIKE | NOT ILIKE | IN | NOT IN
    value    := number | 'string' | "string" | ( value, ... )

Order-by: ``entity [ASC|DESC]``, e.g. ``metrics.loss DESC``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from producer.errors import ContractError

__all__ = ["Clause", "OrderBy", "FilterError", "parse_filter", "parse_order_by", "RUN_ATTRIBUTES", "EXPERIMENT_ATTRIBUTES",
           "DATASET_KEYS"]

Kind = Literal["metric", "param", "tag", "attribute", "dataset"]
Value = str | float | tuple[str, ...] | None


class FilterError(ContractError):
    """The filter or order-by string is not valid; the message says where."""


@dataclass(frozen=True, slots=True)
class Clause:
    kind: Kind
    key: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class OrderBy:
    kind: Kind
    key: str
    ascending: bool = True


_PREFIXES: dict[str, Kind] = {
    "metrics": "metric", "metric": "metric",
    "params": "param", "param": "param", "parameters": "param", "parameter": "param",
    "tags": "tag", "tag": "tag",
    "attributes": "attribute", "attribute": "attribute", "attr": "attribute", "run": "attribute",
    "datasets": "dataset", "dataset": "dataset",
}
#: ``datasets.<key>`` -> column of ``run_inputs``.
DATASET_KEYS = {"name": "dataset_name", "digest": "dataset_digest", "context": "context"}

#: attribute name -> canonical column of the runs view ('run_name' -> 'name').
RUN_ATTRIBUTES = {
    "run_id": "run_id", "run_name": "name", "status": "status", "start_time": "start_time",
    "end_time": "end_time", "user_id": "user", "artifact_uri": "artifact_uri",
    "lifecycle_stage": "lifecycle_stage", "experiment_id": "experiment_id", "created": "start_time",
    "Created": "start_time",
}
_NUMERIC_ATTRS = {"start_time", "end_time", "created", "Created", "creation_time", "last_update_time"}
#: Attributes that compare with a number or a quoted string alike (model versions: ``version_number = 1``).
_EITHER_ATTRS = {"version", "version_number"}

#: Attributes of ``search_experiments`` filters (same grammar, other entity).
EXPERIMENT_ATTRIBUTES = {"name": "name", "experiment_id": "experiment_id", "creation_time": "creation_time",
                         "last_update_time": "last_update_time", "lifecycle_stage": "lifecycle_stage"}

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
    | '(?P<sq>(?:[^'\\]|\\.|'')*)'
    | "(?P<dq>(?:[^"\\]|\\.)*)"
    | `(?P<bq>[^`]*)`
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),.])
    | (?P<word>[A-Za-z_][A-Za-z0-9_\-:/]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # num | str | ident | op | punct | word
    text: str
    pos: int


def _tokenize(s: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    s = s.rstrip()
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise FilterError(f"unexpected character {s[pos:pos + 1]!r} at position {pos}")
        kind = m.lastgroup or ""
        text = m.group(kind)
        if kind in ("sq", "dq"):
            quote = "'" if kind == "sq" else '"'
            text = text.replace("\\" + quote, quote).replace("''", "'") if kind == "sq" else text.replace('\\"', '"')
            toks.append(_Tok("str", text, m.start(kind) - 1))
        elif kind == "bq":
            toks.append(_Tok("ident", text, m.start(kind) - 1))
        else:
            toks.append(_Tok(kind, text, m.start(kind)))
        pos = m.end()
    return toks


class _Parser:
    def __init__(self, s: str, attributes: Mapping[str, str] = RUN_ATTRIBUTES) -> None:
        self.s = s
        self.attributes = attributes
        self.toks = _tokenize(s)
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        t = self.peek()
        if t is None:
            raise FilterError(f"unexpected end of filter {self.s!r}")
        self.i += 1
        return t

    def word(self, *options: str) -> bool:
        t = self.peek()
        if t is not None and t.kind == "word" and t.text.upper() in options:
            self.i += 1
            return True
        return False

    def entity(self) -> tuple[Kind, str]:
        t = self.take()
        if t.kind not in ("word", "ident", "str"):
            raise FilterError(f"expected an entity like metrics.loss at position {t.pos}, got {t.text!r}")
        nxt = self.peek()
        if t.kind == "word" and t.text.lower() in _PREFIXES and nxt is not None and nxt.text == ".":
            self.i += 1
            kind = _PREFIXES[t.text.lower()]
            k = self.take()
            if k.kind not in ("word", "ident", "str", "num"):
                raise FilterError(f"expected a key after {t.text}. at position {k.pos}")
            key = k.text
            # unquoted keys may contain dots: metrics.eval.loss
            while k.kind == "word" and self.peek() is not None and self.peek().text == "." :  # type: ignore[union-attr]
                self.i += 1
                k = self.take()
                key += "." + k.text
        else:
            kind, key = "attribute", t.text
        if kind == "attribute" and key not in self.attributes:
            raise FilterError(f"Invalid attribute key '{key}' specified. Valid keys are "  # MLflow's wording
                              f"'{', '.join(sorted(self.attributes))}'")
        if kind == "dataset":
            if self.attributes is not RUN_ATTRIBUTES:
                raise FilterError("datasets.* filters apply to run searches only")
            if key not in DATASET_KEYS:
                raise FilterError(f"unknown dataset attribute {key!r}; valid: {', '.join(DATASET_KEYS)}")
        return kind, key

    def value(self, kind: Kind) -> Value:
        t = self.take()
        if t.kind == "num":
            return float(t.text)
        if t.kind == "str":
            return t.text
        raise FilterError(f"expected a number or a quoted string at position {t.pos}, got {t.text!r}")

    def clause(self) -> Clause:
        kind, key = self.entity()
        t = self.take()
        if t.kind == "op":
            op = "!=" if t.text == "<>" else t.text
            val = self.value(kind)
        elif t.kind == "word":
            up = t.text.upper()
            if up == "IS":
                op = "IS NOT NULL" if self.word("NOT") else "IS NULL"
                if not self.word("NULL"):
                    raise FilterError(f"expected NULL after IS at position {t.pos}")
                return Clause(kind, key, op, None)
            if up == "NOT":
                nxt = self.take()
                up = "NOT " + nxt.text.upper()
            if up in ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"):
                op = up
                val = self.value(kind)
                if not isinstance(val, str):
                    raise FilterError(f"{op} needs a quoted string pattern")
            elif up in ("IN", "NOT IN"):
                op = up
                val = self.in_list()
            else:
                raise FilterError(f"unknown comparator {t.text!r} at position {t.pos}")
        else:
            raise FilterError(f"expected a comparator at position {t.pos}, got {t.text!r}")
        return _check(Clause(kind, key, op, val))

    def in_list(self) -> tuple[str, ...]:
        if self.take().text != "(":
            raise FilterError("IN needs a parenthesised list of quoted strings")
        out: list[str] = []
        while True:
            t = self.take()
            if t.kind not in ("str", "num"):
                raise FilterError(f"IN list holds {t.text!r}; quote the values")
            out.append(t.text)
            sep = self.take()
            if sep.text == ")":
                return tuple(out)
            if sep.text != ",":
                raise FilterError(f"expected ',' or ')' in IN list at position {sep.pos}")


def _check(c: Clause) -> Clause:
    numeric = c.kind == "metric" or (c.kind == "attribute" and c.key in _NUMERIC_ATTRS)
    if numeric and c.op in ("=", "!=", "<", "<=", ">", ">="):
        if not isinstance(c.value, float):
            raise FilterError(f"{c.kind} {c.key!r} compares with numbers, got {c.value!r}")
    elif numeric and c.op not in ("IS NULL", "IS NOT NULL", "IN", "NOT IN"):
        raise FilterError(f"{c.op} is not valid for {c.kind} {c.key!r}")
    elif c.kind == "dataset" and c.op not in ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"):
        raise FilterError(f"{c.op} is not valid for datasets.{c.key}; use = != LIKE ILIKE IN NOT IN")
    elif not numeric and c.op in ("<", "<=", ">", ">=") and c.kind != "attribute":
        raise FilterError(f"{c.op} is not valid for {c.kind} {c.key!r}; use = != LIKE ILIKE IN")
    elif not numeric and isinstance(c.value, float) and not (c.kind == "attribute" and c.key in _EITHER_ATTRS):
        raise FilterError(f"{c.kind} {c.key!r} compares with quoted strings, got {c.value!r}")
    return c


def parse_filter(s: str | None, attributes: Mapping[str, str] = RUN_ATTRIBUTES) -> tuple[Clause, ...]:
    """Parse a filter string; empty or None means no filter. ``attributes``: the valid bare/attribute keys."""
    if s is None or not s.strip():
        return ()
    p = _Parser(s, attributes)
    clauses = [p.clause()]
    while p.peek() is not None:
        if not p.word("AND"):
            t = p.peek()
            what = "OR is not supported; " if t is not None and t.text.upper() == "OR" else ""
            raise FilterError(f"{what}expected AND at position {t.pos if t else len(s)}")
        clauses.append(p.clause())
    return tuple(clauses)


def parse_order_by(items: list[str] | tuple[str, ...] | None,
                   attributes: Mapping[str, str] = RUN_ATTRIBUTES) -> tuple[OrderBy, ...]:
    out: list[OrderBy] = []
    for item in items or ():
        if not item or not item.strip():
            continue
        p = _Parser(item, attributes)
        kind, key = p.entity()
        if kind == "dataset":
            raise FilterError(f"cannot order by datasets.{key}")
        asc = True
        if p.word("DESC"):
            asc = False
        elif p.word("ASC"):
            asc = True
        if p.peek() is not None:
            raise FilterError(f"invalid order_by clause {item!r}")
        out.append(OrderBy(kind, key, asc))
    return tuple(out)
