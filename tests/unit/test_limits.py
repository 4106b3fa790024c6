"""The two rules of :mod:`producer.limits`, and that the contract decodes what every door accepts."""

from __future__ import annotations

import pytest

from producer import events as ev
from producer import limits
from producer.codec import event_from_wire, event_to_wire, validated
from producer.errors import ContractError
from producer.events import Event, Source
from tracking import CreateExperiment, LogBatch, SetExperimentTag, TrackingState, decide, fold

#: What released contracts decoded (the log is immutable: a rebuild must still decode all of it).
RELEASED_STORED = {
    "KEY": 250, "PARAM_VALUE": 8000, "RUN_TAG_VALUE": 8000, "RUN_NAME": 250, "EXPERIMENT_NAME": 500,
    "EXPERIMENT_TAG_VALUE": 100_000, "EXPERIMENT_ID": 64, "TEXT": 100_000, "ENTITY": 256,
}


@pytest.mark.parametrize("name", sorted(limits.ALL))
def test_stored_is_never_below_api(name: str) -> None:
    limit = limits.ALL[name]
    assert limit.stored >= limit.api > 0


@pytest.mark.parametrize("name", sorted(RELEASED_STORED))
def test_stored_never_drops_below_a_released_value(name: str) -> None:
    assert limits.ALL[name].stored >= RELEASED_STORED[name]


def _event(entity: str, body: ev.Body) -> Event:
    return Event(id="0" * 32, type=body.TYPE, entity=entity, ts_ms=1, body=body, source=Source(host="h", pid=1, rank=0))


def _accepted(state: TrackingState, cmd: object) -> list[Event]:
    changes = decide(state, cmd, now_ms=1, artifact_root="/a")  # type: ignore[arg-type]
    return [_event(c.entity, c.body) for c in changes]


def test_the_longest_values_a_command_may_carry_decode() -> None:
    state = TrackingState()
    created = _accepted(state, CreateExperiment(
        name="e" * limits.EXPERIMENT_NAME.api,
        tags=(("k" * limits.EXPERIMENT_TAG_KEY.api, "v" * limits.EXPERIMENT_TAG_VALUE.api),)))
    fold(created, state)
    eid = created[0].entity
    tag = _accepted(state, SetExperimentTag(experiment_id=eid, key="t", value="x" * limits.EXPERIMENT_TAG_VALUE.api))
    for e in created + tag:
        assert validated(e) == e
        assert event_from_wire(event_to_wire(e)) == e


def test_one_character_over_the_api_limit_is_refused_by_the_domain_not_the_log() -> None:
    with pytest.raises(ContractError, match=r"exceeds the maximum length of 20000"):
        decide(TrackingState(), CreateExperiment(name="n", tags=(("k", "v" * (limits.EXPERIMENT_TAG_VALUE.api + 1)),)),
               now_ms=1)
    with pytest.raises(ContractError):
        decide(TrackingState(), LogBatch(run_id="r", params=(("k" * (limits.KEY.api + 1), "v"),)), now_ms=1)


def test_contract_refuses_over_stored() -> None:
    body = {"key": "k", "value": "v" * (limits.EXPERIMENT_TAG_VALUE.stored + 1)}
    with pytest.raises(ContractError):
        ev.ExperimentTagSet.from_wire(body)


def test_server_built_events_pass_the_contracts_decoder_before_they_are_accepted() -> None:
    """``Services.append`` runs ``validated`` on every event it builds: a body made in code, bypassing
    ``from_wire``, cannot reach the log when the decoder would refuse it on rebuild."""
    too_long = _event("7", ev.ExperimentTagSet(key="k", value="v" * (limits.EXPERIMENT_TAG_VALUE.stored + 1)))
    with pytest.raises(ContractError, match="experiment_tag_set"):
        validated(too_long)
    bad_entity = _event("", ev.ExperimentTagSet(key="k", value="v"))
    with pytest.raises(ContractError, match="entity"):
        validated(bad_entity)
