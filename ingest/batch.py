"""Columnar rows per table: what one group of events writes, ready for a Native insert."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TableRows", "Batch"]

#: Tables in insert order: the log first, then the core projections (then any others, in first-use order).
_CORE = ("events", "metric_points", "run_fields", "run_params", "run_tags", "experiment_fields", "experiment_tags")


@dataclass(slots=True)
class TableRows:
    """Columnar rows for one table: ``columns[name]`` are parallel lists."""

    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), ()))

    def extend(self, **values: Any) -> None:
        for name, v in values.items():
            self.columns[name].append(v)


@dataclass(slots=True)
class Batch:
    """Everything one group of events writes, table by table (``table(name, columns)`` creates on first use)."""

    tables_by_name: dict[str, TableRows] = field(default_factory=dict)

    def table(self, name: str, *columns: str) -> TableRows:
        rows = self.tables_by_name.get(name)
        if rows is None:
            rows = self.tables_by_name[name] = TableRows({c: [] for c in columns})
        return rows

    def rows(self, name: str) -> int:
        """Number of rows for ``name`` (0 if the batch does not touch it)."""
        t = self.tables_by_name.get(name)
        return 0 if t is None else len(t)

    def tables(self) -> Iterator[tuple[str, TableRows]]:
        """Non-empty tables in insert order: the log first, then projections."""
        for name in _CORE:
            rows = self.tables_by_name.get(name)
            if rows is not None and len(rows):
                yield name, rows
        for name, rows in self.tables_by_name.items():
            if name not in _CORE and len(rows):
                yield name, rows
