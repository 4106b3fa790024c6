"""The model-registry domain: commands, validation, the state machine, pure folds. No I/O.

MLflow's model registry, event-sourced: registered models; versions numbered
1, 2, 3 … per model and never reused (even after a delete); stages
``None`` / ``Staging`` / ``Production`` / ``Archived`` with
``archive_existing_versions``; aliases (``@champion``); tags; descriptions;
deletes. ::

    events = decide(state, SetAlias(name="iris", alias="champion", version=3),
                    now_ms, actor="ana", new_id=new_id)
    # append ``events`` to the log, then:
    state = reduce(apply, events, state)

**Entity: a stable model id, not the name.** ``create_model`` mints an id
(``new_id()``, 32 hex chars); it is the envelope ``entity`` (and so the Kafka
key) of every event of that model for its whole life. The name is data:
``registered_model_created`` sets it, ``registered_model_renamed`` changes it,
and the fold keeps a name index (``RegistryState.names``: live name -> id).
What that buys:

* a rename is one event on the model's own stream, so the model's trail
  (:func:`history`) is unbroken across renames and asking by the old name
  still finds it (the model *most recently* called that name);
* ``as_of(events, t)`` before a rename has the old name in its index, so
  reads by the old name work at that time;
* a name freed by a delete or a rename can be taken by a new model (a new id,
  versions from 1 again) without mixing the two models' events;
* one model's events stay ordered in one partition.

The price: name uniqueness is a check across models, so ``decide`` for
``CreateModel`` / ``RenameModel`` needs the live name index (the service
serialises those per *name*; everything else per model id).

**One state shape for one model or all.** :class:`RegistryState` holds models
by id plus the name index. The whole registry is ``project(all_events)``; one
model's state is ``project(that_model's_events)`` — the same ``decide`` and
``apply`` run on either, which is how the service works: take the model's
lock, load its state, ``decide``, append, ``apply``.

Who and when live in the envelope (``Event.actor``, ``Event.ts_ms``); bodies
are in :mod:`producer.registry_events`. Errors: ``NotFoundError`` (unknown or
deleted model, missing or deleted version, unknown alias in a read),
``ConflictError`` (name taken), ``ContractError`` (a ``ValueError``: invalid
stage, alias, name, tag or version; ``RemoteFileUriError``, a ``file:`` URI of
another host, which MLflow's server answers with a 500).
"""

from producer.registry_events import STAGES

from ._commands import (
    Command,
    CreateModel,
    CreateVersion,
    DeleteAlias,
    DeleteModel,
    DeleteModelTag,
    DeleteVersion,
    DeleteVersionTag,
    RenameModel,
    SetAlias,
    SetModelTag,
    SetVersionTag,
    TransitionStage,
    UpdateModelDescription,
    UpdateVersionDescription,
)
from ._decide import decide
from ._fold import apply, as_of, project, replay
from ._history import AuditEntry, Change, history, model_history, model_id_for_name
from ._reads import (
    ModelsUri,
    aliases_of,
    get_model,
    get_model_by_id,
    get_version,
    get_version_by_alias,
    latest_versions,
    list_models,
    parse_models_uri,
    resolve_uri,
    version_in,
)
from ._sources import (
    ALLOWED_SCHEMES_ENV,
    RemoteFileUriError,
    check_model_source,
    check_run_source,
    check_source_host,
    is_local,
)
from ._state import EMPTY, ModelState, RegistryState, VersionState
from ._validate import ACTIVE_STAGES, canonical_stage

__all__ = [
    # state
    "RegistryState",
    "ModelState",
    "VersionState",
    "EMPTY",
    "STAGES",
    "ACTIVE_STAGES",
    "canonical_stage",
    # commands
    "Command",
    "CreateModel",
    "RenameModel",
    "UpdateModelDescription",
    "SetModelTag",
    "DeleteModelTag",
    "DeleteModel",
    "CreateVersion",
    "UpdateVersionDescription",
    "SetVersionTag",
    "DeleteVersionTag",
    "TransitionStage",
    "DeleteVersion",
    "SetAlias",
    "DeleteAlias",
    "decide",
    "check_run_source",
    "check_model_source",
    "check_source_host",
    "is_local",
    "RemoteFileUriError",
    "ALLOWED_SCHEMES_ENV",
    # fold
    "apply",
    "project",
    "replay",
    "as_of",
    # reads
    "get_model",
    "get_model_by_id",
    "list_models",
    "get_version",
    "version_in",
    "get_version_by_alias",
    "aliases_of",
    "latest_versions",
    "ModelsUri",
    "parse_models_uri",
    "resolve_uri",
    # audit
    "AuditEntry",
    "Change",
    "history",
    "model_history",
    "model_id_for_name",
]
