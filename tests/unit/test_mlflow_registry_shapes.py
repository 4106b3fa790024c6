"""Pure parts of the MLflow registry layer: argument checks, JSON shapes, Python-side search, source checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

import registry as reg
from query.filters import FilterError, parse_filter
from query.mlflow_api.common_registry import (
    MODEL_ATTRIBUTES,
    VERSION_ATTRIBUTES,
    flag,
    model_json,
    page,
    sort_rows,
    tag_holds,
    version_json,
    version_number,
)
from query.mlflow_api.convert import decode_token
from query.mlflow_api.errors import MlflowError
from query.mlflow_api.logged_models import unique_model_versions
from query.mlflow_api.model_versions import logged_model_ref
from registry._sources import has_relative_path


def version(n: int, stage: str = "None", **kw: Any) -> reg.VersionState:
    fields: dict[str, Any] = dict(version=n, source=f"s3://b/{n}", run_id=None, run_link="", model_id=None,
                                  description="", tags={}, stage=stage, created_ms=1000 + n, updated_ms=2000 + n,
                                  created_by="ana")
    fields.update(kw)
    return reg.VersionState(**fields)


def model(*versions: reg.VersionState, aliases: dict[str, int] | None = None) -> reg.ModelState:
    return reg.ModelState(id="0" * 32, name="iris", description="d", tags={"team": "cv"},
                          versions={v.version: v for v in versions}, aliases=aliases or {},
                          last_version=max((v.version for v in versions), default=0), created_ms=10, updated_ms=20,
                          created_by="ana", named_ms=10)


def invalid_code(fn: Any, *args: Any) -> str:
    with pytest.raises(MlflowError) as err:
        fn(*args)
    return err.value.error_code


@pytest.mark.parametrize("raw,expected", [("1", 1), (3, 3), ("12", 12)])
def test_version_numbers(raw: Any, expected: int) -> None:
    assert version_number({"version": raw}) == expected


@pytest.mark.parametrize("raw", [None, "", "x", "0", "-1", True, 1.5, [1]])
def test_bad_version_numbers_are_invalid(raw: Any) -> None:
    assert invalid_code(version_number, {"version": raw}) == "INVALID_PARAMETER_VALUE"


def test_flags_accept_json_booleans_and_query_strings_only() -> None:
    assert [flag({"f": v}, "f") for v in (True, False, "true", "FALSE")] == [True, False, True, False]
    assert flag({}, "f") is False
    for bad in ("yes", 1, None, "1"):
        assert invalid_code(flag, {"f": bad}, "f") == "INVALID_PARAMETER_VALUE"


def test_version_json_is_mlflows_model_version() -> None:
    v = version(2, "Production", run_id="r1", model_id="m-1", tags={"k": "v"})
    out = version_json(model(version(1), v, aliases={"champion": 2, "b": 2}), v)
    assert out == {"name": "iris", "version": "2", "creation_timestamp": 1002, "last_updated_timestamp": 2002,
                   "user_id": "ana", "current_stage": "Production", "description": "", "source": "s3://b/2",
                   "status": "READY", "tags": [{"key": "k", "value": "v"}], "run_link": "", "aliases": ["b", "champion"],
                   "run_id": "r1", "model_id": "m-1"}
    assert "run_id" not in version_json(model(version(1)), version(1))


def test_model_json_has_the_latest_version_per_stage_and_aliases() -> None:
    m = model(version(1, "Production"), version(2, "Production"), version(3), aliases={"champion": 1})
    out = model_json(m)
    assert [(v["version"], v["current_stage"]) for v in out["latest_versions"]] == [("3", "None"),
                                                                                    ("2", "Production")]
    assert out["aliases"] == [{"alias": "champion", "version": "1"}]
    assert (out["creation_timestamp"], out["last_updated_timestamp"], out["tags"]) == (
        10, 20, [{"key": "team", "value": "cv"}])


def test_tag_clauses_treat_a_missing_tag_as_satisfying_negations() -> None:
    hidden = parse_filter("tags.`mlflow.prompt.is_prompt` != 'true'", MODEL_ATTRIBUTES)[0]
    assert tag_holds({}, hidden) and not tag_holds({"mlflow.prompt.is_prompt": "true"}, hidden)
    equal = parse_filter("tags.team = 'cv'", MODEL_ATTRIBUTES)[0]
    assert tag_holds({"team": "cv"}, equal) and not tag_holds({}, equal)


def test_sort_rows_by_several_attributes_with_nones_first() -> None:
    rows = [version(1, run_id="b"), version(2, run_id=None), version(3, run_id="a"), version(4, run_id="a")]
    sort_rows(rows, ["run_id ASC", "version DESC"], VERSION_ATTRIBUTES, getattr)
    assert [v.version for v in rows] == [2, 4, 3, 1]
    sort_rows(rows, "version_number", VERSION_ATTRIBUTES, getattr)
    assert [v.version for v in rows] == [1, 2, 3, 4]
    for bad in (["tags.x ASC"], [5]):
        assert invalid_code(sort_rows, rows, bad, VERSION_ATTRIBUTES, getattr) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(FilterError, match="Invalid attribute key 'nope' specified"):  # a ContractError: 400 over HTTP
        sort_rows(rows, ["nope DESC"], VERSION_ATTRIBUTES, getattr)


def test_pages_walk_every_item_once() -> None:
    items, seen, token = list(range(7)), [], None
    while True:
        out = page(items, {"max_results": "3", "page_token": token}, 100, lambda x: x, "xs")
        seen += out["xs"]
        token = out.get("next_page_token")
        if token is None:
            break
        assert decode_token(token) == len(seen)
    assert seen == items
    for bad in ({"max_results": 0}, {"max_results": "lots"}, {"page_token": "garbage"}):
        assert invalid_code(page, items, bad, 100, str, "xs") == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("source,climbing", [
    ("s3://b/../x", True), ("s3://b/%2e%2e/x", True), ("s3://b/%252E%252E/x", True), ("C:\\m\\..\\x", True),
    ("..", True), ("s3://b/..x/y", False), ("runs:/r/model", False), ("s3://b/a.b/c", False)])
def test_sources_with_parent_segments_are_found(source: str, climbing: bool) -> None:
    assert has_relative_path(source) is climbing


@pytest.mark.parametrize("source,model_id", [
    ("models:/m-abc", "m-abc"), ("models:/m-abc/", "m-abc"), ("models:/iris/1", None), ("models:/iris@champ", None),
    ("models://host/m-abc", None), ("runs:/m-abc", None), ("models:/", None)])
def test_logged_model_references(source: str, model_id: str | None) -> None:
    assert logged_model_ref(source) == model_id


def test_model_versions_tag_lists_each_version_once() -> None:
    one = {"name": "a", "version": 1}
    assert unique_model_versions("", one) == '[{"name": "a", "version": 1}]'  # MLflow's server writes numbers
    assert json.loads(unique_model_versions(json.dumps([one, one]), one)) == [one]
    assert json.loads(unique_model_versions(json.dumps([one]), {"name": "a", "version": "1"})) == [one]
    assert json.loads(unique_model_versions(json.dumps([one]), {"name": "a", "version": "2"})) == [
        one, {"name": "a", "version": 2}]
    assert unique_model_versions("not json", one) == "not json"
    assert unique_model_versions('{"a": 1}') == '{"a": 1}'
