"""``POST /ajax-api/2.0/mlflow/runs/create-promptlab-run``: the legacy prompt-engineering UI's run, as
``mlflow server`` 3.17.2 makes it (``create_promptlab_run_handler``, ``mlflow.utils.promptlab_utils``).

A finished run (``FAILED`` when logging its files fails) with the model's parameters, ``model_route`` and
``prompt_template`` as params, the ``mlflow.loggedArtifacts`` / ``mlflow.runSourceType`` tags, the model in
``mlflow.log-model.history``, and two artifacts: ``model/`` (MLflow's own ``promptlab_model.save_model``
writes the MLmodel, environment files, parameters and input example) and ``eval_results_table.json``
(MLflow's ``create_eval_results_json``). Only under ``/ajax-api/2.0/mlflow``, where the stock server serves it.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from producer.ids import new_id
from tracking import CreateRun, LogBatch, UpdateRun

from ..commands import execute
from ..routes.registry import actor_of
from ..services import Services
from .artifacts import artifacts_at
from .errors import invalid
from .routing import mlflow_route
from .runs import LOG_MODEL_HISTORY, appended_history, get_run_json, pairs_of

__all__ = ["router", "PATH", "required_args"]

router = APIRouter()

PATH = "/ajax-api/2.0/mlflow/runs/create-promptlab-run"
#: The fields MLflow requires, in the order it checks them.
REQUIRED = ("experiment_id", "prompt_template", "prompt_parameters", "model_route", "model_input", "mlflow_version")
_PAIR_LISTS = ("prompt_parameters", "model_parameters", "model_output_parameters", "tags")


def required_args(args: dict[str, Any]) -> None:
    """MLflow's refusal of the first required field that is absent or empty (``[]`` and ``""`` too), and ours of
    a pair list whose items are not ``{"key", "value"}`` objects (the stock server answers 500 there)."""
    for name in REQUIRED:
        if not args.get(name):
            raise invalid(f"CreatePromptlabRun request must specify {name}.")
    for name in _PAIR_LISTS:
        items = args.get(name) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise invalid(f"Invalid value for parameter '{name}': expected a list of {{key, value}} objects")


def _content_type(request: Request) -> None:
    header = request.headers.get("content-type")
    if header is None:
        raise invalid("Bad Request. Content-Type header is missing.")
    if header.split(";")[0].strip() != "application/json":
        raise invalid("Bad Request. Content-Type must be one of ['application/json'].")


def _strs(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(str(i.get("key")), str(i.get("value"))) for i in items]


def _model(run_id: str) -> Any:
    """The ``mlflow.models.Model`` of the run, as MLflow makes it before saving (no flavors yet)."""
    from mlflow.models import Model

    return Model(artifact_path="model", run_id=run_id,
                 utc_time_created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))


def _write_files(services: Services, artifact_uri: str, model: Any, args: dict[str, Any],
                 prompt: list[tuple[str, str]], model_params: list[tuple[str, str]]) -> None:
    """Save the model and the evaluation table with MLflow's code into a temporary folder and put every file
    into the run's artifacts."""
    from mlflow.entities import Param
    from mlflow.models.signature import ModelSignature
    from mlflow.prompt import promptlab_model
    from mlflow.types.schema import ColSpec, DataType, Schema
    from mlflow.utils import promptlab_utils
    from mlflow.version import VERSION

    eval_json: Callable[..., str] = promptlab_utils.create_eval_results_json
    save_model: Callable[..., None] = promptlab_model.save_model
    prompt_params = [Param(k, v) for k, v in prompt]
    signature = ModelSignature(inputs=Schema([ColSpec(DataType.string, k) for k, _ in prompt]),
                               outputs=Schema([ColSpec(DataType.string, "output")]))
    with tempfile.TemporaryDirectory() as local:
        save_model(mlflow_model=model, path=os.path.join(local, "model"), signature=signature,
                   input_example={"inputs": [v for _, v in prompt]}, prompt_template=args["prompt_template"],
                   prompt_parameters=prompt_params, model_parameters=[Param(k, v) for k, v in model_params],
                   model_route=args["model_route"], pip_requirements=[f"mlflow[gateway]=={VERSION}"])
        output_params = [Param(k, v) for k, v in _strs(args.get("model_output_parameters") or [])]
        with open(os.path.join(local, "eval_results_table.json"), "w") as f:
            f.write(eval_json(prompt_params, args["model_input"], output_params, args.get("model_output")))
        for folder, _dirs, files in os.walk(local):
            for name in files:
                full = os.path.join(folder, name)
                relative = posixpath.join(*os.path.relpath(full, local).split(os.sep))
                store, target = artifacts_at(services, artifact_uri, relative)
                with open(full, "rb") as fh:
                    store.put(target, iter([fh.read()]))


@mlflow_route(router, PATH, "POST")
def create_promptlab_run(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Create a finished prompt-engineering run: params, tags, the MLmodel and the evaluation table."""
    _content_type(request)
    required_args(params)
    start = params.get("start_time", int(time.time() * 1000))
    if isinstance(start, bool) or not isinstance(start, int | str) or not str(start).lstrip("-").isdigit():
        raise invalid(f"Invalid value {start!r} for parameter 'start_time': expected an integer")
    actor = actor_of(request)
    run_id = new_id()
    name = params.get("run_name")
    execute(services, CreateRun(run_id=run_id, experiment_id=str(params["experiment_id"]), start_time_ms=int(start),
                                name=name or "", tags=pairs_of(params.get("tags") or [], "tags"),
                                user=str(params.get("user_id") or "unknown")), actor=actor)
    prompt = _strs(params["prompt_parameters"])
    model_params = _strs(params.get("model_parameters") or [])
    status = "FINISHED"
    try:
        logged = [{"key": k, "value": v} for k, v in
                  (*model_params, ("model_route", str(params["model_route"])),
                   ("prompt_template", str(params["prompt_template"])))]
        tags = [{"key": "mlflow.loggedArtifacts", "value": '[{"path": "eval_results_table.json", "type": "table"}]'},
                {"key": "mlflow.runSourceType", "value": "PROMPT_ENGINEERING"}]
        execute(services, LogBatch(run_id=run_id, params=pairs_of(logged, "params"), tags=pairs_of(tags, "tags")),
                actor=actor)
        model = _model(run_id)
        history = appended_history(None, model.get_tags_dict())
        execute(services, LogBatch(run_id=run_id, tags=pairs_of([{"key": LOG_MODEL_HISTORY, "value": history}],
                                                                "tags")), actor=actor)
        artifact_uri = str(get_run_json(services, run_id)["info"]["artifact_uri"])
        _write_files(services, artifact_uri, model, params, prompt, model_params)
    except Exception:  # as the stock server: whatever went wrong, the run ends FAILED and is answered
        status = "FAILED"
    execute(services, UpdateRun(run_id=run_id, status=status, end_time_ms=int(time.time() * 1000),
                                name=name or None), actor=actor)
    return {"run": get_run_json(services, run_id)}
