"""The read model's pure parts: merging metric points into latest values, and run search in memory."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from producer import events as ev
from producer.events import Event, Source
from producer.ids import new_id
from query.filters import parse_filter, parse_order_by
from query.read_model import ReadModel, _merge_scalar, merge_points
from query.run_search import search, supported

_SRC = Source(host="t", pid=1, rank=0)


def _event(entity: str, body: ev.Body, ts: int = 1) -> Event:
    return Event(id=new_id(), type=body.TYPE, entity=entity, ts_ms=ts, body=body, source=_SRC)


def test_latest_is_greatest_step_then_timestamp_then_last_written() -> None:
    latest: dict[str, list[object]] = {}
    merge_points(latest, ("a", "a", "a"), (1, 3, 2), (10, 5, 50), (0.1, 0.3, 0.2))
    assert latest["a"][:6] == [0.3, 3, 50, 0.1, 0.3, None]  # step 2 after step 3: count needs ClickHouse
    merge_points(latest, ("a", "a"), (3, 3), (5, 5), (0.9, 0.4))  # ties on (step, ts): the last written wins
    assert latest["a"][0] == 0.4


def test_count_is_kept_while_steps_grow_and_nan_does_not_hide_min_max() -> None:
    latest: dict[str, list[object]] = {}
    merge_points(latest, ("k",) * 4, (0, 1, 2, 3), (1, 2, 3, 4), (float("nan"), 2.0, -1.0, 5.0))
    value, step, ts, vmin, vmax, count = latest["k"][:6]
    assert (value, step, ts, vmin, vmax, count) == (5.0, 3, 4, -1.0, 5.0, 4)
    nan_only: dict[str, list[object]] = {}
    merge_points(nan_only, ("k",), (0,), (1,), (float("nan"),))
    assert math.isnan(nan_only["k"][0])  # type: ignore[arg-type]


def test_model_folds_runs_and_serves_search() -> None:
    m = ReadModel()
    m.apply([_event("e1", ev.ExperimentCreated(name="exp"))])
    for rid, lr, loss, start in (("r1", "0.1", 0.5, 1), ("r2", "0.2", 0.1, 2), ("r3", "0.3", float("nan"), 3)):
        m.apply([_event(rid, ev.RunCreated(experiment_id="e1", name=f"run_{rid}", start_time_ms=start)),
                 _event(rid, ev.ParamsLogged(params=(("lr", lr),))),
                 _event(rid, ev.MetricsLogged(keys=("loss",), steps=(0,), timestamps_ms=(1,), values=(loss,)))])
    m.apply([_event("r4", ev.RunCreated(experiment_id="e1", start_time_ms=4))])
    m.apply([_event("r2", ev.RunDeleted())])
    stages = ("active",)
    by_loss = search(m.state.runs.values(), m.latest, ["e1"], (), parse_order_by(["metrics.loss ASC"]), stages, 10, 0)
    assert by_loss == ["r1", "r3", "r4"]  # values, then NaN, then runs without the metric
    desc = search(m.state.runs.values(), m.latest, ["e1"], (), parse_order_by(["metrics.loss DESC"]), stages, 10, 0)
    assert desc == ["r1", "r3", "r4"]
    assert search(m.state.runs.values(), m.latest, ["e1"], parse_filter("params.lr LIKE '0.%'"), (),
                  ("active", "deleted"), 10, 0) == ["r3", "r2", "r1"]  # default order: start_time DESC
    assert search(m.state.runs.values(), m.latest, ["e1"], parse_filter("attributes.run_name LIKE 'run\\_r_'"),
                  (), stages, 1, 1) == ["r1"]
    assert [e.name for e in m.experiments(stages)] == ["exp"]
    assert m.metrics("r1")["loss"]["value"] == 0.5


def test_searches_the_model_cannot_answer_go_to_sql() -> None:
    assert not supported(parse_filter("datasets.name = 'd'"), ())
    assert not supported(parse_filter("metrics.loss IN ('1')"), ())
    assert supported(parse_filter("metrics.loss < 1 AND tags.t = 'x'"), parse_order_by(["params.p"]))


_finite_or_not = st.one_of(st.floats(-5, 5), st.sampled_from([float("nan"), float("inf"), -float("inf"), 0.5]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 40), st.integers(0, 3),
                                   _finite_or_not), min_size=40, max_size=300), min_size=1, max_size=4),
       st.booleans())
def test_numpy_merge_equals_point_by_point(batches: list[list[tuple[str, int, int, float]]], ordered: bool) -> None:
    fast: dict[str, list[object]] = {}
    slow: dict[str, list[object]] = {}
    steps_seen: dict[str, set[int]] = {}
    for i, raw in enumerate(batches):
        # ordered: training loops log growing steps, and the count stays exact
        batch = [(k, 1000 * i + j, t, v) for j, (k, _, t, v) in enumerate(raw)] if ordered else raw
        keys, steps, ts, values = (tuple(c) for c in zip(*batch, strict=True))
        merge_points(fast, keys, steps, ts, values)
        _merge_scalar(slow, keys, steps, ts, values)
        for k, step in zip(keys, steps, strict=True):
            steps_seen.setdefault(k, set()).add(step)
    assert fast.keys() == slow.keys()
    for k, f in fast.items():
        s = slow[k]
        assert [repr(x) for x in f[:5] + f[6:]] == [repr(x) for x in s[:5] + s[6:]], k
        assert f[5] in (None, len(steps_seen[k])) and s[5] in (None, len(steps_seen[k])), k
        if s[5] is not None or ordered:
            assert f[5] == len(steps_seen[k]), k  # numpy's count is exact wherever the scalar one is


class _FlakyStore:
    """Accepts the log and metric_points, then fails once on model_metrics: a write that failed part-way."""

    def __init__(self) -> None:
        self.inserted: list[str] = []
        self.fail_once = True

    def query_rows(self, sql: str, parameters: object = None, settings: object = None) -> list[tuple[object, ...]]:
        return []

    def insert_columns(self, table: str, columns: object) -> None:
        if table == "model_metrics" and self.fail_once:
            self.fail_once = False
            raise RuntimeError("ClickHouse went away")
        self.inserted.append(table)

    def command(self, sql: str, parameters: object = None) -> None:
        pass


def test_a_write_that_failed_part_way_is_never_read_as_one_row_per_step() -> None:
    import pytest

    from ingest.writer import Writer

    store = _FlakyStore()
    writer, model = Writer(store), ReadModel()  # type: ignore[arg-type]
    writer.listeners.append(model.apply)
    writer.failure_listeners.append(model.failed)
    batch = [_event("r1", ev.MetricsLogged(keys=("loss",) * 3, steps=(0, 1, 2), timestamps_ms=(1, 1, 1),
                                           values=(1.0, 2.0, 3.0), model_id="m-1"))]
    with pytest.raises(RuntimeError):
        writer.write(batch)
    assert store.inserted.count("metric_points") == 1 and "loss" not in model.latest.get("r1", {})
    writer.write(batch)  # the caller's retry: metric_points now holds every point twice
    assert store.inserted.count("metric_points") == 2
    assert model.metrics("r1")["loss"]["count"] == 3 and not model.single_rows("r1", "loss")
    writer.write([_event("r2", ev.MetricsLogged(keys=("loss",), steps=(0,), timestamps_ms=(1,), values=(1.0,)))])
    assert model.single_rows("r2", "loss")


def test_metric_columns_find_the_same_page_as_visiting_every_run() -> None:
    """The vectorised path (a metric comparison scans one column; an order led by a metric walks it until
    the page and its ties are in) answers exactly as the run-by-run path, on data full of ties, NaN,
    missing keys, re-logged values, deleted runs and other experiments."""
    import random

    rnd = random.Random(7)
    m = ReadModel()
    m.apply([_event("e1", ev.ExperimentCreated(name="a")), _event("e2", ev.ExperimentCreated(name="b"))])
    for i in range(300):
        rid = f"r{i:03d}"
        m.apply([_event(rid, ev.RunCreated(experiment_id=rnd.choice(["e1", "e1", "e2"]), start_time_ms=rnd.randrange(5)))])
        keys = [k for k in ("loss", "acc") if rnd.random() < 0.8]
        for step in range(rnd.randrange(1, 3)):  # a second step moves the latest value (the column follows)
            values = tuple(rnd.choice([0.1, 0.2, 0.5, 0.5, float("nan"), rnd.random()]) for _ in keys)
            m.apply([_event(rid, ev.MetricsLogged(keys=tuple(keys), steps=(step,) * len(keys),
                                                  timestamps_ms=(1,) * len(keys), values=values))])
        if rnd.random() < 0.1:
            m.apply([_event(rid, ev.RunDeleted())])
    filters = ["", "metrics.loss < 0.5", "metrics.loss >= 0.5", "metrics.acc != 0.5", "metrics.loss = 0.5",
               "metrics.acc IS NULL", "metrics.loss <= 0.2 AND metrics.acc > 0.1"]
    orders = [[], ["metrics.loss"], ["metrics.loss DESC"], ["metrics.acc", "metrics.loss DESC"],
              ["attributes.start_time"], ["metrics.acc DESC", "attributes.start_time ASC"]]
    for flt in filters:
        for order in orders:
            for page in ((5, 0), (5, 5), (3, 40), (1000, 0), (1, 0)):
                args = (["e1"], parse_filter(flt), parse_order_by(order), ("active",), *page)
                visited = search(m.state.runs.values(), m.latest, *args)
                assert search(m.state.runs, m.latest, *args, m.columns) == visited, (flt, order, page)
                assert m.search(*args) == visited
    # a write after a search: the column is read again (the run with the lowest loss now has the highest)
    first = m.search(["e1"], (), parse_order_by(["metrics.loss"]), ("active",), 1, 0)[0]
    m.apply([_event(first, ev.MetricsLogged(keys=("loss",), steps=(9,), timestamps_ms=(1,), values=(9.0,)))])
    args = (["e1"], parse_filter("metrics.loss > 1"), parse_order_by(["metrics.loss DESC"]), ("active",), 5, 0)
    assert m.search(*args) == search(m.state.runs.values(), m.latest, *args) == [first]


def test_derived_values_are_rebuilt_when_the_run_changes_and_dropped_least_recently_used(monkeypatch: object) -> None:
    import query.read_model as rm

    m = ReadModel()
    m.apply([_event("e1", ev.ExperimentCreated(name="exp"))] +
            [_event(f"r{i}", ev.RunCreated(experiment_id="e1", start_time_ms=i)) for i in range(3)])
    built: list[str] = []

    def build(run: object, latest: dict[str, list[object]]) -> tuple[str, dict[str, object]]:
        built.append(run.run_id)  # type: ignore[attr-defined]
        return run.run_id, {k: v[0] for k, v in latest.items()}  # type: ignore[attr-defined]

    assert m.derived("r0", build) == ("r0", {}) and m.derived("r0", build) == ("r0", {})
    assert built == ["r0"]  # the second read is the kept value
    m.apply([_event("r1", ev.MetricsLogged(keys=("loss",), steps=(0,), timestamps_ms=(1,), values=(0.5,)))])
    assert m.derived("r0", build) == ("r0", {}) and built == ["r0"]  # another run's event changes nothing
    m.apply([_event("r0", ev.MetricsLogged(keys=("loss",), steps=(1,), timestamps_ms=(1,), values=(0.25,)))])
    assert m.derived("r0", build) == ("r0", {"loss": 0.25}) and built == ["r0", "r0"]
    assert m.derived("missing", build) is None
    m.derived("r2", build)
    m.apply([_event("r2", ev.RunDeleted())])
    m.derived("r2", build)  # deleted runs are still read (lifecycle_stage): built again
    assert built == ["r0", "r0", "r2", "r2"]
    monkeypatch.setattr(rm, "DERIVED_RUNS", 1)  # type: ignore[attr-defined]
    m.derived("r1", build)  # pushes r0 (and r2) out
    m.derived("r0", build)
    assert built == ["r0", "r0", "r2", "r2", "r1", "r0"]
    fresh = ReadModel()
    fresh.apply([_event("e1", ev.ExperimentCreated(name="exp")),
                 _event("r0", ev.RunCreated(experiment_id="e1", start_time_ms=0))])
    m.replace(fresh)  # a rebuild: nothing built from the old contents is kept
    assert m.derived("r0", build) == ("r0", {}) and built[-1] == "r0" and len(built) == 7
