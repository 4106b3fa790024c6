"""MLflow 3's rules for a model version's source (registry/_sources.py), as mlflow server 3.17 applies them."""

from __future__ import annotations

import pytest

from producer.errors import ContractError
from registry import check_model_source, check_run_source, check_source_host
from registry._sources import has_relative_path, is_local

RUNS = {"r1": "mlflow-artifacts:/0/r1/artifacts"}


def lookup(run_id: str) -> str | None:
    return RUNS.get(run_id)


@pytest.mark.parametrize(("source", "run_id"), [
    ("runs:/r1/model", "r1"),
    ("runs:/anything/model", "anything"),  # a runs:/ source is checked against run_id, not looked up
    ("mlflow-artifacts:/0/r1/artifacts/model", "r1"),
    ("s3://bucket/path/model", None),
    ("s3://bucket/path/model", "no-such-run"),
    ("models:/name/3", None),
    ("https://host/elsewhere/model", None),
])
def test_accepted(source: str, run_id: str | None) -> None:
    check_run_source(source, run_id, lookup)


@pytest.mark.parametrize(("source", "run_id", "message"), [
    ("runs:/r1/model", None, "The run_id request parameter must identify the resource that contains the source."),
    ("runs:/r1/model", "r2", "The run_id request parameter must identify"),
    ("runs://host/r1/model", "r1", "The run_id request parameter must identify"),
    ("mlflow-artifacts:/0/nope/artifacts/model", "nope", "The run_id request parameter must identify"),
    ("mlflow-artifacts:/0/r1/artifacts/model", None, "The run_id request parameter must identify"),
    ("mlflow-artifacts:/0/r2/artifacts/model", "r1", "The run_id request parameter must identify"),
    ("http://h:5000/api/2.0/mlflow-artifacts/artifacts/0/x", "r1", "The run_id request parameter must identify"),
    ("path/to/model", "unknown-run", "The run_id request parameter must identify"),
    ("/abs/path/model", None, "To use a local path as a model version source, the run_id request parameter"),
    ("models:/m-0123", None, "The model_id request parameter must identify"),
    ("s3://bucket/a/../../etc", None, "an absolute path must be provided without relative path references"),
    ("s3://bucket/a/%252E%252E/b", None, "an absolute path must be provided"),
])
def test_refused_with_mlflows_wording(source: str, run_id: str | None, message: str) -> None:
    with pytest.raises(ContractError) as exc:
        check_run_source(source, run_id, lookup)
    assert str(exc.value).startswith(f"Invalid model version source: '{source}'.")
    assert message in str(exc.value)


LOCAL_RUNS = {"lp": "/srv/art/1/lp/artifacts", "lf": "file:///srv/art/1/lf/artifacts", **RUNS}


@pytest.mark.parametrize(("source", "run_id"), [
    ("/srv/art/1/lp/artifacts/model", "lp"),
    ("/srv/art/1/lp/artifacts", "lp"),
    ("file:///srv/art/1/lp/artifacts/model", "lp"),
    ("/srv/art/1/lf/artifacts/model", "lf"),
    ("file:///srv/art/1/lf/artifacts/model", "lf"),
    ("file://localhost/srv/art/1/lf/artifacts/model", "lf"),
])
def test_local_source_inside_a_local_run_folder_with_its_run_id(source: str, run_id: str) -> None:
    check_run_source(source, run_id, LOCAL_RUNS.get)


@pytest.mark.parametrize(("source", "run_id", "named"), [
    ("/srv/art/1/lp/artifacts/model", None, "/srv/art/1/lp/artifacts/model"),  # no run_id: as given
    ("/srv/art/1/lp/artifacts/../../other", "lp", "/srv/art/1/other"),  # named resolved, as MLflow does
    ("/srv/art/1/lf/artifacts/model", "lp", "/srv/art/1/lf/artifacts/model"),  # another run's folder
    ("/srv/art/1/lp/artifactsX", "lp", "/srv/art/1/lp/artifactsX"),
    ("file:///abs/path/model", "r1", "/abs/path/model"),  # a proxied run has no local folder
])
def test_local_source_refused_outside_its_run_folder(source: str, run_id: str | None, named: str) -> None:
    with pytest.raises(ContractError) as exc:
        check_run_source(source, run_id, LOCAL_RUNS.get)
    assert str(exc.value).startswith(f"Invalid model version source: '{named}'. To use a local path as a model "
                                     "version source, the run_id request parameter has to be specified")


def test_local_source_of_an_unknown_run_names_run_id() -> None:
    with pytest.raises(ContractError, match="The run_id request parameter must identify"):
        check_run_source("/srv/art/1/x/artifacts/model", "x", LOCAL_RUNS.get)


def test_local_model_sources() -> None:
    models = {"m-1": "file:///srv/art/1/models/m-1/artifacts", "m-2": "mlflow-artifacts:/1/models/m-2/artifacts"}
    check_model_source("/srv/art/1/models/m-1/artifacts/MLmodel", "m-1", models.get)
    with pytest.raises(ContractError, match="To use a local path as a model version source, the model_id"):
        check_model_source("/srv/art/1/models/m-2/artifacts", "m-2", models.get)
    with pytest.raises(ContractError, match="The model_id request parameter must identify"):
        check_model_source("/srv/art/1/models/m-3/artifacts", "m-3", models.get)


def test_model_sources() -> None:
    check_model_source("models:/m-1", "m-1")
    check_model_source("s3://bucket/model", "m-1")
    with pytest.raises(ContractError, match="The model_id request parameter must identify"):
        check_model_source("models:/m-2", "m-1")
    with pytest.raises(ContractError, match="To use a local path as a model version source, the model_id"):
        check_model_source("/tmp/model", "m-1")


@pytest.mark.parametrize(("source", "expected"), [
    ("/a/b", False), ("s3://b/a/./c", True), ("s3://b/a/%2e%2e/c", True), ("s3://b/a\x00", True),
    ("s3://b", False), ("runs:/r/model", False), ("s3://b/x/", False),
])
def test_relative_paths(source: str, expected: bool) -> None:
    assert has_relative_path(source) is expected


@pytest.mark.parametrize(("source", "expected"), [
    ("relative/path", True), ("/abs", True), ("file:///abs", True), ("file://localhost/abs", True),
    ("s3://b/k", False), ("runs:/r/m", False),
])
def test_local(source: str, expected: bool) -> None:
    assert is_local(source) is expected


def test_a_file_uri_naming_another_host_is_refused() -> None:
    with pytest.raises(ContractError, match="is not a valid remote uri"):
        is_local("file://123.456.789.123/path/to/source")


@pytest.mark.parametrize(("source", "refused"), [
    ("mlflow-artifacts://host:9000/models", True), ("https://host/x", True), ("ftp://h/x", True),
    ("mlflow-artifacts:/0/r/artifacts", False), ("s3://bucket/x", False), ("runs:/r/m", False), ("/tmp/x", False),
])
def test_sources_naming_hosts_are_refused_unless_allowed(source: str, refused: bool) -> None:
    if refused:
        with pytest.raises(ContractError, match=r"'source' cannot use the '.*' scheme: .* addresses a host"):
            check_source_host(source)
        check_source_host(source, frozenset({source.split(":", maxsplit=1)[0]}))
    else:
        check_source_host(source)
