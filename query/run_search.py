"""Run search over the in-memory read model: MLflow's filter and order-by, the same answers as the SQL
of :func:`query.reads.search_sql` (pure; ``tests/integration/test_read_model_chdb.py`` compares the two on
random data and random filters against real ClickHouse).

The SQL's meaning, kept here clause by clause:

* attributes are the ``runs`` view's columns: strings are ``''`` when unset, ``start_time`` /
  ``end_time`` are ``NULL``; a comparison with ``NULL`` is false; ``IS NULL`` is "NULL or ''";
* a metric / param / tag clause holds when the run has the key and its value compares true
  (metrics: the latest value, as ``latest_metrics``; IEEE comparisons, so ``NaN != x`` holds);
* ``LIKE`` / ``ILIKE``: ``%`` any run of characters, ``_`` one, ``\\`` escapes, whole value;
* order: each key ascending or descending with values first, then NaN, then missing (ClickHouse's
  ``NULLS LAST``), then ``start_time DESC`` (missing last) unless ordered by start time, then ``run_id``.

``datasets.*`` clauses and ``IN`` on numbers are left to the SQL path (:func:`supported`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from tracking import Run

from .filters import RUN_ATTRIBUTES, Clause, OrderBy

__all__ = ["supported", "search", "Latest"]

#: (value, step, timestamp ms, min, max, count or None) of a run's metric key: see :mod:`query.read_model`.
Latest = list[Any]

_NUMERIC = {"start_time", "end_time"}


def supported(clauses: Sequence[Clause], order_by: Sequence[OrderBy]) -> bool:
    """True if :func:`search` answers this search (else the caller runs the SQL)."""
    for c in clauses:
        if c.kind == "dataset":
            return False
        numeric = c.kind == "metric" or (c.kind == "attribute" and RUN_ATTRIBUTES[c.key] in _NUMERIC)
        if numeric and c.op in ("IN", "NOT IN"):
            return False
    return all(o.kind != "dataset" for o in order_by)


def _attr(run: Run, col: str) -> Any:
    if col == "name":
        return run.name
    if col == "user":
        return run.user
    if col == "lifecycle_stage":
        return run.lifecycle_stage or "active"
    if col == "artifact_uri":
        return ""  # the runs view's column (never projected): MLflow's artifact URI is derived per read
    return getattr(run, col)


@lru_cache(maxsize=256)
def _like(pattern: str, insensitive: bool) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if insensitive else 0))


def _compare(value: Any, op: str, want: Any) -> bool:
    """``value op want`` as ClickHouse answers it; ``value`` is never None here."""
    if op == "=":
        return bool(value == want)
    if op == "!=":
        return bool(value != want)
    if op == "<":
        return bool(value < want)
    if op == "<=":
        return bool(value <= want)
    if op == ">":
        return bool(value > want)
    if op == ">=":
        return bool(value >= want)
    if op in ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"):
        hit = _like(str(want), "ILIKE" in op).fullmatch(str(value)) is not None
        return hit != op.startswith("NOT")
    if op == "IN":
        return str(value) in want
    if op == "NOT IN":
        return str(value) not in want
    raise ValueError(f"unknown operator {op!r}")


def _matcher(c: Clause, latest: Mapping[str, Mapping[str, Latest]]) -> Callable[[Run], bool]:
    key, op, want = c.key, c.op, c.value
    if c.kind == "attribute":
        col = RUN_ATTRIBUTES[key]
        if op == "IS NULL":
            return lambda r: _attr(r, col) in (None, "")
        if op == "IS NOT NULL":
            return lambda r: _attr(r, col) not in (None, "")
        if col in _NUMERIC:
            return lambda r: (v := _attr(r, col)) is not None and _compare(float(v), op, want)
        return lambda r: _compare(_attr(r, col), op, want)
    if c.kind == "metric":
        def metric(r: Run) -> bool:
            m = latest.get(r.run_id, {}).get(key)
            if op == "IS NULL":
                return m is None
            if op == "IS NOT NULL":
                return m is not None
            return m is not None and _compare(m[0], op, want)
        return metric

    def kv(r: Run) -> bool:
        values = r.params if c.kind == "param" else r.tags
        v = values.get(key)
        if op == "IS NULL":
            return v is None
        if op == "IS NOT NULL":
            return v is not None
        return v is not None and _compare(v, op, want)
    return kv


def _order_value(o: OrderBy, latest: Mapping[str, Mapping[str, Latest]]) -> Callable[[Run], Any]:
    if o.kind == "attribute":
        col = RUN_ATTRIBUTES[o.key]
        return lambda r: _attr(r, col)
    if o.kind == "metric":
        return lambda r: (m[0] if (m := latest.get(r.run_id, {}).get(o.key)) is not None else None)
    if o.kind == "param":
        return lambda r: r.params.get(o.key)
    return lambda r: r.tags.get(o.key)


def _sort_level(runs: list[Run], value: Callable[[Run], Any], descending: bool) -> list[Run]:
    """One stable sort level: values (ascending or descending), then NaN, then missing."""
    present: list[tuple[Any, Run]] = []
    nan: list[Run] = []
    missing: list[Run] = []
    for r in runs:
        v = value(r)
        if v is None:
            missing.append(r)
        elif isinstance(v, float) and math.isnan(v):
            nan.append(r)
        else:
            present.append((v, r))
    present.sort(key=lambda p: p[0], reverse=descending)
    return [r for _, r in present] + nan + missing


def search(runs: Iterable[Run], latest: Mapping[str, Mapping[str, Latest]], experiment_ids: Sequence[str],
           clauses: Sequence[Clause], order_by: Sequence[OrderBy], stages: Sequence[str], max_results: int,
           offset: int) -> list[str]:
    """Ids of one page of runs: in these experiments and lifecycle stages, matching every clause, ordered."""
    exps, allowed = set(experiment_ids), set(stages)
    tests = [_matcher(c, latest) for c in clauses]
    hits = [r for r in runs
            if r.exists and r.experiment_id in exps and (r.lifecycle_stage or "active") in allowed
            and all(t(r) for t in tests)]
    hits.sort(key=lambda r: r.run_id)
    levels: list[tuple[Callable[[Run], Any], bool]] = [(_order_value(o, latest), not o.ascending) for o in order_by]
    if not any(o.kind == "attribute" and RUN_ATTRIBUTES[o.key] == "start_time" for o in order_by):
        levels.append((lambda r: r.start_time, True))
    for value, descending in reversed(levels):
        hits = _sort_level(hits, value, descending)
    return [r.run_id for r in hits[offset:offset + max_results]]
