"""Every size limit runledger enforces, in one place.

Each limit has two numbers:

* ``api`` — what a *command* may carry: MLflow's own limit (``mlflow/utils/validation.py``)
  where MLflow has one. The tracking and registry domains refuse anything
  longer with MLflow's wording, whichever door the command came through
  (the producer, the native API, the MLflow API).
* ``stored`` — what the event *contract* decodes. It is never below ``api``
  (an accepted command always makes events that decode) and is **never
  lowered** once released: the log is immutable, and ``rebuild`` must decode
  every event it ever accepted. ``tests/unit/test_limits.py`` holds both rules.

Raise a limit here, never in a module of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Limit",
    "KEY",
    "PARAM_VALUE",
    "RUN_TAG_VALUE",
    "RUN_NAME",
    "EXPERIMENT_NAME",
    "EXPERIMENT_TAG_KEY",
    "EXPERIMENT_TAG_VALUE",
    "EXPERIMENT_ID",
    "TEXT",
    "REGISTRY_NAME",
    "REGISTRY_ALIAS",
    "REGISTRY_TAG_VALUE",
    "DATASET_NAME",
    "DATASET_DIGEST",
    "MLFLOW_JSON",
    "ENTITY",
    "ALL",
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_TAGS_PER_BATCH",
    "MAX_ENTITIES_PER_BATCH",
    "MAX_SEARCH_RESULTS",
    "MAX_EXPERIMENTS_PER_PAGE",
]


@dataclass(frozen=True, slots=True)
class Limit:
    """A length limit in characters."""

    api: int
    """Longest value a command may carry (MLflow's limit where it has one)."""
    stored: int
    """Longest value the contract decodes; ``>= api`` and never lowered once released."""


KEY = Limit(250, 250)
"""Metric, param and run-tag keys (MLflow ``MAX_ENTITY_KEY_LENGTH``)."""
PARAM_VALUE = Limit(6000, 8000)
"""Param values (MLflow ``MAX_PARAM_VAL_LENGTH``); the contract decoded 8,000 before, so it still does."""
RUN_TAG_VALUE = Limit(8000, 8000)
"""Run tag values (MLflow ``MAX_TAG_VAL_LENGTH``)."""
RUN_NAME = Limit(8000, 100_000)
"""A run's name is also its ``mlflow.runName`` tag, so it may be as long as a tag value."""
EXPERIMENT_NAME = Limit(500, 500)
"""MLflow ``MAX_EXPERIMENT_NAME_LENGTH``."""
EXPERIMENT_TAG_KEY = Limit(250, 250)
"""MLflow ``MAX_EXPERIMENT_TAG_KEY_LENGTH``."""
EXPERIMENT_TAG_VALUE = Limit(20_000, 100_000)
"""MLflow ``MAX_EXPERIMENT_TAG_VAL_LENGTH``; ``experiment_tag_set`` decoded up to 100,000 before."""
EXPERIMENT_ID = Limit(64, 64)
TEXT = Limit(100_000, 100_000)
"""Free text without a narrower limit: descriptions, artifact locations, sources, users."""
REGISTRY_NAME = Limit(256, 256)
REGISTRY_ALIAS = Limit(255, 255)
"""MLflow ``MAX_REGISTERED_MODEL_ALIAS_LENGTH``."""
REGISTRY_TAG_VALUE = Limit(100_000, 100_000)
"""MLflow ``MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH``."""
DATASET_NAME = Limit(500, 500)
DATASET_DIGEST = Limit(36, 36)
MLFLOW_JSON = Limit(20_000_000, 20_000_000)
"""Total size of the JSON objects one MLflow-only event carries (dataset inputs, model references)."""
ENTITY = Limit(256, 256)
"""An envelope's ``entity`` (run id, experiment id, model id)."""

#: Every limit by name, for the tests that hold the two rules above.
ALL: dict[str, Limit] = {
    "KEY": KEY, "PARAM_VALUE": PARAM_VALUE, "RUN_TAG_VALUE": RUN_TAG_VALUE, "RUN_NAME": RUN_NAME,
    "EXPERIMENT_NAME": EXPERIMENT_NAME, "EXPERIMENT_TAG_KEY": EXPERIMENT_TAG_KEY,
    "EXPERIMENT_TAG_VALUE": EXPERIMENT_TAG_VALUE, "EXPERIMENT_ID": EXPERIMENT_ID, "TEXT": TEXT,
    "REGISTRY_NAME": REGISTRY_NAME, "REGISTRY_ALIAS": REGISTRY_ALIAS, "REGISTRY_TAG_VALUE": REGISTRY_TAG_VALUE,
    "DATASET_NAME": DATASET_NAME, "DATASET_DIGEST": DATASET_DIGEST, "MLFLOW_JSON": MLFLOW_JSON, "ENTITY": ENTITY,
}

# Counts per request (MLflow's batch and page limits); commands only, the contract has no count limits.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_SEARCH_RESULTS = 50_000
MAX_EXPERIMENTS_PER_PAGE = 50_000
