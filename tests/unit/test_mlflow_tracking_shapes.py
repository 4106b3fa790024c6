"""Pure parts of the MLflow tracking layer: page tokens, proxied artifact locations, tag lists, the
in-Python filter used for experiment search, and the Run JSON shape."""

from __future__ import annotations

import base64
import math

import pytest

from query.filters import Clause
from query.mlflow_api.artifacts import attachment_headers, media_type_of
from query.mlflow_api.common import clause_holds
from query.mlflow_api.convert import decode_token, encode_token, proxied_location, run_json, tags_of
from query.mlflow_api.errors import MlflowError
from query.mlflow_api.runs import cut, truncating


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("offset", [0, 1, 999, 10**12])
def test_page_tokens_round_trip(offset: int) -> None:
    assert decode_token(encode_token(offset)) == offset


@pytest.mark.parametrize("token", ["garbage!", "%%%", _b64("x:1"), _b64("o:-1"), _b64("o:"), _b64("7")])
def test_foreign_page_tokens_are_invalid_parameter_values(token: str) -> None:
    with pytest.raises(MlflowError) as err:
        decode_token(token)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_no_token_is_the_first_page() -> None:
    assert decode_token(None) == 0 and decode_token("") == 0


@pytest.mark.parametrize("location, expected", [
    ("/data/artifacts/12", "mlflow-artifacts:/12"),
    ("/data/artifacts", "mlflow-artifacts:/"),
    ("/data/artifacts-other/1", "/data/artifacts-other/1"),
    ("s3://bucket/x", "s3://bucket/x"),
])
def test_locations_under_the_server_root_go_through_the_proxy(location: str, expected: str) -> None:
    assert proxied_location(location, "/data/artifacts/") == expected


def test_tags_of_validates_and_stringifies() -> None:
    assert tags_of([{"key": "a", "value": 1}, {"key": "b"}], "tag") == {"a": "1", "b": ""}
    assert tags_of(None, "tag") == {}
    for bad in ({"key": "a"}, [{"value": "v"}], [{"key": ""}], ["a"]):
        with pytest.raises(MlflowError):
            tags_of(bad, "tag")  # type: ignore[arg-type]


@pytest.mark.parametrize("value, op, target, holds", [
    ("exp-1", "LIKE", "exp-%", True),
    ("EXP-1", "LIKE", "exp-%", False),
    ("EXP-1", "ILIKE", "exp-%", True),
    ("a_b", "LIKE", "a_b", True),
    ("a[b]", "LIKE", "a[b]", True),
    ("x", "IN", ("x", "y"), True),
    ("z", "NOT IN", ("x", "y"), True),
    ("5", ">", 4.0, True),
    ("abc", ">", 4.0, False),
    (None, "!=", "v", False),
    (None, "IS NULL", None, True),
    ("b", "<", "c", True),
])
def test_clause_holds_follows_the_sql_grammar(value: object, op: str, target: object, holds: bool) -> None:
    assert clause_holds(value, Clause("attribute", "name", op, target)) is holds


def test_run_json_is_mlflows_shape_with_nan_as_a_string() -> None:
    run = {"run_id": "r1", "name": "n", "experiment_id": "3", "user": "u", "status": "FINISHED", "start_time": 1,
           "end_time": 2, "lifecycle_stage": "active", "params": {"p": "1"}, "tags": {"t": "v"},
           "metrics": {"loss": {"value": math.nan, "timestamp": 5, "step": 7}}}
    got = run_json(run, "mlflow-artifacts:/3")
    assert got["info"]["artifact_uri"] == "mlflow-artifacts:/3/r1/artifacts" and got["info"]["end_time"] == 2
    assert got["data"]["metrics"] == [{"key": "loss", "value": "NaN", "timestamp": 5, "step": 7}]
    assert got["data"]["params"] == [{"key": "p", "value": "1"}]
    assert got["inputs"] == {"dataset_inputs": [], "model_inputs": []} and got["outputs"] == {"model_outputs": []}


@pytest.mark.parametrize(("path", "media_type"), [
    ("a.txt", "text/plain"), ("dir/model/MLmodel", "text/plain"), ("page.html", "text/html"), ("x.json", "text/plain"),
    ("img.png", "image/png"), ("weights", "application/octet-stream"), ("model.pkl", "application/octet-stream"),
])
def test_artifact_downloads_are_typed_as_mlflow_types_them(path: str, media_type: str) -> None:
    assert media_type_of(path) == media_type


def test_artifact_downloads_are_attachments_never_sniffed() -> None:
    assert attachment_headers("d/a.txt") == {"Content-Disposition": "attachment; filename=a.txt",
                                             "X-Content-Type-Options": "nosniff"}
    assert attachment_headers("my file.txt")["Content-Disposition"] == 'attachment; filename="my file.txt"'
    assert attachment_headers("日本.txt")["Content-Disposition"].endswith("filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt")


def test_long_values_are_cut_unless_mlflow_truncate_long_values_is_off() -> None:
    assert truncating({}) and truncating({"MLFLOW_TRUNCATE_LONG_VALUES": "True"})
    assert not truncating({"MLFLOW_TRUNCATE_LONG_VALUES": "false"})
    assert cut("v" * 6001, "params", True) == "v" * 6000
    assert cut("v" * 8001, "tags", True) == "v" * 8000
    assert cut("v" * 6001, "params", False) == "v" * 6001  # the domain refuses it, in MLflow's words
    assert cut("k" * 300, "keys", True) == "k" * 300
