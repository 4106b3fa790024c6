"""The registry domain: every command, every validation error, reads, URIs, audit trail, as-of."""

from __future__ import annotations

import copy
import itertools
from functools import reduce
from typing import Any

import pytest

import registry as r
from producer import events as ev
from producer import registry_events as rev
from producer.errors import ConflictError, ContractError, NotFoundError
from producer.events import Event

T0 = 1_763_850_000_000


class Registry:
    """A registry driven through decide + apply, with a scripted clock and deterministic ids."""

    def __init__(self) -> None:
        self.state = r.EMPTY
        self.log: list[Event] = []
        self.now_ms = T0
        self.after: list[tuple[int, r.RegistryState]] = []  # (ts_ms, state) after each command
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"{next(self._ids):032x}"

    def do(self, command: r.Command, actor: str = "ana", step_ms: int = 1000) -> list[Event]:
        self.now_ms += step_ms
        events = r.decide(self.state, command, self.now_ms, actor, self.new_id)
        self.log.extend(events)
        self.state = reduce(r.apply, events, self.state)
        self.after.append((self.now_ms, self.state))
        return events

    def model(self, name: str = "iris") -> r.ModelState:
        return r.get_model(self.state, name)

    def version(self, number: int, name: str = "iris") -> r.VersionState:
        return r.get_version(self.state, name, number)


@pytest.fixture
def reg() -> Registry:
    return Registry()


@pytest.fixture
def iris(reg: Registry) -> Registry:
    """Model "iris" with versions 1, 2, 3 (all in stage None)."""
    reg.do(r.CreateModel(name="iris"))
    for i in (1, 2, 3):
        reg.do(r.CreateVersion(name="iris", source=f"s3://models/iris/{i}", run_id=f"run{i}"))
    return reg


# ------------------------------------------------------------------- commands


def test_create_model_mints_a_stable_id_as_entity(reg: Registry) -> None:
    [e] = reg.do(r.CreateModel(name="iris", description="flowers", tags=(("team", "cv"),)), actor="bo")
    assert e.type == "registered_model_created" and e.actor == "bo" and e.ts_ms == reg.now_ms
    assert e.entity == f"{1:032x}" and e.id == f"{2:032x}"  # the model id is minted first
    m = reg.model()
    assert (m.id, m.name, m.description, dict(m.tags)) == (e.entity, "iris", "flowers", {"team": "cv"})
    assert (m.created_ms, m.created_by, m.last_version, m.deleted) == (reg.now_ms, "bo", 0, False)
    assert reg.state.names == {"iris": m.id}


def test_rename_model_keeps_id_versions_and_aliases(iris: Registry) -> None:
    iris.do(r.SetAlias(name="iris", alias="champion", version=2))
    before = iris.model()
    [e] = iris.do(r.RenameModel(name="iris", new_name="iris-v2"))
    assert e.entity == before.id and e.body.to_wire() == {"old_name": "iris", "new_name": "iris-v2"}
    after = iris.model("iris-v2")
    assert after.id == before.id and after.versions == before.versions and after.aliases == {"champion": 2}
    with pytest.raises(NotFoundError):
        iris.model("iris")
    assert iris.state.names == {"iris-v2": before.id}


def test_update_model_description(iris: Registry) -> None:
    iris.do(r.UpdateModelDescription(name="iris", description="v2 text"))
    assert iris.model().description == "v2 text" and iris.model().updated_ms == iris.now_ms


def test_set_model_tag_adds_and_overwrites(iris: Registry) -> None:
    iris.do(r.SetModelTag(name="iris", key="owner", value="ana"))
    iris.do(r.SetModelTag(name="iris", key="owner", value="bo"))
    assert iris.model().tags == {"owner": "bo"}


def test_delete_model_tag(iris: Registry) -> None:
    iris.do(r.SetModelTag(name="iris", key="owner", value="ana"))
    [e] = iris.do(r.DeleteModelTag(name="iris", key="owner"))
    assert e.type == "registered_model_tag_deleted" and iris.model().tags == {}


def test_deleting_an_absent_model_tag_records_nothing(iris: Registry) -> None:
    assert iris.do(r.DeleteModelTag(name="iris", key="nope")) == []


def test_delete_model_frees_the_name_and_a_new_model_starts_at_version_1(iris: Registry) -> None:
    old_id = iris.model().id
    [e] = iris.do(r.DeleteModel(name="iris"))
    assert e.type == "registered_model_deleted"
    with pytest.raises(NotFoundError):
        iris.model()
    assert iris.state.models[old_id].deleted_ms == iris.now_ms  # a tombstone stays
    iris.do(r.CreateModel(name="iris"))
    [v] = iris.do(r.CreateVersion(name="iris", source="s3://new"))
    assert v.entity != old_id and v.body.version == 1  # type: ignore[attr-defined]
    assert r.list_models(iris.state) == [iris.model()]


def test_create_version_numbers_from_1_and_records_its_origin(reg: Registry) -> None:
    reg.do(r.CreateModel(name="iris"))
    evs = [reg.do(r.CreateVersion(name="iris", source=f"s3://m/{i}"))[0] for i in range(3)]
    assert [e.body.version for e in evs] == [1, 2, 3]  # type: ignore[attr-defined]
    reg.do(r.CreateVersion(name="iris", source="models:/m-1", run_id="r9", run_link="http://ui/r9",
                           description="d", tags=(("k", "v"),), model_id="m-1"), actor="ci-bot")
    v = reg.version(4)
    assert (v.source, v.run_id, v.run_link, v.description, dict(v.tags), v.model_id) == (
        "models:/m-1", "r9", "http://ui/r9", "d", {"k": "v"}, "m-1")
    assert (v.stage, v.created_by, v.created_ms, reg.model().last_version) == ("None", "ci-bot", reg.now_ms, 4)


def test_update_version_description(iris: Registry) -> None:
    iris.do(r.UpdateVersionDescription(name="iris", version=2, description="eval 0.93"))
    assert iris.version(2).description == "eval 0.93" and iris.version(2).updated_ms == iris.now_ms
    assert iris.version(1).description == ""


def test_set_and_delete_version_tag(iris: Registry) -> None:
    iris.do(r.SetVersionTag(name="iris", version=2, key="acc", value="0.9"))
    iris.do(r.SetVersionTag(name="iris", version=2, key="acc", value="0.93"))
    assert iris.version(2).tags == {"acc": "0.93"}
    [e] = iris.do(r.DeleteVersionTag(name="iris", version=2, key="acc"))
    assert e.type == "model_version_tag_deleted" and iris.version(2).tags == {}


def test_deleting_an_absent_version_tag_records_nothing(iris: Registry) -> None:
    assert iris.do(r.DeleteVersionTag(name="iris", version=2, key="nope")) == []


@pytest.mark.parametrize(("given", "canonical"), [
    ("staging", "Staging"), ("PRODUCTION", "Production"), ("archived", "Archived"), ("none", "None"),
    ("Production", "Production"),
])
def test_transition_stage_accepts_any_case(iris: Registry, given: str, canonical: str) -> None:
    [e] = iris.do(r.TransitionStage(name="iris", version=1, stage=given))
    assert (e.body.from_stage, e.body.to_stage) == ("None", canonical)  # type: ignore[attr-defined]
    assert iris.version(1).stage == canonical


def test_transition_without_archiving_leaves_other_versions_alone(iris: Registry) -> None:
    iris.do(r.TransitionStage(name="iris", version=1, stage="Production"))
    evs = iris.do(r.TransitionStage(name="iris", version=2, stage="Production"))
    assert len(evs) == 1
    assert [iris.version(n).stage for n in (1, 2, 3)] == ["Production", "Production", "None"]


def test_archive_existing_versions_archives_only_the_target_stage_each_as_its_own_event(iris: Registry) -> None:
    iris.do(r.CreateVersion(name="iris", source="s3://models/iris/4"))
    iris.do(r.TransitionStage(name="iris", version=1, stage="Production"))
    iris.do(r.TransitionStage(name="iris", version=2, stage="Production"))
    iris.do(r.TransitionStage(name="iris", version=3, stage="Staging"))
    evs = iris.do(r.TransitionStage(name="iris", version=4, stage="production", archive_existing_versions=True))
    bodies = [e.body.to_wire() for e in evs]
    assert bodies == [
        {"version": 4, "from_stage": "None", "to_stage": "Production", "archive_existing_versions": True,
         "archived_by_version": None},
        {"version": 1, "from_stage": "Production", "to_stage": "Archived", "archive_existing_versions": False,
         "archived_by_version": 4},
        {"version": 2, "from_stage": "Production", "to_stage": "Archived", "archive_existing_versions": False,
         "archived_by_version": 4},
    ]
    assert {e.ts_ms for e in evs} == {iris.now_ms} and len({e.id for e in evs}) == 3
    assert [iris.version(n).stage for n in (1, 2, 3, 4)] == ["Archived", "Archived", "Staging", "Production"]


def test_archive_existing_versions_when_the_version_is_already_in_the_stage(iris: Registry) -> None:
    iris.do(r.TransitionStage(name="iris", version=1, stage="Staging"))
    iris.do(r.TransitionStage(name="iris", version=2, stage="Staging"))
    evs = iris.do(r.TransitionStage(name="iris", version=2, stage="Staging", archive_existing_versions=True))
    assert [(e.body.version, e.body.to_stage) for e in evs] == [(2, "Staging"), (1, "Archived")]  # type: ignore[attr-defined]


def test_delete_version_deletes_its_aliases_first_as_events(iris: Registry) -> None:
    iris.do(r.SetAlias(name="iris", alias="champion", version=2))
    iris.do(r.SetAlias(name="iris", alias="backup", version=2))
    iris.do(r.SetAlias(name="iris", alias="challenger", version=3))
    evs = iris.do(r.DeleteVersion(name="iris", version=2))
    assert [(e.type, e.body.to_wire()) for e in evs] == [
        ("registered_model_alias_deleted", {"alias": "backup", "version": 2}),
        ("registered_model_alias_deleted", {"alias": "champion", "version": 2}),
        ("model_version_deleted", {"version": 2}),
    ]
    assert list(iris.model().versions) == [1, 3] and iris.model().aliases == {"challenger": 3}


def test_version_numbers_are_never_reused_after_delete(iris: Registry) -> None:
    iris.do(r.DeleteVersion(name="iris", version=3))
    iris.do(r.DeleteVersion(name="iris", version=2))
    [e] = iris.do(r.CreateVersion(name="iris", source="s3://again"))
    assert e.body.version == 4  # type: ignore[attr-defined]
    assert list(iris.model().versions) == [1, 4] and iris.model().last_version == 4


def test_set_alias_and_move_it_records_the_previous_version(iris: Registry) -> None:
    [first] = iris.do(r.SetAlias(name="iris", alias="champion", version=1))
    [moved] = iris.do(r.SetAlias(name="iris", alias="champion", version=3))
    assert first.body.to_wire() == {"alias": "champion", "version": 1, "previous_version": None}
    assert moved.body.to_wire() == {"alias": "champion", "version": 3, "previous_version": 1}
    assert iris.model().aliases == {"champion": 3}
    assert r.aliases_of(iris.model(), 3) == ["champion"] and r.aliases_of(iris.model(), 1) == []


def test_delete_alias_records_the_version_it_pointed_at(iris: Registry) -> None:
    iris.do(r.SetAlias(name="iris", alias="champion", version=2))
    [e] = iris.do(r.DeleteAlias(name="iris", alias="champion"))
    assert e.body.to_wire() == {"alias": "champion", "version": 2} and iris.model().aliases == {}


def test_deleting_an_absent_alias_records_nothing(iris: Registry) -> None:
    assert iris.do(r.DeleteAlias(name="iris", alias="nope")) == []


def test_decide_on_one_models_state_equals_decide_on_the_whole_registry(iris: Registry) -> None:
    """What the service does under a per-model lock: fold only that model's events, decide, apply."""
    iris.do(r.CreateModel(name="other"))
    iris.do(r.CreateVersion(name="other", source="s3://o/1"))
    model_id = iris.model().id
    alone = r.project(e for e in iris.log if e.entity == model_id)
    assert list(alone.models) == [model_id]
    cmd = r.TransitionStage(name="iris", version=3, stage="Production", archive_existing_versions=True)
    one, whole = Registry(), Registry()  # two identical id factories
    assert r.decide(alone, cmd, T0, "ana", one.new_id) == r.decide(iris.state, cmd, T0, "ana", whole.new_id)


# ------------------------------------------------------------ validation errors

MODEL_COMMANDS: list[r.Command] = [
    r.RenameModel(name="ghost", new_name="x"),
    r.UpdateModelDescription(name="ghost", description=""),
    r.SetModelTag(name="ghost", key="k", value="v"),
    r.DeleteModelTag(name="ghost", key="k"),
    r.DeleteModel(name="ghost"),
    r.CreateVersion(name="ghost", source="s3://x"),
    r.UpdateVersionDescription(name="ghost", version=1, description=""),
    r.SetVersionTag(name="ghost", version=1, key="k", value="v"),
    r.DeleteVersionTag(name="ghost", version=1, key="k"),
    r.TransitionStage(name="ghost", version=1, stage="Staging"),
    r.DeleteVersion(name="ghost", version=1),
    r.SetAlias(name="ghost", alias="a", version=1),
    r.DeleteAlias(name="ghost", alias="a"),
]
VERSION_COMMANDS: list[r.Command] = [
    r.UpdateVersionDescription(name="iris", version=9, description=""),
    r.SetVersionTag(name="iris", version=9, key="k", value="v"),
    r.DeleteVersionTag(name="iris", version=9, key="k"),
    r.TransitionStage(name="iris", version=9, stage="Staging"),
    r.DeleteVersion(name="iris", version=9),
]


def _name(c: Any) -> str:
    return type(c).__name__


@pytest.mark.parametrize("command", MODEL_COMMANDS, ids=_name)
def test_unknown_model_is_not_found(iris: Registry, command: r.Command) -> None:
    with pytest.raises(NotFoundError, match="name=ghost not found"):
        iris.do(command)


@pytest.mark.parametrize("command", MODEL_COMMANDS, ids=_name)
def test_deleted_model_is_not_found(reg: Registry, command: r.Command) -> None:
    reg.do(r.CreateModel(name="ghost"))
    reg.do(r.CreateVersion(name="ghost", source="s3://g/1"))
    reg.do(r.DeleteModel(name="ghost"))
    with pytest.raises(NotFoundError):
        reg.do(command)


@pytest.mark.parametrize("command", VERSION_COMMANDS, ids=_name)
def test_missing_version_is_not_found(iris: Registry, command: r.Command) -> None:
    with pytest.raises(NotFoundError, match=r"Model Version \(name=iris, version=9\) not found"):
        iris.do(command)


@pytest.mark.parametrize("command", VERSION_COMMANDS, ids=_name)
def test_deleted_version_is_not_found(iris: Registry, command: r.Command) -> None:
    for _ in range(6):
        iris.do(r.CreateVersion(name="iris", source="s3://more"))
    iris.do(r.DeleteVersion(name="iris", version=9))
    with pytest.raises(NotFoundError):
        iris.do(command)


def test_alias_on_a_missing_version_is_not_found(iris: Registry) -> None:
    iris.do(r.DeleteVersion(name="iris", version=3))
    with pytest.raises(NotFoundError):
        iris.do(r.SetAlias(name="iris", alias="champion", version=3))
    with pytest.raises(NotFoundError):
        iris.do(r.SetAlias(name="iris", alias="champion", version=4))


def test_create_with_a_taken_name_conflicts(iris: Registry) -> None:
    with pytest.raises(ConflictError, match=r"Registered Model \(name=iris\) already exists"):
        iris.do(r.CreateModel(name="iris"))


def test_rename_to_a_taken_name_conflicts(iris: Registry) -> None:
    iris.do(r.CreateModel(name="other"))
    with pytest.raises(ConflictError, match=r"Registered Model \(name=other\) already exists"):
        iris.do(r.RenameModel(name="iris", new_name="other"))
    with pytest.raises(ConflictError):
        iris.do(r.RenameModel(name="iris", new_name="iris"))


@pytest.mark.parametrize("stage", ["Prod", "", "deleted_internal", "None "])
def test_invalid_stage_is_a_contract_error(iris: Registry, stage: str) -> None:
    with pytest.raises(ContractError, match="Invalid Model Version stage"):
        iris.do(r.TransitionStage(name="iris", version=1, stage=stage))


@pytest.mark.parametrize("stage", ["None", "archived"])
def test_archive_existing_versions_needs_an_active_stage(iris: Registry, stage: str) -> None:
    with pytest.raises(ContractError, match="archive_existing_versions"):
        iris.do(r.TransitionStage(name="iris", version=1, stage=stage, archive_existing_versions=True))


@pytest.mark.parametrize("alias", ["latest", "LaTeSt", "v1", "V42", "", "has space", "a/b", "a@b", "x" * 256])
def test_invalid_or_reserved_alias_is_a_contract_error(iris: Registry, alias: str) -> None:
    with pytest.raises(ContractError, match="alias"):
        iris.do(r.SetAlias(name="iris", alias=alias, version=1))


@pytest.mark.parametrize("alias", ["v1beta", "version1", "champion-2", "A_b"])
def test_alias_names_close_to_reserved_ones_are_fine(iris: Registry, alias: str) -> None:
    iris.do(r.SetAlias(name="iris", alias=alias, version=1))
    assert iris.model().aliases[alias] == 1


@pytest.mark.parametrize("name", ["", "   ", "a/b", "a:b", "..", "../x", "./x", "a//b", "x" * 257])
def test_invalid_model_name_is_a_contract_error(reg: Registry, name: str) -> None:
    with pytest.raises(ContractError, match="name"):
        reg.do(r.CreateModel(name=name))


def test_invalid_new_name_on_rename_is_a_contract_error(iris: Registry) -> None:
    with pytest.raises(ContractError, match="new_name"):
        iris.do(r.RenameModel(name="iris", new_name="a/b"))


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, True])
def test_version_must_be_a_positive_int(iris: Registry, version: Any) -> None:
    with pytest.raises(ContractError, match="version must be a positive integer"):
        iris.do(r.SetAlias(name="iris", alias="champion", version=version))


@pytest.mark.parametrize(("key", "value"), [("", "v"), ("k" * 251, "v"), ("k", None), ("k", "v" * 100_001)])
def test_invalid_tag_is_a_contract_error(iris: Registry, key: str, value: Any) -> None:
    with pytest.raises(ContractError, match="tag"):
        iris.do(r.SetVersionTag(name="iris", version=1, key=key, value=value))


def test_invalid_tag_on_create_model_is_a_contract_error(reg: Registry) -> None:
    with pytest.raises(ContractError, match="tag"):
        reg.do(r.CreateModel(name="iris", tags=(("", "v"),)))


def test_empty_source_is_a_contract_error(iris: Registry) -> None:
    with pytest.raises(ContractError, match="source"):
        iris.do(r.CreateVersion(name="iris", source=""))


def test_non_string_description_is_a_contract_error(iris: Registry) -> None:
    with pytest.raises(ContractError, match="description"):
        iris.do(r.UpdateModelDescription(name="iris", description=None))  # type: ignore[arg-type]


def test_decide_rejects_something_that_is_not_a_command(iris: Registry) -> None:
    with pytest.raises(TypeError, match="not a registry command"):
        r.decide(iris.state, "create iris", T0, "ana", iris.new_id)  # type: ignore[arg-type]


def test_failed_commands_leave_no_trace(iris: Registry) -> None:
    before, n = iris.state, len(iris.log)
    with pytest.raises(ContractError):
        iris.do(r.TransitionStage(name="iris", version=1, stage="nope"))
    assert iris.state is before and len(iris.log) == n


# ---------------------------------------------------------------------- reads


def test_latest_versions_per_stage(iris: Registry) -> None:
    iris.do(r.CreateVersion(name="iris", source="s3://4"))
    iris.do(r.TransitionStage(name="iris", version=1, stage="Production"))
    iris.do(r.TransitionStage(name="iris", version=2, stage="Production"))
    iris.do(r.TransitionStage(name="iris", version=3, stage="Staging"))
    latest = r.latest_versions(iris.model())
    assert {s: v.version for s, v in latest.items()} == {"None": 4, "Staging": 3, "Production": 2}
    assert list(latest) == ["None", "Staging", "Production"]
    only = r.latest_versions(iris.model(), ["production", "ARCHIVED"])
    assert {s: v.version for s, v in only.items()} == {"Production": 2}
    with pytest.raises(ContractError):
        r.latest_versions(iris.model(), ["prod"])


def test_get_version_by_alias(iris: Registry) -> None:
    iris.do(r.SetAlias(name="iris", alias="champion", version=2))
    assert r.get_version_by_alias(iris.state, "iris", "champion").version == 2
    with pytest.raises(NotFoundError, match="no alias 'nope'"):
        r.get_version_by_alias(iris.state, "iris", "nope")


def test_get_model_by_id_sees_tombstones(iris: Registry) -> None:
    model_id = iris.model().id
    iris.do(r.DeleteModel(name="iris"))
    assert r.get_model_by_id(iris.state, model_id).deleted
    with pytest.raises(NotFoundError):
        r.get_model_by_id(iris.state, "0" * 32)


@pytest.fixture
def staged(iris: Registry) -> Registry:
    iris.do(r.CreateVersion(name="iris", source="s3://models/iris/4"))
    iris.do(r.TransitionStage(name="iris", version=2, stage="Production"))
    iris.do(r.TransitionStage(name="iris", version=3, stage="Staging"))
    iris.do(r.SetAlias(name="iris", alias="champion", version=1))
    return iris


@pytest.mark.parametrize(("uri", "version"), [
    ("models:/iris/3", 3),
    ("models:/iris/1", 1),
    ("models:/iris/Production", 2),
    ("models:/iris/staging", 3),
    ("models:/iris/None", 4),
    ("models:/iris@champion", 1),
    ("models:/iris/latest", 4),
    ("models:/iris/LATEST", 4),
])
def test_resolve_models_uri(staged: Registry, uri: str, version: int) -> None:
    assert r.resolve_uri(staged.state, uri).version == version


def test_latest_skips_deleted_versions(staged: Registry) -> None:
    staged.do(r.DeleteVersion(name="iris", version=4))
    assert r.resolve_uri(staged.state, "models:/iris/latest").version == 3


def test_parse_models_uri() -> None:
    assert r.parse_models_uri("models:/a b/7") == r.ModelsUri("a b", version=7)
    assert r.parse_models_uri("models:/x/production") == r.ModelsUri("x", stage="Production")
    assert r.parse_models_uri("models:/x@y@champion") == r.ModelsUri("x@y", alias="champion")
    assert r.parse_models_uri("models:/x/latest") == r.ModelsUri("x")


@pytest.mark.parametrize("uri", [
    "runs:/abc/model", "models:/", "models:/iris", "models:/iris/", "models:/iris/3/x", "models://prof/iris/3",
    "models:/iris@", "models:/@champion", "models:/ /3", "s3://iris/3",
])
def test_malformed_models_uri_is_a_contract_error(staged: Registry, uri: str) -> None:
    with pytest.raises(ContractError, match="models:/"):
        r.resolve_uri(staged.state, uri)


def test_models_uri_with_an_invalid_stage_is_a_contract_error(staged: Registry) -> None:
    with pytest.raises(ContractError, match="Invalid Model Version stage"):
        r.resolve_uri(staged.state, "models:/iris/prod")


@pytest.mark.parametrize(("uri", "message"), [
    ("models:/ghost/1", "name=ghost not found"),
    ("models:/iris/9", "version=9"),
    ("models:/iris/Archived", "no version in stage 'Archived'"),
    ("models:/iris@nope", "no alias 'nope'"),
])
def test_models_uri_to_nothing_is_not_found(staged: Registry, uri: str, message: str) -> None:
    with pytest.raises(NotFoundError, match=message):
        r.resolve_uri(staged.state, uri)


def test_latest_of_a_model_without_versions_is_not_found(reg: Registry) -> None:
    reg.do(r.CreateModel(name="empty"))
    with pytest.raises(NotFoundError, match="no versions"):
        r.resolve_uri(reg.state, "models:/empty/latest")


# ------------------------------------------------------------- the fold itself


def test_apply_never_mutates_the_state_it_is_given(staged: Registry) -> None:
    before = staged.state
    snapshot = copy.deepcopy(before)
    staged.do(r.SetAlias(name="iris", alias="champion", version=4))
    staged.do(r.TransitionStage(name="iris", version=4, stage="Staging", archive_existing_versions=True))
    staged.do(r.RenameModel(name="iris", new_name="iris2"))
    staged.do(r.DeleteVersion(name="iris2", version=1))
    assert before == snapshot


def test_apply_ignores_other_domains_events(iris: Registry) -> None:
    run = Event(id="f" * 32, type="run_deleted", entity=iris.model().id, ts_ms=T0, body=ev.RunDeleted())
    assert r.apply(iris.state, run) is iris.state
    assert r.project([run], iris.state) == iris.state


def test_a_redelivered_creation_never_resets_a_model(iris: Registry) -> None:
    created, first_version = iris.log[0], iris.log[1]
    assert r.project([created, first_version], iris.state) == iris.state
    assert r.project(iris.log + iris.log) == iris.state


def test_project_equals_reducing_apply(staged: Registry) -> None:
    assert r.project(staged.log) == reduce(r.apply, staged.log, r.EMPTY) == staged.state
    assert r.replay(iter(staged.log)) == staged.state


def test_a_log_in_entity_order_rebuilds_the_same_registry(reg: Registry) -> None:
    """A name passed from model to model: the rebuild reads the log per entity, not in global order."""
    reg.do(r.CreateModel(name="x"))
    reg.do(r.RenameModel(name="x", new_name="y"))
    reg.do(r.CreateModel(name="x"))
    reg.do(r.DeleteModel(name="y"))
    reg.do(r.CreateModel(name="y"))
    reg.do(r.DeleteModel(name="x"))
    reg.do(r.CreateModel(name="x"))
    for ordered in (sorted(reg.log, key=lambda e: e.entity), sorted(reg.log, key=lambda e: e.entity, reverse=True)):
        assert r.project(ordered) == reg.state
    assert len(reg.state.names) == 2


# --------------------------------------------------------- audit trail, as-of


def _script(reg: Registry) -> None:
    """A scripted history: 3 actors, stages with archiving, an alias move, a rename, deletes."""
    reg.do(r.CreateModel(name="iris", description="flowers"), actor="ana")
    reg.do(r.CreateVersion(name="iris", source="s3://iris/1", run_id="run-1"), actor="ana")
    reg.do(r.CreateVersion(name="iris", source="s3://iris/2", run_id="run-2"), actor="ci-bot")
    reg.do(r.TransitionStage(name="iris", version=1, stage="production"), actor="bo")
    reg.do(r.SetAlias(name="iris", alias="champion", version=1), actor="bo")
    reg.do(r.CreateModel(name="other"), actor="dee")
    reg.do(r.TransitionStage(name="iris", version=2, stage="Production", archive_existing_versions=True), actor="bo")
    reg.do(r.SetAlias(name="iris", alias="champion", version=2), actor="bo")
    reg.do(r.SetVersionTag(name="iris", version=2, key="acc", value="0.93"), actor="ci-bot")
    reg.do(r.RenameModel(name="iris", new_name="iris-prod"), actor="ana")
    reg.do(r.UpdateModelDescription(name="iris-prod", description="flowers, in prod"), actor="ana")
    reg.do(r.DeleteVersion(name="iris-prod", version=2), actor="bo")
    reg.do(r.DeleteModel(name="other"), actor="dee")


def test_audit_trail_says_who_when_what_before_and_after_across_a_rename(reg: Registry) -> None:
    _script(reg)
    trail = r.history(reg.log, "iris-prod")
    assert trail == r.history(reg.log, "iris")  # the old name finds the same model
    model_id = reg.model("iris-prod").id
    assert [a.event_id for a in trail] == [e.id for e in reg.log if e.entity == model_id]
    rows = [(a.actor, a.type, a.model_name, a.version, a.summary) for a in trail]
    assert rows == [
        ("ana", "registered_model_created", "iris", None, "name: None -> 'iris'; description: None -> 'flowers'"),
        ("ana", "model_version_created", "iris", 1, "source: None -> 's3://iris/1'; run_id: None -> 'run-1'"),
        ("ci-bot", "model_version_created", "iris", 2, "source: None -> 's3://iris/2'; run_id: None -> 'run-2'"),
        ("bo", "model_version_stage_transitioned", "iris", 1, "stage: 'None' -> 'Production'"),
        ("bo", "registered_model_alias_set", "iris", 1, "alias.champion: None -> 1"),
        ("bo", "model_version_stage_transitioned", "iris", 2, "stage: 'None' -> 'Production'"),
        ("bo", "model_version_stage_transitioned", "iris", 1, "stage: 'Production' -> 'Archived'"),
        ("bo", "registered_model_alias_set", "iris", 2, "alias.champion: 1 -> 2"),
        ("ci-bot", "model_version_tag_set", "iris", 2, "tag.acc: None -> '0.93'"),
        ("ana", "registered_model_renamed", "iris", None, "name: 'iris' -> 'iris-prod'"),
        ("ana", "registered_model_description_updated", "iris-prod", None,
         "description: 'flowers' -> 'flowers, in prod'"),
        ("bo", "registered_model_alias_deleted", "iris-prod", 2, "alias.champion: 2 -> None"),
        ("bo", "model_version_deleted", "iris-prod", 2, "deleted: False -> True"),
    ]
    assert trail[6].ts_ms == trail[5].ts_ms  # the archival is part of the same command
    assert trail[0].changes[0] == r.Change("name", None, "iris")


def test_audit_trail_of_one_version(reg: Registry) -> None:
    _script(reg)
    v1 = r.history(reg.log, "iris-prod", version=1)
    assert [(a.type, a.summary) for a in v1] == [
        ("model_version_created", "source: None -> 's3://iris/1'; run_id: None -> 'run-1'"),
        ("model_version_stage_transitioned", "stage: 'None' -> 'Production'"),
        ("registered_model_alias_set", "alias.champion: None -> 1"),
        ("model_version_stage_transitioned", "stage: 'Production' -> 'Archived'"),  # archived by version 2
        ("registered_model_alias_set", "alias.champion: 1 -> 2"),  # the alias moved away from it
    ]


def test_audit_trail_of_a_deleted_model_and_of_a_reused_name(reg: Registry) -> None:
    _script(reg)
    reg.do(r.CreateModel(name="other"))
    assert len(r.history(reg.log, "other")) == 1  # the newest model called "other"
    first_other = next(e.entity for e in reg.log if e.body == rev.RegisteredModelCreated(name="other"))
    assert [a.type for a in r.model_history(reg.log, first_other)] == [
        "registered_model_created", "registered_model_deleted"]
    with pytest.raises(NotFoundError, match="ever called 'ghost'"):
        r.history(reg.log, "ghost")


def test_as_of_at_every_event_boundary(reg: Registry) -> None:
    """Replay the script: the state after each command is what as_of shows at its timestamp."""
    _script(reg)
    assert len(reg.after) == 13
    assert r.as_of(reg.log, T0) == r.EMPTY
    for t_ms, state in reg.after:
        assert r.as_of(reg.log, t_ms - 1) != state
        assert r.as_of(reg.log, t_ms) == state
        assert r.as_of(reg.log, t_ms + 999) == state  # nothing happened until the next command
    rename_ms = next(e.ts_ms for e in reg.log if e.type == "registered_model_renamed")
    before_rename = r.as_of(reg.log, rename_ms - 1)
    assert r.get_model(before_rename, "iris").aliases == {"champion": 2}  # the old name reads as of then
    with pytest.raises(NotFoundError):
        r.get_model(before_rename, "iris-prod")
    assert r.resolve_uri(before_rename, "models:/iris@champion").version == 2
    assert r.resolve_uri(r.as_of(reg.log, rename_ms), "models:/iris-prod/Production").version == 2


def test_public_surface_is_exactly_dunder_all() -> None:
    public = {n for n in vars(r) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(r, n)).__name__ == "module"}
    assert set(r.__all__) == public - modules
    assert len(r.__all__) == len(set(r.__all__))


def test_last_updated_times_follow_mlflow(iris: Registry) -> None:
    """MLflow's last_updated_timestamp: a registered model's moves with versions (created, staged, deleted),
    its name and description, not with tags or aliases; a version's with its stage and description only."""
    created = iris.now_ms  # version 3 was the last change
    for command in (r.SetModelTag(name="iris", key="k", value="v"), r.SetAlias(name="iris", alias="a", version=1),
                    r.SetVersionTag(name="iris", version=1, key="k", value="v"),
                    r.UpdateVersionDescription(name="iris", version=1, description="d")):
        iris.do(command)
    assert iris.model().updated_ms == created
    assert iris.version(1).updated_ms == iris.now_ms  # the description
    described = iris.now_ms
    iris.do(r.SetVersionTag(name="iris", version=1, key="k2", value="v"))
    assert iris.version(1).updated_ms == described
    iris.do(r.TransitionStage(name="iris", version=1, stage="Staging"))
    assert iris.model().updated_ms == iris.version(1).updated_ms == iris.now_ms
    iris.do(r.DeleteVersion(name="iris", version=2))
    assert iris.model().updated_ms == iris.now_ms
