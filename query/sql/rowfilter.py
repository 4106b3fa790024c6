"""Row filtering of the SQL endpoint for users who may not read everything (auth on, not an admin).

Such a user's query runs in a sandbox database of its own kind — named by a digest of the filter, so
users with the same filter share it — whose views are the documented views **with a WHERE clause**:

* ``runs``, ``experiments``: ``experiment_id`` readable;
* ``metrics``, ``latest_metrics``, ``params``, ``tags``: ``run_id`` of a run whose experiment is readable
  (from ``run_fields``);
* ``model_versions``: ``name`` readable; ``registry_events``: ``model_id`` of a readable model.

The policy accepts only that sandbox as a qualifying database, so ``runledger.metrics`` cannot reach
around the filter, and the engine session's current database is the sandbox. :func:`view_sql` is pure;
``tests/integration/test_auth_sql.py`` runs every view through it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import NamedTuple

from auth import ReadableSet

__all__ = ["RowScope", "view_sql", "sandbox_for"]


class RowScope(NamedTuple):
    experiments: ReadableSet
    """Readable experiment ids."""
    model_names: ReadableSet
    """Readable registered-model names."""
    model_ids: ReadableSet
    """The same models by id (``registry_events`` is keyed by id; names change)."""


def _quote(v: str) -> str:
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _member(column: str, s: ReadableSet) -> str:
    if not s.ids:
        return "1" if s.everything_except else "0"
    values = ", ".join(_quote(v) for v in sorted(s.ids))
    return f"{column} {'NOT IN' if s.everything_except else 'IN'} ({values})"


def view_sql(view: str, database: str, scope: RowScope) -> str:
    """The SELECT that the filtered sandbox's view ``view`` runs over ``database``'s view of that name."""
    src = f"`{database}`.`{view}`"
    if view in ("runs", "experiments"):
        where = _member("experiment_id", scope.experiments)
    elif view in ("metrics", "latest_metrics", "params", "tags"):
        where = (f"run_id IN (SELECT run_id FROM `{database}`.`run_fields` FINAL WHERE field = 'experiment_id' "
                 f"AND {_member('value', scope.experiments)})")
    elif view == "model_versions":
        where = _member("name", scope.model_names)
    elif view == "registry_events":
        where = _member("model_id", scope.model_ids)
    else:
        raise ValueError(f"no row filter is defined for view {view!r}: add one before exposing it")
    return f"SELECT * FROM {src} WHERE {where}"


def sandbox_for(database: str, views: Iterable[str], scope: RowScope) -> str:
    """The name of the filtered sandbox for ``scope`` (the same filter, the same name)."""
    digest = hashlib.sha256("\n".join(view_sql(v, database, scope) for v in sorted(views)).encode()).hexdigest()
    return f"{database}_sqlf_{digest[:20]}"
