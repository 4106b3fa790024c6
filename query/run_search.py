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

Cost: a metric comparison is one vectorised scan of that key's :class:`MetricColumn`; an order led by a
metric walks the key's values in order and stops once the page and its ties are in; otherwise each run is
visited once. Only the page's candidates are fully ordered (at 30,000 runs x 200 metrics a filtered,
metric-ordered first page costs a few ms instead of ~100 ms: ``benchmarks/reads_at_scale.py``).
"""

from __future__ import annotations

import heapq
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeGuard

import numpy as np

from tracking import Run

from .filters import RUN_ATTRIBUTES, Clause, OrderBy

__all__ = ["supported", "search", "Latest", "MetricColumn"]

#: (value, step, timestamp ms, min, max, count or None, ...) of a run's metric key: see :mod:`query.read_model`.
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
        if col in ("start_time", "end_time", "status", "experiment_id"):
            return operator.attrgetter(col)
        return lambda r: _attr(r, col)
    if o.kind == "metric":
        return lambda r: (m[0] if (m := latest.get(r.run_id, {}).get(o.key)) is not None else None)
    if o.kind == "param":
        return lambda r: r.params.get(o.key)
    return lambda r: r.tags.get(o.key)


class _Desc:
    """A value that sorts in reverse (descending strings inside one ascending sort key)."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.v < self.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and bool(self.v == other.v)

    __hash__ = None  # type: ignore[assignment]


def _level_key(value: Callable[[Run], Any], descending: bool) -> Callable[[Run], tuple[int, Any]]:
    """One order level as an ascending key: (0, value) first (negated / reversed when descending), then
    (1, 0) for NaN, then (2, 0) for missing."""
    def key(r: Run) -> tuple[int, Any]:
        v = value(r)
        if v is None:
            return (2, 0)
        if isinstance(v, float) and math.isnan(v):
            return (1, 0)
        if not descending:
            return (0, v)
        return (0, -v) if isinstance(v, (int, float)) else (0, _Desc(v))
    return key


class MetricColumn:
    """One metric key's latest value of every run that has it, as one numpy array (row ``i`` is run
    ``rids[i]``, read from its ``Latest`` list ``lists[i]``; rows are only appended): a search compares and
    orders a key's values vectorised instead of visiting each run. The array is rebuilt from the lists on
    the first read after a write to the key (:meth:`changed`), so a write costs one flag, and the model
    keeps two pointers per series (a row number per series cost ~0.5 GB at 30k runs x 200 keys)."""

    __slots__ = ("_values", "lists", "rids")

    def __init__(self) -> None:
        self.rids: list[str] = []
        self.lists: list[Latest] = []
        self._values: Any = None

    def add(self, run_id: str, latest: Latest) -> None:
        self.rids.append(run_id)
        self.lists.append(latest)
        self._values = None

    def changed(self) -> None:
        self._values = None

    def view(self) -> Any:
        if self._values is None:
            self._values = np.fromiter((m[0] for m in self.lists), dtype=np.float64, count=len(self.lists))
        return self._values


#: numpy's ``values op want``; NaN compares as ClickHouse's (only ``!=`` holds).
_VECTOR_OPS: dict[str, Callable[[Any, float], Any]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def search(runs: Iterable[Run] | Mapping[str, Run], latest: Mapping[str, Mapping[str, Latest]],
           experiment_ids: Sequence[str], clauses: Sequence[Clause], order_by: Sequence[OrderBy],
           stages: Sequence[str], max_results: int, offset: int,
           columns: Mapping[str, MetricColumn] | None = None) -> list[str]:
    """Ids of one page of runs: in these experiments and lifecycle stages, matching every clause, ordered.

    With ``runs`` as a mapping by run id and ``columns`` (metric key -> :class:`MetricColumn`), a comparison
    on a metric is one vectorised scan of that key, and an order led by a metric walks that key's values in
    order until the page (and its ties) is full; otherwise every run is visited. Only the page's candidates
    are fully ordered."""
    exps, allowed = set(experiment_ids), set(stages)
    levels = [_level_key(_order_value(o, latest), not o.ascending) for o in order_by]
    if not any(o.kind == "attribute" and RUN_ATTRIBUTES[o.key] == "start_time" for o in order_by):
        levels.append(_level_key(operator.attrgetter("start_time"), True))
    want = offset + max_results
    found = None
    if isinstance(runs, Mapping) and columns is not None:
        found = _column_candidates(runs, latest, exps, allowed, clauses, order_by, want, columns)
    if found is not None:
        hits = found
    else:
        pool = runs.values() if isinstance(runs, Mapping) else runs
        tests = [_matcher(c, latest) for c in clauses]
        hits = [r for r in pool
                if r.exists and r.experiment_id in exps and (r.lifecycle_stage or "active") in allowed
                and all(t(r) for t in tests)]
    if len(hits) > 4 * want:  # keep what can reach the page by the first level (ties included)
        first = levels[0]
        primary = [first(r) for r in hits]
        cutoff = heapq.nsmallest(want, primary)[-1]
        hits = [r for r, p in zip(hits, primary, strict=True) if not cutoff < p]
    return _page(hits, levels, offset, max_results)


def _page(hits: list[Run], levels: list[Callable[[Run], tuple[int, Any]]], offset: int, max_results: int) -> list[str]:
    hits.sort(key=lambda r: (*[level(r) for level in levels], r.run_id))
    return [r.run_id for r in hits[offset:offset + max_results]]


def _column_candidates(runs: Mapping[str, Run], latest: Mapping[str, Mapping[str, Latest]], exps: set[str],
                       allowed: set[str], clauses: Sequence[Clause], order_by: Sequence[OrderBy], want: int,
                       columns: Mapping[str, MetricColumn]) -> list[Run] | None:
    """The runs that can reach the first ``want`` of the order (all ties of the last included), when
    metric columns can find them without visiting every run; None when they cannot."""
    narrow = next((c for c in clauses if c.kind == "metric" and c.op in _VECTOR_OPS
                   and isinstance(c.value, (int, float))), None)
    lead = order_by[0] if order_by and order_by[0].kind == "metric" else None
    if lead is not None and narrow is not None and narrow.key != lead.key:
        lead = None  # ordering by another key: the narrowed runs are ordered in Python
    if narrow is not None:
        key = narrow.key
    elif lead is not None:
        key = lead.key
    else:
        return None
    col = columns.get(key)
    if col is None:
        return [] if narrow is not None else None  # no run has the key: none matches / all are "missing"
    values = col.view()
    if narrow is not None:
        assert isinstance(narrow.value, (int, float))
        rows = np.flatnonzero(_VECTOR_OPS[narrow.op](values, float(narrow.value)))
    else:
        rows = np.arange(len(values))
    tests = [_matcher(c, latest) for c in clauses if c is not narrow]
    rids, get = col.rids, runs.get

    def keep(r: Run | None) -> TypeGuard[Run]:
        return (r is not None and r.exists and r.experiment_id in exps and (r.lifecycle_stage or "active") in allowed
                and all(t(r) for t in tests))

    if lead is None:
        return [r for i in rows.tolist() if keep(r := get(rids[i]))]
    ordered = rows[np.argsort(values[rows] if lead.ascending else -values[rows], kind="stable")]
    picked: list[Run] = []
    last = math.nan
    for i, v in zip(ordered.tolist(), values[ordered].tolist(), strict=True):
        if len(picked) >= want and not (v == last or (math.isnan(v) and math.isnan(last))):
            return picked  # the page and every run tied with its last are in
        if keep(r := get(rids[i])):
            picked.append(r)
            last = v
    if len(picked) >= want or narrow is not None:
        return picked
    # fewer runs with the key than the page: the runs without it (ordered last) are candidates too
    has = set(rids)
    return picked + [r for rid, r in runs.items() if rid not in has and keep(r)]
