"""``get-history-bulk-interval`` sampling: :func:`sample_positions` against mlflow server's own SQL store."""

from __future__ import annotations

from pathlib import Path

import pytest

from query.interval_sample import sample_positions


@pytest.mark.parametrize(("n", "k", "kept"), [
    (0, 5, []), (1, 1, [0]), (3, 5, [0, 1, 2]), (5, 5, [0, 1, 2, 3, 4]), (10, 1, [9]), (10, 2, [0, 9]),
    (10, 3, [0, 4, 9]), (10, 5, [0, 2, 4, 6, 9]), (7, 4, [0, 2, 4, 6]), (11, 10, [0, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
])
def test_positions_table(n: int, k: int, kept: list[int]) -> None:
    assert sample_positions(n, k) == kept


def test_positions_are_the_ones_mlflows_sql_store_keeps(tmp_path: Path) -> None:
    """The stock server's store (SQLite, NTILE window query) picks the same steps for every size tried."""
    from mlflow.entities import Metric
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "artifacts"))
    exp = store.create_experiment("sampling")
    for n in (0, 1, 2, 3, 5, 8, 9, 10, 11, 13, 17, 24, 31, 39):
        steps = [3 * i + (i % 2) for i in range(n)]  # uneven gaps: positions, not step values, decide
        run_id = store.create_run(exp, "u", 0, [], f"n{n}").info.run_id
        if steps:
            store.log_batch(run_id, [Metric("m", float(s), 1, s) for s in steps], [], [])
        for k in (1, 2, 3, 4, 5, 7, 10, 16, 31, 40):
            got = [m.step for m in store.get_metric_history_bulk_interval([run_id], "m", k, None, None)]
            assert got == [steps[i] for i in sample_positions(n, k)], (n, k)
