"""The registry's wire contract: every body round-trips, validation names the field, golden payloads decode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from producer import registry_events as rev
from producer.codec import decode_event, encode_event, event_to_wire
from producer.contract import EVENT_TYPES
from producer.errors import ContractError
from producer.events import Body, Event, Source

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"
MODEL_ID = "019aad5e7c1a7000800000000000f00d"

BODIES: list[Body] = [
    rev.RegisteredModelCreated(name="iris", description="flowers", tags=(("team", "cv"),)),
    rev.RegisteredModelRenamed(old_name="iris", new_name="iris-prod"),
    rev.RegisteredModelDescriptionUpdated(description="new text"),
    rev.RegisteredModelTagSet(key="owner", value="ana"),
    rev.RegisteredModelTagDeleted(key="owner"),
    rev.RegisteredModelDeleted(),
    rev.ModelVersionCreated(version=1, source="runs:/abc/model", run_id="a" * 32, run_link="http://x",
                            description="d", tags=(("k", "v"),), model_id="m-123"),
    rev.ModelVersionDescriptionUpdated(version=1, description="better"),
    rev.ModelVersionTagSet(version=1, key="acc", value="0.93"),
    rev.ModelVersionTagDeleted(version=1, key="acc"),
    rev.ModelVersionStageTransitioned(version=1, from_stage="None", to_stage="Production",
                                      archive_existing_versions=True),
    rev.ModelVersionDeleted(version=1),
    rev.RegisteredModelAliasSet(alias="champion", version=2, previous_version=1),
    rev.RegisteredModelAliasDeleted(alias="champion", version=2),
]


def _event(body: Body) -> Event:
    return Event(id="019aad5e7c1a7000800000000000b0b0", type=body.TYPE, entity=MODEL_ID, ts_ms=1_763_850_000_000,
                 body=body, source=Source(host="registry-0", pid=1), actor="ana")


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b.TYPE)
def test_every_registry_body_round_trips_through_the_codec(body: Body) -> None:
    e = _event(body)
    assert decode_event(encode_event(e)) == e


def test_every_registry_type_is_registered_and_covered() -> None:
    assert {b.TYPE for b in BODIES} == rev.REGISTRY_EVENT_TYPES
    assert all(EVENT_TYPES[t].__module__ == "producer.registry_events" for t in rev.REGISTRY_EVENT_TYPES)


def test_optional_fields_may_be_absent_on_the_wire() -> None:
    body = rev.ModelVersionCreated.from_wire({"version": 4, "source": "s3://b/m"})
    assert body == rev.ModelVersionCreated(version=4, source="s3://b/m")
    moved = rev.RegisteredModelAliasSet.from_wire({"alias": "a", "version": 2})
    assert moved.previous_version is None


@pytest.mark.parametrize(
    ("cls", "wire", "field"),
    [
        (rev.RegisteredModelCreated, {"name": ""}, "name"),
        (rev.RegisteredModelRenamed, {"old_name": "a", "new_name": 3}, "new_name"),
        (rev.ModelVersionCreated, {"version": 0, "source": "s"}, "version"),
        (rev.ModelVersionCreated, {"version": 1, "source": ""}, "source"),
        (rev.ModelVersionCreated, {"version": "1", "source": "s"}, "version"),
        (rev.ModelVersionStageTransitioned, {"version": 1, "from_stage": "None", "to_stage": "production"}, "to_stage"),
        (rev.ModelVersionStageTransitioned,
         {"version": 1, "from_stage": "None", "to_stage": "Staging", "archive_existing_versions": 1},
         "archive_existing_versions"),
        (rev.ModelVersionStageTransitioned,
         {"version": 1, "from_stage": "None", "to_stage": "Archived", "archived_by_version": -2},
         "archived_by_version"),
        (rev.RegisteredModelAliasSet, {"alias": "", "version": 1}, "alias"),
        (rev.RegisteredModelAliasSet, {"alias": "a", "version": 1, "previous_version": 0}, "previous_version"),
        (rev.ModelVersionTagSet, {"version": 1, "key": "k", "value": None}, "value"),
    ],
)
def test_malformed_bodies_raise_contract_errors_naming_the_field(
    cls: type[Body], wire: dict[str, Any], field: str
) -> None:
    with pytest.raises(ContractError, match=repr(field)):
        cls.from_wire(wire)


GOLDEN = {
    "registry_model_version_created_v1.json": rev.ModelVersionCreated(
        version=3, source="models:/m-4f2a9c0d1e8b4a7f9c3d2e1f0a9b8c7d", run_id="019aad5e7c1a7000800000000000abcd",
        description="lora-r8, best eval loss", tags=(("framework", "torch"),),
        model_id="m-4f2a9c0d1e8b4a7f9c3d2e1f0a9b8c7d"),
    "registry_model_version_stage_transitioned_v1.json": rev.ModelVersionStageTransitioned(
        version=2, from_stage="Production", to_stage="Archived", archived_by_version=3),
    "registry_registered_model_alias_set_v1.json": rev.RegisteredModelAliasSet(
        alias="champion", version=3, previous_version=2),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_registry_payloads_decode_to_the_same_events(name: str) -> None:
    """Stored payloads must decode forever (upcast if need be), to exactly these values."""
    raw = (FIXTURES / name).read_bytes()
    e = decode_event(raw)
    assert e.body == GOLDEN[name]
    assert e.entity == MODEL_ID and e.actor and e.source.host == "registry-0"
    assert event_to_wire(e) == json.loads(raw)  # this build writes what it reads


def test_golden_fixtures_are_all_checked() -> None:
    assert {f.name for f in FIXTURES.glob("registry_*.json")} == set(GOLDEN)
