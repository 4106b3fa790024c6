"""The points ``metrics/get-history-bulk-interval`` answers: the ones ``mlflow server`` 3.17.2 picks.

MLflow's SQL store (``_sample_rows_with_window_functions``) orders a run's points in the step range by
step, splits them with ``NTILE(max_results)`` and keeps the first point of each bucket; then the run's
last point replaces the last one kept (or is added, when fewer were kept). With one point per step (a
metric's identity here is (run, key, step)) that is a choice of positions in step order, which
:func:`sample_positions` computes and :data:`KEEP_SQL` computes inside ClickHouse.

This rule keeps the first and the last point and spreads the rest evenly by position; it does not look at
values, so a spike between two kept positions is not shown (as with the stock server). The endpoint
therefore uses it for short series only: a series over 2,500 points and at least 10x ``max_results`` is
downsampled with min and max per step bucket instead (``query.mlflow_api.metrics.bulk_interval_points``,
``Reads.metric_histories``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["sample_positions", "KEEP_SQL", "sample_histories"]


def sample_positions(n: int, k: int) -> list[int]:
    """Positions (0-based, in step order) of the points MLflow keeps out of ``n`` when asked for ``k``.

    ``NTILE(k)`` gives the first ``n % k`` buckets ``n // k + 1`` points and the others ``n // k``, so
    bucket ``b`` starts at ``b * (n // k) + min(b, n % k)``; the last bucket's first point gives way to
    the last point. ``k >= 1``.
    """
    if n <= k:
        return list(range(n))
    q, rem = divmod(n, k)
    return [b * q + min(b, rem) for b in range(k - 1)] + [n - 1]


#: ClickHouse condition true for the points :func:`sample_positions` keeps, given ``r`` (position, from 0),
#: ``n`` (points of the run in range) and the bound parameter ``k``. A bucket start at or before
#: ``rem * (q + 1)`` is a multiple of ``q + 1``; after it, ``rem`` more than a multiple of ``q``.
KEEP_SQL = (
    "(n <= {k:Int64} OR r = n - 1 OR if(r <= (n % {k:Int64}) * (intDiv(n, {k:Int64}) + 1), "
    "r % (intDiv(n, {k:Int64}) + 1) = 0 AND intDiv(r, intDiv(n, {k:Int64}) + 1) < {k:Int64} - 1, "
    "(r - n % {k:Int64}) % greatest(intDiv(n, {k:Int64}), 1) = 0 "
    "AND intDiv(r - n % {k:Int64}, greatest(intDiv(n, {k:Int64}), 1)) < {k:Int64} - 1))"
)


class _Store(Protocol):
    def query_columns(self, sql: str, parameters: dict[str, Any] | None = None,
                      settings: dict[str, Any] | None = None) -> tuple[list[str], list[Sequence[Any]]]: ...


class _Model(Protocol):
    def bounds(self, run_id: str, key: str) -> tuple[int, int, int] | None: ...

    def single_rows(self, run_id: str, key: str) -> bool: ...


History = dict[str, list[Any]]


def _dense_steps(model: _Model | None, run_id: str, key: str, k: int, start: int | None,
                 end: int | None) -> list[int] | None:
    """The kept steps of a series the read model knows to hold every step from its first to its last (the
    point at position ``i`` is at step ``first + i``), else None (positions need the points themselves)."""
    known = model.bounds(run_id, key) if model is not None else None
    if known is None:
        return None
    lo, hi, n = known
    if n != hi - lo + 1:
        return None
    lo, hi = max(lo, start if start is not None else lo), min(hi, end if end is not None else hi)
    return [lo + i for i in sample_positions(max(0, hi - lo + 1), k)]


def sample_histories(store: _Store, model: _Model | None, run_ids: Sequence[str], key: str, k: int,
                     start: int | None, end: int | None) -> dict[str, History]:
    """Per run (that has points in range): the columnar history of the points :func:`sample_positions`
    keeps, in step order. Series the read model knows to be dense are read by their kept steps alone (a
    primary-key lookup of at most ``k`` points per run); others are numbered in ClickHouse (one scan of
    the range) and filtered with :data:`KEEP_SQL`."""
    ids = list(dict.fromkeys(run_ids))
    pairs: list[tuple[str, int]] = []
    scan: list[str] = []
    for rid in ids:
        steps = _dense_steps(model, rid, key, k, start, end)
        if steps is None:
            scan.append(rid)
        else:
            pairs.extend((rid, s) for s in steps)
    rows: list[tuple[Any, ...]] = []  # (run id, step, timestamp ms, value, rank)
    if pairs:  # the union of the kept steps for all these runs: a primary-key read; other runs' steps dropped
        runs = sorted({r for r, _ in pairs})
        single = model is not None and all(model.single_rows(r, key) for r in runs)
        cols = store.query_columns(
            f"SELECT run_id, step, toUnixTimestamp64Milli(timestamp), value, rank FROM metric_points"
            f"{'' if single else ' FINAL'} WHERE run_id IN {{ids:Array(String)}} AND key = {{key:String}} AND "
            "step IN {steps:Array(Int64)} ORDER BY run_id, step",
            {"ids": runs, "key": key, "steps": sorted({s for _, s in pairs})})[1]
        wanted = set(pairs)
        rows.extend(row for row in zip(*cols, strict=True) if (row[0], row[1]) in wanted)
    if scan:
        where = "run_id IN {ids:Array(String)} AND key = {key:String}"
        p: dict[str, Any] = {"ids": scan, "key": key, "k": k}
        if start is not None and end is not None:
            where += " AND step >= {lo:Int64} AND step <= {hi:Int64}"
            p.update(lo=start, hi=end)
        rows.extend(zip(*store.query_columns(
            "SELECT run_id, step, ts, value, rank FROM (SELECT run_id, step, "
            "toUnixTimestamp64Milli(timestamp) AS ts, value, rank, "
            "toInt64(row_number() OVER (PARTITION BY run_id ORDER BY step)) - 1 AS r, "
            "toInt64(count() OVER (PARTITION BY run_id)) AS n "
            f"FROM metric_points FINAL WHERE {where}) WHERE {KEEP_SQL} ORDER BY run_id, step", p)[1], strict=True))
    out: dict[str, History] = {}
    for rid, step, ts, value, rank in rows:
        h = out.setdefault(rid, {"steps": [], "timestamps": [], "values": [], "ranks": []})
        h["steps"].append(step)
        h["timestamps"].append(ts)
        h["values"].append(value)
        h["ranks"].append(rank)
    return out
