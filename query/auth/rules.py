"""The access rule of every route, declared in one table (:data:`RULES`), keyed by the route's path as
its router declares it (MLflow routes without their prefix: one rule covers ``/api/2.0/mlflow``,
``/ajax-api/...`` and ``/api/3.0/...`` alike) and the method.

A rule names who may call the route:

* ``public`` — anyone, no credentials (liveness probes);
* ``user`` — any authenticated user (what they see may still be filtered: searches, SQL);
* ``admin`` — admins only;
* ``self_or_admin`` — the user named by the ``username`` parameter, or an admin;
* ``experiment`` / ``experiments`` / ``experiment_name`` / ``run`` / ``runs`` / ``logged_model`` /
  ``artifact`` — the action (read / update / delete / manage) on the experiment found from the
  parameter ``source``;
* ``registered_model`` / ``model_uri`` / ``resource`` — the same on a registered model (``resource``:
  MLflow 3's ``resource_type`` + ``resource_id``).

``source`` is a request parameter (query string or JSON body, as MLflow reads them) or ``path:NAME``
for a path parameter. The mapping mirrors MLflow's basic-auth app (``mlflow/server/auth``): reads
need READ, writes EDIT, deletes and restores MANAGE (MLflow's ``can_delete``), permission changes
MANAGE; creating an experiment or a registered model needs only a login (the creator is granted
MANAGE). A route missing here is refused at run time, and ``tests/integration/test_auth_routes.py``
fails for it.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from auth import Action

__all__ = ["Rule", "RULES", "PUBLIC", "USER", "ADMIN", "rule_for"]

Need = Literal["public", "user", "admin", "self_or_admin", "experiment", "experiments", "experiment_name", "run",
               "runs", "logged_model", "artifact", "registered_model", "model_uri", "resource"]


class Rule(NamedTuple):
    need: Need
    action: Action = "read"
    source: str = ""
    """Where the resource id is: a request parameter name, or ``path:NAME``."""


PUBLIC = Rule("public")
USER = Rule("user")
ADMIN = Rule("admin")


def _exp(action: Action, source: str = "experiment_id") -> Rule:
    return Rule("experiment", action, source)


def _run(action: Action, source: str = "run_id") -> Rule:
    return Rule("run", action, source)


def _model(action: Action, source: str = "name") -> Rule:
    return Rule("registered_model", action, source)


def _lm(action: Action) -> Rule:
    return Rule("logged_model", action, "path:model_id")


def _native_model(action: Action) -> Rule:
    return Rule("registered_model", action, "path:name")


_MLFLOW: dict[tuple[str, str], Rule] = {
    # server
    ("/health", "GET"): PUBLIC,
    ("/api/2.0/mlflow/server-info", "GET"): USER,
    ("/api/3.0/mlflow/server-info", "GET"): USER,
    ("/ajax-api/3.0/mlflow/server-info", "GET"): USER,
    # experiments
    ("/experiments/create", "POST"): USER,
    ("/experiments/get", "GET"): _exp("read"),
    ("/experiments/get-by-name", "GET"): Rule("experiment_name", "read", "experiment_name"),
    ("/experiments/search", "GET"): USER,
    ("/experiments/search", "POST"): USER,
    ("/experiments/update", "POST"): _exp("update"),
    ("/experiments/delete", "POST"): _exp("delete"),
    ("/experiments/restore", "POST"): _exp("delete"),
    ("/experiments/set-experiment-tag", "POST"): _exp("update"),
    ("/experiments/delete-experiment-tag", "POST"): _exp("update"),
    # runs
    ("/runs/create", "POST"): _exp("update"),
    ("/runs/get", "GET"): _run("read"),
    ("/runs/update", "POST"): _run("update"),
    ("/runs/delete", "POST"): _run("delete"),
    ("/runs/restore", "POST"): _run("delete"),
    ("/runs/log-batch", "POST"): _run("update"),
    ("/runs/log-metric", "POST"): _run("update"),
    ("/runs/log-parameter", "POST"): _run("update"),
    ("/runs/set-tag", "POST"): _run("update"),
    ("/runs/delete-tag", "POST"): _run("update"),
    ("/runs/log-inputs", "POST"): _run("update"),
    ("/runs/outputs", "POST"): _run("update"),
    ("/runs/log-model", "POST"): _run("update"),
    ("/runs/search", "GET"): Rule("experiments", "read", "experiment_ids"),
    ("/runs/search", "POST"): Rule("experiments", "read", "experiment_ids"),
    ("/metrics/get-history", "GET"): _run("read"),
    ("/metrics/get-history-bulk-interval", "GET"): Rule("runs", "read", "run_ids"),
    # logged models
    ("/logged-models", "POST"): _exp("update"),
    ("/logged-models/search", "POST"): Rule("experiments", "read", "experiment_ids"),
    ("/logged-models/{model_id}", "GET"): _lm("read"),
    ("/logged-models/{model_id}", "PATCH"): _lm("update"),
    ("/logged-models/{model_id}", "DELETE"): _lm("delete"),
    ("/logged-models/{model_id}/tags", "PATCH"): _lm("update"),
    ("/logged-models/{model_id}/tags/{tag_key:path}", "DELETE"): _lm("update"),
    ("/logged-models/{model_id}/params", "POST"): _lm("update"),
    ("/logged-models/{model_id}/artifacts/directories", "GET"): _lm("read"),
    ("/logged-models/{model_id}/artifacts/files", "GET"): _lm("read"),
    # registry
    ("/registered-models/create", "POST"): USER,
    ("/registered-models/get", "GET"): _model("read"),
    ("/registered-models/rename", "POST"): _model("update"),
    ("/registered-models/update", "PATCH"): _model("update"),
    ("/registered-models/update", "POST"): _model("update"),
    ("/registered-models/delete", "DELETE"): _model("delete"),
    ("/registered-models/delete", "POST"): _model("delete"),
    ("/registered-models/set-tag", "POST"): _model("update"),
    ("/registered-models/delete-tag", "DELETE"): _model("update"),
    ("/registered-models/delete-tag", "POST"): _model("update"),
    ("/registered-models/alias", "POST"): _model("update"),
    ("/registered-models/alias", "DELETE"): _model("update"),
    ("/registered-models/alias", "GET"): _model("read"),
    ("/registered-models/get-latest-versions", "GET"): _model("read"),
    ("/registered-models/get-latest-versions", "POST"): _model("read"),
    ("/registered-models/search", "GET"): USER,
    ("/registered-models/search", "POST"): USER,
    ("/model-versions/create", "POST"): _model("update"),
    ("/model-versions/get", "GET"): _model("read"),
    ("/model-versions/update", "PATCH"): _model("update"),
    ("/model-versions/update", "POST"): _model("update"),
    ("/model-versions/delete", "DELETE"): _model("delete"),
    ("/model-versions/delete", "POST"): _model("delete"),
    ("/model-versions/transition-stage", "POST"): _model("update"),
    ("/model-versions/set-tag", "POST"): _model("update"),
    ("/model-versions/delete-tag", "DELETE"): _model("delete"),
    ("/model-versions/delete-tag", "POST"): _model("delete"),
    ("/model-versions/get-download-uri", "GET"): _model("read"),
    ("/model-versions/search", "GET"): USER,
    ("/model-versions/search", "POST"): USER,
    # what the web UI calls besides the REST API (behind a login when auth is on: the browser asks once)
    ("/", "GET"): USER,
    ("/static-files/{path:path}", "GET"): USER,
    ("/version", "GET"): USER,
    ("/ajax-api/3.0/mlflow/ui-telemetry", "GET"): USER,
    ("/ajax-api/3.0/mlflow/ui-telemetry", "POST"): USER,
    # probes of the web UI, answered as the stock server does with the feature off
    ("/assistant/config", "GET"): USER,
    ("/assistant/providers", "GET"): USER,
    ("/traces/metrics", "POST"): USER,
    ("/gateway-proxy", "GET"): USER,
    ("/gateway-proxy", "POST"): USER,
    # each root field applies the rule of the REST route it runs (query/mlflow_api/graphql_api.py)
    ("/graphql", "GET"): USER,
    ("/graphql", "POST"): USER,
    ("/artifacts/list", "GET"): _run("read"),
    ("/get-artifact", "GET"): _run("read"),
    ("/model-versions/get-artifact", "GET"): _model("read"),
    ("/upload-artifact", "POST"): _run("update"),
    ("/ajax-api/2.0/mlflow/runs/create-promptlab-run", "POST"): _exp("update"),
    ("/metrics/get-history-bulk", "GET"): Rule("runs", "read", "run_id"),
    ("/experiments/search-datasets", "POST"): Rule("experiments", "read", "experiment_ids"),
    # mlflow-artifacts proxy: the first path segment is the experiment id (artifact_location = root/<id>)
    ("/artifacts", "GET"): Rule("artifact", "read", "path"),
    ("/artifacts/{path:path}", "GET"): Rule("artifact", "read", "path:path"),
    ("/artifacts/{path:path}", "PUT"): Rule("artifact", "update", "path:path"),
    ("/artifacts/{path:path}", "DELETE"): Rule("artifact", "delete", "path:path"),
    # users and permissions (MLflow's basic-auth REST API)
    ("/users/create", "POST"): ADMIN,
    ("/users/get", "GET"): Rule("self_or_admin", "read", "username"),
    ("/users/current", "GET"): USER,
    ("/users/list", "GET"): ADMIN,
    ("/users/update-password", "PATCH"): Rule("self_or_admin", "update", "username"),
    ("/users/update-admin", "PATCH"): ADMIN,
    ("/users/delete", "DELETE"): ADMIN,
    ("/experiments/permissions/create", "POST"): _exp("manage"),
    ("/experiments/permissions/get", "GET"): _exp("manage"),
    ("/experiments/permissions/update", "PATCH"): _exp("manage"),
    ("/experiments/permissions/delete", "DELETE"): _exp("manage"),
    ("/registered-models/permissions/create", "POST"): _model("manage"),
    ("/registered-models/permissions/get", "GET"): _model("manage"),
    ("/registered-models/permissions/update", "PATCH"): _model("manage"),
    ("/registered-models/permissions/delete", "DELETE"): _model("manage"),
    ("/users/permissions/grant", "POST"): Rule("resource", "manage"),
    ("/users/permissions/revoke", "POST"): Rule("resource", "manage"),
    ("/users/permissions/get", "GET"): Rule("resource", "manage"),
}

_NATIVE: dict[tuple[str, str], Rule] = {
    ("/api/v1/health", "GET"): PUBLIC,
    ("/api/v1/ingest", "POST"): USER,  # each event is checked by the gateway (query/routes/ingest.py)
    ("/metrics", "GET"): USER,
    ("/api/v1/experiments", "GET"): USER,
    ("/api/v1/experiments", "POST"): USER,
    ("/api/v1/experiments/{experiment_id}", "GET"): _exp("read", "path:experiment_id"),
    ("/api/v1/experiments/{experiment_id}/runs", "GET"): _exp("read", "path:experiment_id"),
    ("/api/v1/runs/{run_id}", "GET"): _run("read", "path:run_id"),
    ("/api/v1/runs/{run_id}/metrics", "GET"): _run("read", "path:run_id"),
    ("/api/v1/runs/{run_id}/history", "GET"): _run("read", "path:run_id"),
    ("/api/v1/runs/{run_id}/metrics/{key:path}", "GET"): _run("read", "path:run_id"),
    ("/api/v1/dead-letters", "GET"): ADMIN,
    ("/api/v1/admin/rebuild", "POST"): ADMIN,
    ("/api/v1/sql", "POST"): USER,  # rows filtered to what the user may read (query/sql/rowfilter.py)
    ("/api/v1/registry/models", "POST"): USER,
    ("/api/v1/registry/models", "GET"): USER,
    ("/api/v1/registry/models/{name}/rename", "POST"): _native_model("update"),
    ("/api/v1/registry/models/{name}", "PATCH"): _native_model("update"),
    ("/api/v1/registry/models/{name}", "DELETE"): _native_model("delete"),
    ("/api/v1/registry/models/{name}", "GET"): _native_model("read"),
    ("/api/v1/registry/models/{name}/tags/{key:path}", "PUT"): _native_model("update"),
    ("/api/v1/registry/models/{name}/tags/{key:path}", "DELETE"): _native_model("update"),
    ("/api/v1/registry/models/{name}/versions", "POST"): _native_model("update"),
    ("/api/v1/registry/models/{name}/versions/{version}", "PATCH"): _native_model("update"),
    ("/api/v1/registry/models/{name}/versions/{version}", "DELETE"): _native_model("delete"),
    ("/api/v1/registry/models/{name}/versions/{version}", "GET"): _native_model("read"),
    ("/api/v1/registry/models/{name}/versions/{version}/tags/{key:path}", "PUT"): _native_model("update"),
    ("/api/v1/registry/models/{name}/versions/{version}/tags/{key:path}", "DELETE"): _native_model("delete"),
    ("/api/v1/registry/models/{name}/versions/{version}/stage", "POST"): _native_model("update"),
    ("/api/v1/registry/models/{name}/aliases/{alias}", "PUT"): _native_model("update"),
    ("/api/v1/registry/models/{name}/aliases/{alias}", "DELETE"): _native_model("update"),
    ("/api/v1/registry/models/{name}/history", "GET"): _native_model("read"),
    ("/api/v1/registry/resolve", "GET"): Rule("model_uri", "read", "uri"),
    # runledger's own auth API
    ("/api/v1/auth/me", "GET"): USER,
    ("/api/v1/auth/users", "GET"): ADMIN,
    ("/api/v1/auth/permissions", "GET"): ADMIN,
    ("/api/v1/auth/events", "GET"): ADMIN,
    ("/api/v1/auth/tokens", "POST"): USER,  # for oneself; for another user only as admin (checked by the route)
    ("/api/v1/auth/tokens", "GET"): USER,  # one's own; all of them for an admin
    ("/api/v1/auth/tokens/{token_id}", "DELETE"): USER,  # one's own, or any as admin (checked by the route)
}

#: (route path as declared, HTTP method) -> rule.
RULES: dict[tuple[str, str], Rule] = {**_MLFLOW, **_NATIVE}


def rule_for(path: str, method: str) -> Rule | None:
    """The rule of a route (HEAD follows GET); None when none is declared."""
    return RULES.get((path, "GET" if method == "HEAD" else method))
