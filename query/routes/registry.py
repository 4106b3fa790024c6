"""The native registry API under /api/v1/registry: one write endpoint per command, reads with ``?as_of=``.

Writes turn the request into a :mod:`registry` command and run it through
the :class:`~registry.service.RegistryService`; the answer lists the events
recorded (id, type, position, time, actor) and the model (or version) after
them. With auth on, the actor is the authenticated user and no header can
change it; with auth off it is the HTTP Basic username, else the
``X-Runledger-Actor`` (or ``X-User``) header, else ``anonymous``.

Every read takes ``as_of`` (ISO 8601 or epoch ms): the registry as it was
then, folded from the log. Errors: 404 unknown or deleted model / version /
alias, 409 name taken (or the log kept refusing a command), 400 invalid
input (stage, alias, name, tag, version, URI, ``as_of``); a body that does
not fit its schema is FastAPI's 422.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

import registry as reg
from producer.errors import ContractError, NotFoundError
from registry.service import RegistryService

from ..auth.guard import grant_creator, move_model_grants, principal_of, readable_for
from ..errors_http import parse_time_ms
from ..registry_json import entry_json, event_json, model_json, version_json
from ..registry_startup import registry_service
from ..services import Services, get_services

router = APIRouter(prefix="/api/v1/registry", tags=["registry"])

MAX_ACTOR_LEN = 256
AS_OF = Query(None, description="read the registry as it was then: ISO 8601 (2026-11-20T10:00:00Z) or epoch ms")


def _service(services: Services = Depends(get_services)) -> RegistryService:
    return registry_service(services)


def actor_of(request: Request) -> str:
    """The authenticated user when auth is on (headers ignored); else the HTTP Basic username, else
    ``X-Runledger-Actor``, else ``X-User``, else ``anonymous`` (self-declared: auth off trusts everyone)."""
    principal = principal_of(request)
    if principal is not None:
        return principal.username
    auth = request.headers.get("authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            user = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, ValueError) as exc:
            raise ContractError("malformed Authorization header: Basic credentials must be base64 of "
                                "'user:password'") from exc
        if user:
            return _checked_actor(user)
    for header in ("x-runledger-actor", "x-user"):
        value = request.headers.get(header, "").strip()
        if value:
            return _checked_actor(value)
    return "anonymous"


def _checked_actor(actor: str) -> str:
    if len(actor) > MAX_ACTOR_LEN:
        raise ContractError(f"actor longer than {MAX_ACTOR_LEN} characters")
    return actor


def _as_of(as_of: str | None) -> int | None:
    return parse_time_ms(as_of)


# ------------------------------------------------------------------ bodies

Tags = dict[StrictStr, StrictStr]


class NewModel(BaseModel):
    name: StrictStr = Field(description="unique among live models; no '/' or ':'")
    description: StrictStr = ""
    tags: Tags = {}


class Rename(BaseModel):
    new_name: StrictStr


class Description(BaseModel):
    description: StrictStr


class TagValue(BaseModel):
    value: StrictStr


class NewVersion(BaseModel):
    source: StrictStr = Field(description="where the model lives: runs:/<run_id>/<path>, s3://..., models:/m-...")
    run_id: StrictStr | None = None
    run_link: StrictStr = ""
    description: StrictStr = ""
    tags: Tags = {}
    model_id: StrictStr | None = Field(None, description="the MLflow-3 logged model this version registers")


class StageChange(BaseModel):
    stage: StrictStr = Field(description="None, Staging, Production or Archived (any case)")
    archive_existing_versions: StrictBool = False


class AliasTarget(BaseModel):
    version: StrictInt


# ------------------------------------------------------------------ writes


async def _run(service: RegistryService, request: Request, command: reg.Command, *,
               version: int | None = None) -> dict[str, Any]:
    """Execute ``command`` as the request's actor: the events, then the model (None once deleted) and
    the version the command is about (when it still exists)."""
    actor = actor_of(request)
    events = await run_in_threadpool(service.execute, command, actor)
    state = service.state()
    model_id = events[0].entity if events else state.names.get(command.name, "")
    model = state.models.get(model_id)
    if isinstance(command, reg.CreateVersion):
        version = events[0].body.version  # type: ignore[attr-defined]
    out: dict[str, Any] = {"events": [event_json(e) for e in events], "model": None}
    if model is not None and not model.deleted:
        out["model"] = model_json(model)
        if version is not None and version in model.versions:
            out["version"] = version_json(model, model.versions[version])
    return out


@router.post("/models", summary="Create a registered model")
async def create_model(body: NewModel, request: Request, service: RegistryService = Depends(_service)) -> Any:
    out = await _run(service, request, reg.CreateModel(name=body.name, description=body.description,
                                                       tags=tuple(body.tags.items())))
    await run_in_threadpool(grant_creator, request, "registered_model", body.name)
    return out


@router.post("/models/{name}/rename", summary="Rename a registered model (its id, versions and trail stay)")
async def rename_model(name: str, body: Rename, request: Request, service: RegistryService = Depends(_service)) -> Any:
    out = await _run(service, request, reg.RenameModel(name=name, new_name=body.new_name))
    await run_in_threadpool(move_model_grants, request, name, body.new_name)
    return out


@router.patch("/models/{name}", summary="Update a registered model's description")
async def update_model(name: str, body: Description, request: Request,
                       service: RegistryService = Depends(_service)) -> Any:
    return await _run(service, request, reg.UpdateModelDescription(name=name, description=body.description))


@router.put("/models/{name}/tags/{key:path}", summary="Set a tag of a registered model")
async def set_model_tag(name: str, key: str, body: TagValue, request: Request,
                        service: RegistryService = Depends(_service)) -> Any:
    return await _run(service, request, reg.SetModelTag(name=name, key=key, value=body.value))


@router.delete("/models/{name}/tags/{key:path}", summary="Delete a tag of a registered model (absent: no-op)")
async def delete_model_tag(name: str, key: str, request: Request, service: RegistryService = Depends(_service)) -> Any:
    return await _run(service, request, reg.DeleteModelTag(name=name, key=key))


@router.delete("/models/{name}", summary="Delete a registered model (its name is free again)")
async def delete_model(name: str, request: Request, service: RegistryService = Depends(_service)) -> Any:
    return await _run(service, request, reg.DeleteModel(name=name))


@router.post("/models/{name}/versions", summary="Register a new version (numbered by the registry: 1, 2, 3 ...)")
async def create_version(name: str, body: NewVersion, request: Request,
                         service: RegistryService = Depends(_service)) -> Any:
    command = reg.CreateVersion(name=name, source=body.source, run_id=body.run_id, run_link=body.run_link,
                                description=body.description, tags=tuple(body.tags.items()), model_id=body.model_id)
    return await _run(service, request, command)


@router.patch("/models/{name}/versions/{version}", summary="Update a version's description")
async def update_version(name: str, version: int, body: Description, request: Request,
                         service: RegistryService = Depends(_service)) -> Any:
    command = reg.UpdateVersionDescription(name=name, version=version, description=body.description)
    return await _run(service, request, command, version=version)


@router.put("/models/{name}/versions/{version}/tags/{key:path}", summary="Set a tag of a version")
async def set_version_tag(name: str, version: int, key: str, body: TagValue, request: Request,
                          service: RegistryService = Depends(_service)) -> Any:
    command = reg.SetVersionTag(name=name, version=version, key=key, value=body.value)
    return await _run(service, request, command, version=version)


@router.delete("/models/{name}/versions/{version}/tags/{key:path}", summary="Delete a tag of a version (absent: no-op)")
async def delete_version_tag(name: str, version: int, key: str, request: Request,
                             service: RegistryService = Depends(_service)) -> Any:
    return await _run(service, request, reg.DeleteVersionTag(name=name, version=version, key=key), version=version)


@router.post("/models/{name}/versions/{version}/stage",
             summary="Move a version to a stage (optionally archiving the others in that stage)")
async def transition_stage(name: str, version: int, body: StageChange, request: Request,
                           service: RegistryService = Depends(_service)) -> Any:
    command = reg.TransitionStage(name=name, version=version, stage=body.stage,
                                  archive_existing_versions=body.archive_existing_versions)
    return await _run(service, request, command, version=version)


@router.delete("/models/{name}/versions/{version}", summary="Delete a version (and the aliases pointing at it)")
async def delete_version(name: str, version: int, request: Request, service: RegistryService = Depends(_service)) -> Any:
    return await _run(service, request, reg.DeleteVersion(name=name, version=version))


@router.put("/models/{name}/aliases/{alias}", summary="Point an alias (@champion) at a version, moving it if set")
async def set_alias(name: str, alias: str, body: AliasTarget, request: Request,
                    service: RegistryService = Depends(_service)) -> Any:
    return await _run(service, request, reg.SetAlias(name=name, alias=alias, version=body.version),
                      version=body.version)


@router.delete("/models/{name}/aliases/{alias}", summary="Delete an alias (absent: no-op)")
async def delete_alias(name: str, alias: str, request: Request, service: RegistryService = Depends(_service)) -> Any:
    return await _run(service, request, reg.DeleteAlias(name=name, alias=alias))


# ------------------------------------------------------------------- reads


@router.get("/models", summary="List live registered models (optionally as of a time)")
def list_models(request: Request, as_of: str | None = AS_OF,
                service: RegistryService = Depends(_service)) -> dict[str, Any]:
    t = _as_of(as_of)
    readable = readable_for(request, "registered_model")
    models = [m for m in reg.list_models(service.state(t)) if readable is None or readable.contains(m.name)]
    return {"models": [model_json(m, versions=False) for m in models], "as_of_ms": t}


@router.get("/models/{name}", summary="A model: versions, stages, aliases, tags, latest version per stage")
def get_model(name: str, as_of: str | None = AS_OF, service: RegistryService = Depends(_service)) -> dict[str, Any]:
    t = _as_of(as_of)
    return {**model_json(_model(service, name, t, as_of)), "as_of_ms": t}


@router.get("/models/{name}/versions/{version}", summary="One version of a model")
def get_version(name: str, version: int, as_of: str | None = AS_OF,
                service: RegistryService = Depends(_service)) -> dict[str, Any]:
    t = _as_of(as_of)
    model = _model(service, name, t, as_of)
    try:
        found = reg.version_in(model, _positive(version))
    except NotFoundError as exc:
        raise NotFoundError(f"{exc}{_when(as_of)}") from exc
    return {**version_json(model, found), "as_of_ms": t}


@router.get("/resolve", summary="Resolve models:/name/3, models:/name/Production, models:/name@alias, models:/name/latest")
def resolve(uri: str = Query(..., description="a models:/ URI"), as_of: str | None = AS_OF,
            service: RegistryService = Depends(_service)) -> dict[str, Any]:
    t = _as_of(as_of)
    name = reg.parse_models_uri(uri).name
    try:
        found = service.resolve(uri, t)
    except NotFoundError as exc:
        raise NotFoundError(f"{exc}{_when(as_of)}") from exc
    model = service.model(name, t)
    return {"uri": uri, **version_json(model, found), "as_of_ms": t}


@router.get("/models/{name}/history", summary="The audit trail: every event of a model (or version), who, when, "
                                                 "before -> after")
def history(name: str, version: int | None = Query(None, description="only the events about this version"),
            as_of: str | None = AS_OF, service: RegistryService = Depends(_service)) -> dict[str, Any]:
    t = _as_of(as_of)
    if version is not None:
        _positive(version)
    entries = service.history(name, version, t)
    if version is not None and not entries:
        raise NotFoundError(f"version {version} of registered model {name!r} has no history{_when(as_of)}")
    return {"name": name, "version": version, "as_of_ms": t, "entries": [entry_json(a) for a in entries]}


def _model(service: RegistryService, name: str, t: int | None, as_of: str | None) -> reg.ModelState:
    try:
        return service.model(name, t)
    except NotFoundError as exc:
        raise NotFoundError(f"{exc}{_when(as_of)}") from exc


def _positive(version: int) -> int:
    if version < 1:
        raise ContractError(f"version must be a positive integer, got {version}")
    return version


def _when(as_of: str | None) -> str:
    return "" if as_of is None else f" as of {as_of}"
