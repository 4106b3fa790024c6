"""The whole event contract in one table: every body type by its wire name.

Built here, explicitly, from the three modules that define bodies — nothing
registers itself on import, so what the codec accepts is exactly this list:

* :data:`producer.events.TRACKING_BODIES` — experiments, runs, params, tags, metrics;
* :data:`producer.registry_events.REGISTRY_BODIES` — the model registry;
* :data:`producer.mlflow_events.MLFLOW_BODIES` — MLflow-only facts (run inputs and outputs, logged models);
* :data:`producer.auth_events.AUTH_BODIES` — users, API tokens and permissions.
"""

from __future__ import annotations

from .auth_events import AUTH_BODIES
from .events import TRACKING_BODIES, Body
from .mlflow_events import MLFLOW_BODIES
from .registry_events import REGISTRY_BODIES

__all__ = ["EVENT_TYPES", "ALL_BODIES"]

ALL_BODIES: tuple[type[Body], ...] = (*TRACKING_BODIES, *REGISTRY_BODIES, *MLFLOW_BODIES, *AUTH_BODIES)


def _table(bodies: tuple[type[Body], ...]) -> dict[str, type[Body]]:
    table: dict[str, type[Body]] = {}
    for cls in bodies:
        if cls.TYPE in table:
            raise RuntimeError(f"event type {cls.TYPE!r} is defined twice ({table[cls.TYPE].__name__}, {cls.__name__})")
        table[cls.TYPE] = cls
    return table


#: Wire name -> body type, for every event runledger ever produced.
EVENT_TYPES: dict[str, type[Body]] = _table(ALL_BODIES)
