"""Read queries over the projections (ClickHouse SQL with bound parameters).

Everything the native API and the MLflow layer read comes through here; no
route writes SQL of its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from ingest.eventlog import EVENT_COLUMNS, row_to_event
from ingest.schema import ROLLUP_STEPS
from ingest.sink import ClickHouseStore
from producer.events import Event

from .filters import DATASET_KEYS, RUN_ATTRIBUTES, Clause, OrderBy
from .read_model import ReadModel
from .run_search import supported
from .run_state import fold_runs, run_state_dict
from .tracking_view import run_from_rows

__all__ = ["Reads", "VIEW_TYPES"]

#: MLflow's run_view_type -> lifecycle stages it shows.
VIEW_TYPES = {
    "ACTIVE_ONLY": ("active",),
    "DELETED_ONLY": ("deleted",),
    "ALL": ("active", "deleted"),
}


def _empty_history() -> dict[str, list[Any]]:
    return {"steps": [], "timestamps": [], "values": [], "ranks": []}


def _columns(cols: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    if not cols:
        return _empty_history()
    return {"steps": list(cols[0]), "timestamps": list(cols[1]), "values": list(cols[2]), "ranks": list(cols[3])}


def _rollup_group(lo: int, hi: int, max_points: int) -> int:
    """Rollup buckets per view bucket for a series of steps ``lo..hi`` shown in at most ``max_points`` points:
    view buckets are whole rollup buckets (aligned to step 0), so ``buckets + 1`` of them at most, 2 points each."""
    buckets = max(1, max_points // 2 - 1)
    return max(1, math.ceil(math.ceil((hi - lo + 1) / buckets) / ROLLUP_STEPS))


def _metric_row(value: float, step: int, ts_ms: int, vmin: float, vmax: float, count: int) -> dict[str, Any]:
    return {"value": value, "step": step, "timestamp": ts_ms, "min": vmin, "max": vmax, "count": count}


#: A batch of runs' attributes, params and live tags in one round trip: (run_id, kind, key, value, deleted).
_RUNS_SQL = (
    "SELECT run_id, 'f', field, value, 0 FROM run_fields FINAL WHERE run_id IN {ids:Array(String)} "
    "UNION ALL SELECT run_id, 'p', key, value, 0 FROM run_params FINAL WHERE run_id IN {ids:Array(String)} "
    "UNION ALL SELECT run_id, 't', key, value, deleted FROM run_tags FINAL WHERE run_id IN {ids:Array(String)} "
    "AND deleted = 0"
)


class Reads:
    """``model``: the in-memory read model (embedded mode) answers current state and run search; without
    it (Kafka mode: other processes ingest) every read is a ClickHouse query."""

    def __init__(self, store: ClickHouseStore, model: ReadModel | None = None) -> None:
        self.store = store
        self.model = model

    # ------------------------------------------------------------ experiments

    def experiments(self, view_type: str = "ACTIVE_ONLY", *, name_like: str | None = None,
                    ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        if self.model is not None:
            with self.model.lock:  # the writer thread folds into these objects
                return [
                    {"experiment_id": e.experiment_id, "name": e.name, "artifact_location": e.artifact_location,
                     "lifecycle_stage": e.lifecycle_stage or "active", "creation_time": e.creation_time,
                     "last_update_time": e.last_update_time, "tags": dict(e.tags)}
                    for e in self.model.experiments(VIEW_TYPES.get(view_type, ("active",)), name=name_like, ids=ids)
                ]
        where = ["lifecycle_stage IN {stages:Array(String)}"]
        params: dict[str, Any] = {"stages": list(VIEW_TYPES.get(view_type, ("active",)))}
        if name_like is not None:
            where.append("name = {name:String}")
            params["name"] = name_like
        if ids is not None:
            where.append("experiment_id IN {ids:Array(String)}")
            params["ids"] = list(ids)
        rows = self.store.query_rows(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time "
            f"FROM experiments WHERE {' AND '.join(where)} ORDER BY creation_time, experiment_id", params)
        tags = self._experiment_tags([r[0] for r in rows])
        return [
            {"experiment_id": r[0], "name": r[1], "artifact_location": r[2], "lifecycle_stage": r[3],
             "creation_time": r[4], "last_update_time": r[5], "tags": tags.get(r[0], {})}
            for r in rows
        ]

    def experiment(self, experiment_id: str) -> dict[str, Any] | None:
        found = self.experiments("ALL", ids=[experiment_id])
        return found[0] if found else None

    def experiment_by_name(self, name: str) -> dict[str, Any] | None:
        found = self.experiments("ALL", name_like=name)
        return found[0] if found else None

    def _experiment_tags(self, ids: list[str]) -> dict[str, dict[str, str]]:
        if not ids:
            return {}
        out: dict[str, dict[str, str]] = {}
        for eid, k, v in self.store.query_rows(
            "SELECT experiment_id, key, value FROM experiment_tag_values WHERE experiment_id IN {ids:Array(String)}",
            {"ids": ids},
        ):
            out.setdefault(eid, {})[k] = v
        return out

    # ------------------------------------------------------------------- runs

    def runs(self, run_ids: Sequence[str], *, counts: bool = True) -> list[dict[str, Any]]:
        """Current state of these runs (missing ids are left out), in the order given. ``counts=False``: a
        metric's ``count`` may be None where the read model does not know it (no ClickHouse query; for
        callers that do not show counts, such as MLflow's API)."""
        if not run_ids:
            return []
        ids = list(dict.fromkeys(run_ids))
        if self.model is not None:
            return self._runs_from_model(ids, counts)
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for rid, *rest in self.store.query_rows(_RUNS_SQL, {"ids": ids}):
            grouped.setdefault(rid, []).append(tuple(rest))
        runs = {rid: run for rid, rows in grouped.items() if (run := run_from_rows(rid, rows)) is not None}
        metrics = self.latest_metrics(list(runs))
        return [run_state_dict(runs[r], metrics.get(r, {})) for r in ids if r in runs]

    def _runs_from_model(self, ids: list[str], counts: bool = True) -> list[dict[str, Any]]:
        assert self.model is not None
        out, recount = [], []
        with self.model.lock:  # the writer thread folds into these objects
            for rid in ids:
                run = self.model.run(rid)
                if run is None:
                    continue
                metrics = self.model.metrics(rid)
                if rid in self.model.recount:
                    recount.append(rid)
                out.append(run_state_dict(run, metrics))
        if recount and counts:
            known = self._counts(recount)
            for state in out:
                for k, m in state["metrics"].items():
                    if m["count"] is None:
                        m["count"] = known.get((state["run_id"], k), 0)
        return out

    def _counts(self, run_ids: list[str]) -> dict[tuple[str, str], int]:
        return {(r, k): int(n) for r, k, n in self.store.query_rows(
            "SELECT run_id, key, count FROM latest_metrics WHERE run_id IN {ids:Array(String)}", {"ids": run_ids})}

    def run(self, run_id: str, *, counts: bool = True) -> dict[str, Any] | None:
        found = self.runs([run_id], counts=counts)
        return found[0] if found else None

    def latest_metrics(self, run_ids: Sequence[str], as_of_ms: int | None = None) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if as_of_ms is None:
            rows = self.store.query_rows(
                "SELECT run_id, key, value, step, toUnixTimestamp64Milli(timestamp), min_value, max_value, count "
                "FROM latest_metrics WHERE run_id IN {ids:Array(String)} ORDER BY run_id, key",
                {"ids": list(run_ids)})
        else:
            rows = self.store.query_rows(
                "SELECT run_id, key, argMax(value, (step, timestamp)), max(step), "
                "toUnixTimestamp64Milli(max(timestamp)), min(value), max(value), count() "
                "FROM metric_points FINAL WHERE run_id IN {ids:Array(String)} "
                "AND timestamp <= fromUnixTimestamp64Milli({t:Int64}, 'UTC') GROUP BY run_id, key ORDER BY run_id, key",
                {"ids": list(run_ids), "t": as_of_ms})
        for rid, key, value, step, ts, vmin, vmax, count in rows:
            out.setdefault(rid, {})[key] = _metric_row(value, step, ts, vmin, vmax, count)
        return out

    def run_as_of(self, run_id: str, as_of_ms: int) -> dict[str, Any] | None:
        """The run as it was at ``as_of_ms``: a fold of its events up to then."""
        events = self.entity_events(run_id, until_ms=as_of_ms, exclude_types=("metrics_logged",))
        states = fold_runs(events)
        if run_id not in states:
            return None
        return run_state_dict(states[run_id], self.latest_metrics([run_id], as_of_ms).get(run_id, {}))

    # ----------------------------------------------------------------- search

    def search_runs(self, experiment_ids: Sequence[str], clauses: Sequence[Clause] = (),
                    order_by: Sequence[OrderBy] = (), *, view_type: str = "ACTIVE_ONLY",
                    max_results: int = 1000, offset: int = 0) -> list[str]:
        """Run ids matching the filter, ordered, one page. MLflow's default order: start_time DESC."""
        if self.model is not None and supported(clauses, order_by):
            return self.model.search(experiment_ids, clauses, order_by, VIEW_TYPES.get(view_type, ("active",)),
                                     max_results, offset)
        sql, params = search_sql(experiment_ids, clauses, order_by, view_type, max_results, offset)
        return [r[0] for r in self.store.query_rows(sql, params, settings={"join_use_nulls": 1})]

    # ---------------------------------------------------------------- history

    def metric_history(self, run_id: str, key: str, *, max_points: int | None = None,
                       start_step: int | None = None, end_step: int | None = None,
                       offset: int = 0, limit: int | None = None) -> dict[str, list[Any]]:
        """Columnar history of one metric: steps, timestamps (ms), values, ranks.

        With ``max_points`` the series is cut into about ``max_points // 2`` step buckets and each bucket
        contributes its minimum and its maximum point (in step order), so spikes survive downsampling; done
        inside ClickHouse. A long series whose steps were never re-logged (the read model knows) is
        downsampled from ``metric_rollup`` (one row per 1,024 steps, buckets aligned to them) instead of
        every point; otherwise from ``metric_points FINAL``, and ``FINAL`` (merging re-logged steps on read)
        is skipped where no step has two rows.
        """
        where = "run_id = {r:String} AND key = {k:String}"
        p: dict[str, Any] = {"r": run_id, "k": key}
        whole = start_step is None and end_step is None
        if start_step is not None:
            where += " AND step >= {lo:Int64}"
            p["lo"] = start_step
        if end_step is not None:
            where += " AND step <= {hi:Int64}"
            p["hi"] = end_step
        single = self.model is not None and self.model.single_rows(run_id, key)
        final = "" if single else " FINAL"
        if max_points is not None:
            known = self.model.bounds(run_id, key) if self.model is not None and whole else None
            if known is not None:
                lo, hi, n = known
            else:
                bounds = self.store.query_rows(
                    f"SELECT min(step), max(step), count() FROM metric_points WHERE {where}", p)
                lo, hi, n = bounds[0] if bounds else (0, 0, 0)
            if n > max_points:
                buckets = max(1, max_points // 2)
                width = max(1, math.ceil((hi - lo + 1) / buckets))
                if single and whole and width >= ROLLUP_STEPS:
                    group = _rollup_group(lo, hi, max_points)
                    return self._downsample_rollups({run_id: group}, key).get(run_id, _empty_history())
                cols = self.store.query_columns(
                    "SELECT pt.1, pt.2, pt.3, pt.4 FROM (SELECT arrayJoin(arrayDistinct(["
                    "(argMin(step, value), argMin(ts, value), min(value), argMin(rank, value)), "
                    "(argMax(step, value), argMax(ts, value), max(value), argMax(rank, value))])) AS pt FROM "
                    f"(SELECT step, toUnixTimestamp64Milli(timestamp) AS ts, value, rank FROM metric_points{final} "
                    f"WHERE {where}) GROUP BY intDiv(step - {{lo0:Int64}}, {{w:Int64}})) ORDER BY pt.1",
                    {**p, "lo0": lo, "w": width},
                )[1]
                return _columns(cols)
        page = ""
        if limit is not None:
            page = " LIMIT {lim:UInt64} OFFSET {off:UInt64}"
            p.update(lim=limit, off=offset)
        _names, cols = self.store.query_columns(
            f"SELECT step, toUnixTimestamp64Milli(timestamp), value, rank FROM metric_points{final} "
            f"WHERE {where} ORDER BY step{page}", p)
        return _columns(cols)

    def metric_histories(self, run_ids: Sequence[str], key: str, *, max_points: int,
                         start_step: int | None = None, end_step: int | None = None) -> dict[str, dict[str, list[Any]]]:
        """One metric of many runs in ONE query, each run downsampled to about ``max_points`` points.

        A run with more than ``max_points`` points in the step range is cut into
        ``max_points // 2`` step buckets of equal width, and each bucket contributes
        its minimum and its maximum point (in step order), so spikes survive; a run
        with fewer points comes back whole. Runs without the metric are left out.
        """
        if not run_ids:
            return {}
        ids = list(dict.fromkeys(run_ids))
        rolled: dict[str, dict[str, list[Any]]] = {}
        if self.model is not None and start_step is None and end_step is None:
            groups = {}
            for rid in ids:  # long series never re-logged: from the rollup (see metric_history)
                known = self.model.bounds(rid, key)
                if known is None or not self.model.single_rows(rid, key) or known[2] <= max_points:
                    continue
                lo, hi, _n = known
                if math.ceil((hi - lo + 1) / max(1, max_points // 2)) >= ROLLUP_STEPS:
                    groups[rid] = _rollup_group(lo, hi, max_points)
            if groups:
                rolled = self._downsample_rollups(groups, key)
                ids = [r for r in ids if r not in groups]
                if not ids:
                    return rolled
        where = "run_id IN {ids:Array(String)} AND key = {k:String}"
        p: dict[str, Any] = {"ids": ids, "k": key, "n": max_points,
                             "b": max(1, max_points // 2)}
        if start_step is not None:
            where += " AND step >= {lo:Int64}"
            p["lo"] = start_step
        if end_step is not None:
            where += " AND step <= {hi:Int64}"
            p["hi"] = end_step
        cols = self.store.query_columns(
            "SELECT rid, pt.1, pt.2, pt.3, pt.4 FROM (SELECT m.run_id AS rid, arrayJoin(arrayDistinct(["
            "(argMin(m.step, m.value), argMin(m.ts, m.value), min(m.value), argMin(m.rank, m.value)), "
            "(argMax(m.step, m.value), argMax(m.ts, m.value), max(m.value), argMax(m.rank, m.value))])) AS pt FROM "
            "(SELECT run_id, step, toUnixTimestamp64Milli(timestamp) AS ts, value, rank FROM metric_points FINAL "
            f"WHERE {where}) AS m INNER JOIN "
            "(SELECT run_id, min(step) AS lo, count() AS cnt, "
            "greatest(toInt64(1), toInt64(ceil((max(step) - min(step) + 1) / {b:Int64}))) AS width "
            f"FROM metric_points WHERE {where} GROUP BY run_id) AS bounds ON bounds.run_id = m.run_id "
            "GROUP BY m.run_id, if(bounds.cnt > {n:Int64}, intDiv(m.step - bounds.lo, bounds.width), m.step)"
            ") ORDER BY rid, pt.1", p)[1]
        out = rolled
        if not cols:
            return out
        for rid, step, ts, value, rank in zip(*cols, strict=True):
            h = out.get(rid)
            if h is None:
                h = out[rid] = _empty_history()
            h["steps"].append(step)
            h["timestamps"].append(ts)
            h["values"].append(value)
            h["ranks"].append(rank)
        return out

    def _downsample_rollups(self, groups: dict[str, int], key: str) -> dict[str, dict[str, list[Any]]]:
        """Min and max point per view bucket of each run, from the rollup's per-1,024-step extremes, in one
        query (``groups``: run id -> rollup buckets per view bucket, :func:`_rollup_group`)."""
        cols = self.store.query_columns(
            "SELECT run_id, pt.1, pt.2, pt.3, pt.4 FROM (SELECT run_id, arrayJoin(arrayDistinct(["
            "argMin(l, l.3), argMax(h, h.3)])) AS pt FROM (SELECT run_id, bucket, argMinMerge(lo) AS l, "
            "argMaxMerge(hi) AS h FROM metric_rollup WHERE run_id IN {ids:Array(String)} AND key = {k:String} "
            "GROUP BY run_id, bucket) GROUP BY run_id, "
            "intDiv(bucket, transform(run_id, {ids:Array(String)}, {g:Array(Int64)}, toInt64(1)))) "
            "ORDER BY run_id, pt.1", {"ids": list(groups), "g": list(groups.values()), "k": key})[1]
        out: dict[str, dict[str, list[Any]]] = {}
        for rid, step, ts, value, rank in zip(*cols, strict=True):
            h = out.setdefault(rid, _empty_history())
            h["steps"].append(step)
            h["timestamps"].append(ts)
            h["values"].append(value)
            h["ranks"].append(rank)
        return out

    def metric_keys(self, run_id: str) -> list[str]:
        return [r[0] for r in self.store.query_rows(
            "SELECT DISTINCT key FROM latest_metrics_agg WHERE run_id = {r:String} ORDER BY key", {"r": run_id})]

    def dataset_summaries(self, experiment_ids: Sequence[str], limit: int) -> list[dict[str, str]]:
        """Distinct (experiment, dataset name, digest, context) of the datasets runs of these experiments
        logged as inputs (MLflow's ``experiments/search-datasets``; runs deleted or not)."""
        rows = self.store.query_rows(
            "SELECT DISTINCT r.experiment_id, i.dataset_name, i.dataset_digest, i.context "
            "FROM run_inputs AS i FINAL INNER JOIN runs AS r ON r.run_id = i.run_id "
            "WHERE r.experiment_id IN {exps:Array(String)} "
            "ORDER BY r.experiment_id, i.dataset_name, i.dataset_digest, i.context LIMIT {limit:UInt32}",
            {"exps": list(experiment_ids), "limit": limit})
        return [{"experiment_id": e, "name": n, "digest": d, "context": c} for e, n, d, c in rows]

    def count_points(self, run_id: str | None = None) -> int:
        if run_id is None:
            return int(self.store.query_rows("SELECT count() FROM metric_points FINAL")[0][0])
        return int(self.store.query_rows(
            "SELECT count() FROM metric_points FINAL WHERE run_id = {r:String}", {"r": run_id})[0][0])

    # ------------------------------------------------------------------ log

    def entity_events(self, entity: str, *, until_ms: int | None = None,
                      exclude_types: Iterable[str] = (), types: Iterable[str] | None = None) -> list[Event]:
        """The entity's events from the log, in event-id (time) order."""
        where = ["entity = {e:String}"]
        p: dict[str, Any] = {"e": entity}
        if until_ms is not None:
            where.append("ts <= fromUnixTimestamp64Milli({t:Int64}, 'UTC')")
            p["t"] = until_ms
        ex = list(exclude_types)
        if ex:
            where.append("type NOT IN {ex:Array(String)}")
            p["ex"] = ex
        if types is not None:
            where.append("type IN {ty:Array(String)}")
            p["ty"] = list(types)
        rows = self.store.query_rows(
            f"SELECT {EVENT_COLUMNS} FROM events FINAL "
            f"WHERE {' AND '.join(where)} ORDER BY event_id", p)
        return [row_to_event(r) for r in rows]

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        return [
            {"received_at": str(r[0]), "origin": r[1], "kind": r[5], "event_id": r[2], "reason": r[3], "raw": r[4]}
            for r in self.store.query_rows(
                "SELECT received_at, origin, event_id, reason, raw, kind FROM dead_letter "
                "ORDER BY received_at DESC LIMIT {n:UInt32}", {"n": limit})
        ]


def _cmp_sql(col: str, c: Clause, p: dict[str, Any], i: int, numeric: bool) -> str:
    name = f"v{i}"
    if c.op in ("IN", "NOT IN"):
        p[name] = list(c.value)  # type: ignore[arg-type]
        return f"{col} {c.op} {{{name}:Array(String)}}"
    if c.op in ("IS NULL", "IS NOT NULL"):
        return ""
    p[name] = c.value
    typ = "Float64" if numeric else "String"
    op = c.op
    return f"{col} {op} {{{name}:{typ}}}"


def search_sql(experiment_ids: Sequence[str], clauses: Sequence[Clause], order_by: Sequence[OrderBy],
               view_type: str, max_results: int, offset: int) -> tuple[str, dict[str, Any]]:
    """SQL and parameters for one page of a run search (pure)."""
    p: dict[str, Any] = {"exps": list(experiment_ids), "stages": list(VIEW_TYPES.get(view_type, ("active",)))}
    where = ["r.experiment_id IN {exps:Array(String)}", "r.lifecycle_stage IN {stages:Array(String)}"]
    for i, c in enumerate(clauses):
        p[f"k{i}"] = c.key
        if c.kind == "attribute":
            col = "r." + RUN_ATTRIBUTES[c.key]
            numeric = RUN_ATTRIBUTES[c.key] in ("start_time", "end_time")
            if c.op == "IS NULL":
                where.append(f"({col} IS NULL OR toString({col}) = '')")
            elif c.op == "IS NOT NULL":
                where.append(f"({col} IS NOT NULL AND toString({col}) != '')")
            else:
                where.append(_cmp_sql(col, c, p, i, numeric))
            continue
        if c.kind == "dataset":
            cond = _cmp_sql(DATASET_KEYS[c.key], c, p, i, False)
            where.append(f"r.run_id IN (SELECT run_id FROM run_inputs FINAL WHERE {cond})")
            continue
        table, numeric = {"metric": ("latest_metrics", True), "param": ("params", False), "tag": ("tags", False)}[c.kind]
        if c.op == "IS NULL":
            where.append(f"r.run_id NOT IN (SELECT run_id FROM {table} WHERE key = {{k{i}:String}})")
        elif c.op == "IS NOT NULL":
            where.append(f"r.run_id IN (SELECT run_id FROM {table} WHERE key = {{k{i}:String}})")
        else:
            cond = _cmp_sql("value", c, p, i, numeric)
            where.append(f"r.run_id IN (SELECT run_id FROM {table} WHERE key = {{k{i}:String}} AND {cond})")
    joins, orders = [], []
    for j, o in enumerate(order_by):
        direction = "ASC" if o.ascending else "DESC"
        if o.kind == "attribute":
            orders.append(f"r.{RUN_ATTRIBUTES[o.key]} {direction} NULLS LAST")
            continue
        table = {"metric": "latest_metrics", "param": "params", "tag": "tags"}[o.kind]
        p[f"ok{j}"] = o.key
        joins.append(f"LEFT JOIN (SELECT run_id, value AS o{j} FROM {table} WHERE key = {{ok{j}:String}}) AS j{j} "
                     f"ON j{j}.run_id = r.run_id")
        orders.append(f"j{j}.o{j} {direction} NULLS LAST")
    if not any(o.kind == "attribute" and RUN_ATTRIBUTES[o.key] == "start_time" for o in order_by):
        orders.append("r.start_time DESC")
    orders.append("r.run_id ASC")
    p["lim"], p["off"] = max_results, offset
    sql = (f"SELECT r.run_id FROM runs AS r {' '.join(joins)} WHERE {' AND '.join(where)} "
           f"ORDER BY {', '.join(orders)} LIMIT {{lim:UInt64}} OFFSET {{off:UInt64}}")
    return sql, p
