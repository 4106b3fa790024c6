"""The in-memory read model: current tracking state, event-sourced, fed by the writer (embedded mode).

Reads of run state, experiments and run search are answered from memory —
a ClickHouse query costs 3-20 ms even on empty tables (planning the views,
``FINAL`` merges), a dictionary lookup microseconds. ClickHouse keeps the
log, metric points (history, downsampling), as-of reads and analytics.

* **state** — :class:`tracking.TrackingState`, the same fold ``as_of`` reads
  and the projections use (per-field newest version wins), so live state,
  rebuild and as-of agree by construction;
* **latest metrics** — per run and key ``[value, step, timestamp ms, min,
  max, count]``, merged as ClickHouse's ``latest_metrics`` view merges:
  value of the greatest ``(step, timestamp)``, ``max(step)``, ``max(timestamp)``,
  ``min``/``max`` over every point written, ``count`` = distinct steps. The
  count is kept while steps arrive past the largest one seen; a step at or
  below it may repeat one, so the count turns ``None`` ("ask ClickHouse")
  for that key. Two points of one key at the same step *and* timestamp: the
  one written last wins, as in ``metric_points`` (README: re-logging a step
  replaces it); ClickHouse's ``argMax`` in the ``latest_metrics`` view picks
  one of the tied points by its merge order, and a model loaded at start-up
  takes the view's;
* **runs with inputs/outputs** — ids only, so a run without any skips that query.

Built at start-up from the log (``load``), then :meth:`ReadModel.apply` runs
inside the writer's successful write, before the writer's caller hears of it:
a read after a write sees it. One process writes in embedded mode, so the
model is complete; in Kafka mode other processes ingest, and the server reads
ClickHouse instead (no model). ``POST /api/v1/admin/rebuild`` stops
trusting its row counts while the replay re-inserts rows it does not see,
then reloads it from the rebuilt tables.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import numpy as np

from ingest.eventlog import EVENT_COLUMNS, row_to_event
from ingest.sink import ClickHouseStore
from producer import events as ev
from producer.events import TRACKING_BODIES, Event
from producer.mlflow_events import RunInputsLogged, RunOutputsLogged
from tracking import Experiment, Run, TrackingState, apply

from .filters import Clause, OrderBy
from .run_search import Latest, MetricColumn, search

__all__ = ["ReadModel", "ModelView"]

log = logging.getLogger("runledger.read_model")

#: Runs whose :meth:`ReadModel.derived` value is kept (a 200-metric run's MLflow JSON is ~13 KB).
DERIVED_RUNS = 4096
T = TypeVar("T")

_IO_TYPES = (RunInputsLogged.TYPE, RunOutputsLogged.TYPE)
_STATE_TYPES = tuple(b.TYPE for b in TRACKING_BODIES if b is not ev.MetricsLogged) + _IO_TYPES


def merge_points(latest: dict[str, Latest], keys: Sequence[str], steps: Sequence[int], ts: Sequence[int],
                 values: Sequence[float], created: list[str] | None = None) -> bool:
    """Merge one batch of a run's points into its ``key -> Latest`` map (in place; points in log order).

    Long series per key go through numpy (a few ns a point); short mixed batches point by point (the
    per-key numpy overhead would cost more). ``tests/unit/test_read_model.py`` checks both give the same.
    True if some key's count is no longer known (``None``). Keys new to ``latest`` are appended to ``created``.
    """
    n = len(keys)
    if n < 64:
        return _merge_scalar(latest, keys, steps, ts, values, created)
    uniq = dict.fromkeys(keys)
    if len(uniq) * 16 > n:
        return _merge_scalar(latest, keys, steps, ts, values, created)
    s = np.asarray(steps, dtype=np.int64)
    t = np.asarray(ts, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if len(uniq) == 1:
        return _merge_group(latest, keys[0], s, t, v, created)
    index = {k: i for i, k in enumerate(uniq)}
    codes = np.fromiter(map(index.__getitem__, keys), dtype=np.int64, count=n)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniq) + 1))
    lost = False
    for i, key in enumerate(uniq):
        idx = order[bounds[i]:bounds[i + 1]]
        lost |= _merge_group(latest, key, s[idx], t[idx], v[idx], created)
    return lost


def _merge_group(latest: dict[str, Latest], key: str, s: Any, t: Any, v: Any, created: list[str] | None = None) -> bool:
    """Merge one key's points (numpy arrays) as :func:`_merge_scalar` would, point by point."""
    top_s = int(s.max())
    at_top = s == top_s
    top_t = int(t[at_top].max())
    best = float(v[np.flatnonzero(at_top & (t == top_t))[-1]])  # ties on (step, ts): the last written wins
    vmin, vmax, max_t = float(np.fmin.reduce(v)), float(np.fmax.reduce(v)), int(t.max())
    distinct = len(s) if len(s) < 2 or bool((s[1:] > s[:-1]).all()) else int(np.unique(s).size)  # sort: rare
    m = latest.get(key)
    if m is None:
        latest[key] = [best, top_s, max_t, vmin, vmax, distinct, top_s, top_t, int(s.min()), distinct == len(s)]
        if created is not None:
            created.append(key)
        return False
    if (top_s, top_t) >= (m[6], m[7]):
        m[0], m[6], m[7] = best, top_s, top_t
    fresh = int(s.min()) > m[1] and distinct == len(s)
    if m[5] is not None:
        m[5] = m[5] + len(s) if fresh else None
    m[9] = m[9] and fresh
    m[1] = max(m[1], top_s)
    m[2] = max(m[2], max_t)
    if m[8] is not None:
        m[8] = min(m[8], int(s.min()))
    if not math.isnan(vmin):
        m[3] = vmin if math.isnan(m[3]) else min(m[3], vmin)
        m[4] = vmax if math.isnan(m[4]) else max(m[4], vmax)
    return m[5] is None


def _merge_scalar(latest: dict[str, Latest], keys: Sequence[str], steps: Sequence[int], ts: Sequence[int],
                  values: Sequence[float], created: list[str] | None = None) -> bool:
    lost = False
    for k, s, t, raw in zip(keys, steps, ts, values, strict=True):
        v = float(raw)
        m = latest.get(k)
        if m is None:
            latest[k] = [v, s, t, v, v, 1, s, t, s, True]
            if created is not None:
                created.append(k)
            continue
        # m: value, max step, max ts, min, max, count, step of value, ts of value, min step (None: unknown),
        # no step ever written twice (so metric_points holds one row per step: no FINAL, the rollup is exact)
        if (s, t) >= (m[6], m[7]):
            m[0], m[6], m[7] = v, s, t
        if s > m[1]:
            m[1] = s
            if m[5] is not None:
                m[5] += 1
        else:
            m[9] = False
            if m[5] is not None:
                m[5] = None
                lost = True
        m[2] = max(m[2], t)
        if m[8] is not None and s < m[8]:
            m[8] = s
        if not math.isnan(v):
            if v < m[3] or math.isnan(m[3]):
                m[3] = v
            if v > m[4] or math.isnan(m[4]):
                m[4] = v
    return lost


def _decoded(row: Sequence[Any]) -> Event | None:
    try:
        return row_to_event(row)
    except Exception as exc:  # an event that no longer decodes: ``rebuild`` dead-letters it with its reason
        log.warning("read model: event %s left out: %s", row[0], exc)
        return None


class ReadModel:
    """Current experiments, runs and latest metrics in memory; thread-safe (one writer, many readers)."""

    def __init__(self) -> None:
        self.state = TrackingState()
        self.latest: dict[str, dict[str, Latest]] = {}
        self.columns: dict[str, MetricColumn] = {}
        """Each metric key's series (the same ``Latest`` lists), read as one array by a search."""
        self.runs_with_io: set[str] = set()
        self.recount: set[str] = set()
        """Runs with a metric whose count is not known here (``None``): a read asks ClickHouse."""
        self.tainted: set[tuple[str, str]] = set()
        """(run, key) of series a failed write may have inserted part of: never read as one row per step."""
        self.trust_rows = True
        """False while a rebuild inserts rows the model does not see (``distrust_rows``)."""
        self.lock = threading.RLock()
        self.loaded_events = 0
        self.changed: dict[str, int] = {}
        """Entity id -> sequence number of the last event folded for it (what :meth:`derived` keys on)."""
        self._seq = 0
        self._generation = 0
        self._derived: OrderedDict[str, tuple[tuple[int, int], Callable[..., Any], Any]] = OrderedDict()

    # ------------------------------------------------------------- building

    @classmethod
    def load(cls, store: ClickHouseStore) -> ReadModel:
        """The model of everything in the log now (events folded; latest metrics from their projection)."""
        model, t0 = cls(), time.perf_counter()
        rows = store.query_rows(
            f"SELECT {EVENT_COLUMNS} FROM events FINAL WHERE type IN {{types:Array(String)}} ORDER BY event_id",
            {"types": list(_STATE_TYPES)})
        model.apply(e for r in rows if (e := _decoded(r)) is not None)
        rows_written = {(r, k): int(n) for r, k, n in store.query_rows(
            "SELECT run_id, key, sum(n) FROM metric_rollup GROUP BY run_id, key")}
        for rid, key, value, step, ts, vmin, vmax, count in store.query_rows(
                "SELECT run_id, key, value, step, toUnixTimestamp64Milli(timestamp), min_value, max_value, count "
                "FROM latest_metrics"):
            # the value's own (step, ts) is not in the view: its step is the max step; ts the max ts
            m = [float(value), step, ts, vmin, vmax, int(count), step, ts, None, rows_written.get((rid, key)) == int(count)]
            model.columns.setdefault(key, MetricColumn()).add(rid, m)
            model.latest.setdefault(rid, {})[key] = m
        model.loaded_events = len(rows)
        log.info("read model: %d events, %d runs, %d experiments in %.2f s", len(rows), len(model.state.runs),
                 len(model.state.experiments), time.perf_counter() - t0)
        return model

    def apply(self, events: Iterable[Event]) -> None:
        """Fold written events in (the writer calls this after its inserts succeeded)."""
        with self.lock:
            for e in events:
                self._seq += 1
                self.changed[e.entity] = self._seq
                body = e.body
                if isinstance(body, ev.MetricsLogged):
                    run_latest = self.latest.setdefault(e.entity, {})
                    created: list[str] = []
                    if merge_points(run_latest, body.keys, body.steps, body.timestamps_ms, body.values, created):
                        self.recount.add(e.entity)
                    self._columns(e.entity, run_latest, body.keys, created)
                elif isinstance(body, (RunInputsLogged, RunOutputsLogged)):
                    self.runs_with_io.add(e.entity)
                else:
                    apply(self.state, e)

    def _columns(self, run_id: str, run_latest: dict[str, Latest], keys: Sequence[str], created: Sequence[str]) -> None:
        """New series get their column row; every written key's column is re-read at its next search."""
        for k in created:
            self.columns.setdefault(k, MetricColumn()).add(run_id, run_latest[k])
        for k in dict.fromkeys(keys):
            self.columns[k].changed()

    def failed(self, events: Iterable[Event]) -> None:
        """A write failed part-way (the writer calls this): its series may hold rows the model never saw."""
        with self.lock:
            for e in events:
                if isinstance(e.body, ev.MetricsLogged):
                    self.tainted.update((e.entity, k) for k in set(e.body.keys))

    def replace(self, other: ReadModel) -> None:
        """Take ``other``'s contents (after a rebuild: loaded from the rebuilt tables, counting their rows)."""
        with self.lock:
            self.state, self.latest, self.runs_with_io, self.recount = (other.state, other.latest, other.runs_with_io,
                                                                        other.recount)
            self.columns = other.columns
            self._generation += 1  # every derived value was built from the replaced contents
            self._derived.clear()
            self.trust_rows, self.tainted = other.trust_rows, other.tainted

    def distrust_rows(self) -> None:
        """From now until :meth:`replace`: no series counts as one row per step (a rebuild's replay and
        catch-ups re-insert rows; ``FINAL`` and the exact downsampling path are used meanwhile)."""
        with self.lock:
            self.trust_rows = False

    # ---------------------------------------------------------------- reads

    def experiments(self, stages: Sequence[str], *, name: str | None = None,
                    ids: Sequence[str] | None = None) -> list[Experiment]:
        with self.lock:
            if name is not None:
                found = self.state.experiment_by_name(name)
                pool = [found] if found is not None else []
            elif ids is not None:
                pool = [e for i in ids if (e := self.state.experiment(i)) is not None]
            else:
                pool = [e for e in self.state.experiments.values() if e.name]
            out = [e for e in pool if (e.lifecycle_stage or "active") in stages
                   and (ids is None or e.experiment_id in ids)]
            return sorted(out, key=lambda e: (e.creation_time, e.experiment_id))

    def run(self, run_id: str) -> Run | None:
        return self.state.run(run_id)

    def metrics(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's latest metrics by key, sorted: ``{"value", "step", "timestamp", "min", "max", "count"}``
        (``count`` None: ask ClickHouse, see the module notes). Fresh dicts: the caller may keep them."""
        with self.lock:
            return {k: {"value": m[0], "step": m[1], "timestamp": m[2], "min": m[3], "max": m[4], "count": m[5]}
                    for k, m in sorted(self.latest.get(run_id, {}).items())}

    def search(self, experiment_ids: Sequence[str], clauses: Sequence[Clause], order_by: Sequence[OrderBy],
               stages: Sequence[str], max_results: int, offset: int) -> list[str]:
        with self.lock:
            return search(self.state.runs, self.latest, experiment_ids, clauses, order_by, stages, max_results,
                          offset, self.columns)

    def bounds(self, run_id: str, key: str) -> tuple[int, int, int] | None:
        """(first step, last step, distinct steps) of a series when known exactly, else None."""
        with self.lock:
            m = self.latest.get(run_id, {}).get(key)
            if m is None or m[5] is None or m[8] is None:
                return None
            return m[8], m[1], m[5]

    def single_rows(self, run_id: str, key: str) -> bool:
        """True if no step of the series was ever written twice: ``metric_points`` holds one row per step
        (no ``FINAL`` needed) and ``metric_rollup`` is exact for it."""
        with self.lock:
            m = self.latest.get(run_id, {}).get(key)
            return self.trust_rows and m is not None and bool(m[9]) and (run_id, key) not in self.tainted

    def derived(self, run_id: str, build: Callable[[Run, dict[str, Latest]], T]) -> T | None:
        """``build(run, its latest metrics by key)``, computed under the lock and kept until an event for the
        run is folded or a rebuild replaces the model (at most :data:`DERIVED_RUNS` runs, the least recently
        read dropped): a search page re-serialises only runs that changed. None if there is no such run."""
        with self.lock:
            run = self.state.run(run_id)
            if run is None:
                return None
            stamp = (self._generation, self.changed.get(run_id, 0))
            hit = self._derived.get(run_id)
            if hit is not None and hit[0] == stamp and hit[1] is build:
                self._derived.move_to_end(run_id)
                return cast(T, hit[2])
            value = build(run, self.latest.get(run_id, {}))
            self._derived[run_id] = (stamp, build, value)
            self._derived.move_to_end(run_id)
            if len(self._derived) > DERIVED_RUNS:
                self._derived.popitem(last=False)
            return value

    def has_io(self, run_id: str) -> bool:
        return run_id in self.runs_with_io

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"runs": len(self.state.runs), "experiments": len(self.state.experiments),
                    "metric_keys": sum(len(m) for m in self.latest.values())}


class ModelView:
    """The read model as the :class:`tracking.TrackingView` that ``decide`` reads (embedded mode): no
    ClickHouse query per command. Answers are copies taken under the lock, so the writer folding the next
    batch meanwhile cannot change what a decision is looking at."""

    def __init__(self, model: ReadModel) -> None:
        self.model = model

    def experiment(self, experiment_id: str) -> Experiment | None:
        with self.model.lock:
            e = self.model.state.experiment(experiment_id)
            return None if e is None else dataclasses.replace(e, tags=dict(e.tags), versions=dict(e.versions))

    def experiment_by_name(self, name: str) -> Experiment | None:
        with self.model.lock:
            e = self.model.state.experiment_by_name(name)
            return None if e is None else dataclasses.replace(e, tags=dict(e.tags), versions=dict(e.versions))

    def run(self, run_id: str) -> Run | None:
        with self.model.lock:
            r = self.model.state.run(run_id)
            return None if r is None else dataclasses.replace(r, params=dict(r.params), tags=dict(r.tags),
                                                               versions=dict(r.versions))

    def run_ids(self, experiment_id: str) -> list[str]:
        with self.model.lock:
            return self.model.state.run_ids(experiment_id)
