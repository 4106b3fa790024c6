"""MLflow's request validation wording (query/mlflow_api/request.py): what the server's own tests match."""

from __future__ import annotations

import pytest

from query.mlflow_api.errors import MlflowError as ValidationError
from query.mlflow_api.request import check_schema, optional_int, required_str

LOG_METRIC = {"run_id": ("string", True), "key": ("string", True), "value": ("float", True),
              "timestamp": ("int", True), "step": ("int", False)}


def message(params: dict[str, object], schema: dict = LOG_METRIC) -> str:  # type: ignore[type-arg]
    with pytest.raises(ValidationError) as exc:
        check_schema(params, schema)
    return str(exc.value)


@pytest.mark.parametrize(("params", "expected"), [
    ({"run_id": 31, "key": "m", "value": 1, "timestamp": 1}, "Invalid value 31 for parameter 'run_id' supplied:"),
    ({"run_id": "r", "key": 31, "value": 1, "timestamp": 1}, "Invalid value 31 for parameter 'key' supplied:"),
    ({"run_id": "r", "key": "k", "value": 1, "timestamp": 1, "step": "foo"},
     'Invalid value "foo" for parameter \'step\' supplied:  Hint: Value was of type \'str\'.'),
    ({"run_id": "r", "key": "k", "value": 1, "timestamp": "foo"}, 'Invalid value "foo" for parameter \'timestamp\''),
    ({"run_id": None, "key": "k", "value": 1, "timestamp": 1}, "Missing value for required parameter 'run_id'."),
    ({"run_id": "r", "value": 1, "timestamp": 1}, "Missing value for required parameter 'key'."),
    ({"run_id": "r", "key": "", "value": 1, "timestamp": 1}, "Missing value for required parameter 'key'."),
])
def test_mlflow_wording(params: dict[str, object], expected: str) -> None:
    got = message(params)
    assert expected in got
    assert got.endswith("See the API docs for more information about request parameters.")


def test_accepts_what_protobuf_json_accepts() -> None:
    check_schema({"run_id": "r", "key": "k", "value": "NaN", "timestamp": "123", "step": 2.0}, LOG_METRIC)
    check_schema({"run_uuid": "r", "key": "k", "value": 1.5, "timestamp": 1}, LOG_METRIC)


def test_fields_are_checked_in_schema_order() -> None:
    assert "'run_id'" in message({"run_id": 1, "key": 2, "value": 1, "timestamp": 1})


def test_bools_are_not_numbers_and_lists_are_json() -> None:
    assert "Invalid value true for parameter 'step'" in message(
        {"run_id": "r", "key": "k", "value": 1, "timestamp": 1, "step": True})
    assert "Invalid value \"5\" for parameter 'tags'" in message({"tags": "5"}, {"tags": ("array", False)})


def test_helpers_share_the_wording() -> None:
    with pytest.raises(ValidationError, match=r"Invalid value 9\.0 for parameter 'artifact_location' supplied"):
        required_str({"artifact_location": 9.0}, "artifact_location")
    with pytest.raises(ValidationError, match="Invalid value \"x\" for parameter 'max_results' supplied"):
        optional_int({"max_results": "x"}, "max_results")
    assert optional_int({"max_results": "7"}, "max_results") == 7
