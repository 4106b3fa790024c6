"""Properties of the registry fold over random command sequences.

Commands are drawn from small universes (3 names, versions 1-6, a few aliases
and stages, valid or not) so that they collide: renames onto taken names,
aliases on deleted versions, archiving, re-created names. Invalid commands
raise and are skipped, as the service would answer them with an error.
"""

from __future__ import annotations

import itertools
from functools import reduce

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import registry as r
from producer.codec import decode_batch, encode_batch
from producer.errors import RunledgerError
from producer.events import Event

MODEL_NAMES = ("iris", "wine", "digits")
NAMES = st.sampled_from((*MODEL_NAMES, "iris-v2"))  # one free name, for renames and re-creates
VERSIONS = st.integers(min_value=1, max_value=5)
STAGES = st.sampled_from(["None", "staging", "Production", "ARCHIVED", "prod"])
ALIASES = st.sampled_from(["champion", "challenger", "latest", "v2"])
KEYS = st.sampled_from(["owner", "acc"])
TEXT = st.text(alphabet="ab é\n", max_size=4)

# (weight, strategy): versions, stages and aliases are what the registry is about; deleting a
# whole model is drawn rarely, or few scripts would get far.
WEIGHTED: list[tuple[int, st.SearchStrategy[r.Command]]] = [
    (1, st.builds(r.CreateModel, name=NAMES, description=TEXT,
                  tags=st.lists(st.tuples(KEYS, TEXT), max_size=2).map(tuple))),
    (2, st.builds(r.RenameModel, name=NAMES, new_name=NAMES)),
    (1, st.builds(r.UpdateModelDescription, name=NAMES, description=TEXT)),
    (1, st.builds(r.SetModelTag, name=NAMES, key=KEYS, value=TEXT)),
    (1, st.builds(r.DeleteModelTag, name=NAMES, key=KEYS)),
    (1, st.builds(r.DeleteModel, name=NAMES)),
    (5, st.builds(r.CreateVersion, name=NAMES, source=st.sampled_from(["s3://m/1", "runs:/r/model", ""]),
                  run_id=st.none() | st.just("run-1"), model_id=st.none() | st.just("m-1"))),
    (1, st.builds(r.UpdateVersionDescription, name=NAMES, version=VERSIONS, description=TEXT)),
    (2, st.builds(r.SetVersionTag, name=NAMES, version=VERSIONS, key=KEYS, value=TEXT)),
    (1, st.builds(r.DeleteVersionTag, name=NAMES, version=VERSIONS, key=KEYS)),
    (8, st.builds(r.TransitionStage, name=NAMES, version=VERSIONS, stage=STAGES,
                  archive_existing_versions=st.booleans())),
    (2, st.builds(r.DeleteVersion, name=NAMES, version=VERSIONS)),
    (4, st.builds(r.SetAlias, name=NAMES, alias=ALIASES, version=VERSIONS)),
    (2, st.builds(r.DeleteAlias, name=NAMES, alias=ALIASES)),
]
COMMANDS = st.sampled_from([s for weight, s in WEIGHTED for _ in range(weight)]).flatmap(lambda s: s)

# Every script starts from models that exist and have versions, or most random commands would just fail.
PREFIX: list[tuple[r.Command, int]] = [(r.CreateModel(name=n), 1) for n in MODEL_NAMES] + [
    (r.CreateVersion(name=n, source=f"s3://{n}/{i}"), 1) for n in MODEL_NAMES for i in (1, 2)
]
SCRIPTS = st.lists(st.tuples(COMMANDS, st.integers(min_value=0, max_value=3)), min_size=20, max_size=80).map(
    lambda tail: PREFIX + tail
)


def run(script: list[tuple[r.Command, int]]) -> tuple[list[Event], list[tuple[int, r.RegistryState]]]:
    """Decide + apply each command live; the log, and (ts_ms, state) after every accepted command."""
    ids = (f"{i:032x}" for i in itertools.count(1))
    state, log, after, now_ms = r.EMPTY, [], [], 1_763_850_000_000
    for command, step_ms in script:
        now_ms += step_ms  # 0: several commands in one millisecond
        try:
            events = r.decide(state, command, now_ms, "actor", ids.__next__)
        except RunledgerError:
            continue
        log.extend(events)
        for e in events:
            state = r.apply(state, e)  # step by step, as the live projection does
        after.append((now_ms, state))
    return log, after


def live_state(after: list[tuple[int, r.RegistryState]]) -> r.RegistryState:
    return after[-1][1] if after else r.EMPTY


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(SCRIPTS)
def test_live_fold_rebuild_from_stored_bytes_and_as_of_agree(script: list[tuple[r.Command, int]]) -> None:
    log, after = run(script)
    live = live_state(after)
    assert r.project(log) == live == reduce(r.apply, log, r.EMPTY)
    stored, rejected = decode_batch(encode_batch(log))  # stands in for reading the log back
    assert not rejected and stored == log
    assert r.project(stored) == live
    assert r.replay(iter(stored)) == live
    if log:
        assert r.as_of(stored, log[-1].ts_ms) == live


@PROPERTY
@given(SCRIPTS)
def test_as_of_every_instant_is_the_state_after_the_last_command_by_then(script: list[tuple[r.Command, int]]) -> None:
    log, after = run(script)
    by_ms = dict(after)  # commands in one millisecond: the last one's state
    for t_ms, state in by_ms.items():
        assert r.as_of(log, t_ms) == state


@PROPERTY
@given(SCRIPTS)
def test_a_log_read_back_per_entity_rebuilds_the_same_registry(script: list[tuple[r.Command, int]]) -> None:
    log, after = run(script)
    by_entity = sorted(log, key=lambda e: e.entity)  # stable: each model's events keep their order
    assert r.project(by_entity) == live_state(after)
    assert r.project(sorted(log, key=lambda e: e.entity, reverse=True)) == live_state(after)  # still stable


@PROPERTY
@given(SCRIPTS)
def test_invariants_hold_after_every_command(script: list[tuple[r.Command, int]]) -> None:
    log, after = run(script)
    created: dict[str, list[int]] = {}
    for e in log:
        if e.type == "model_version_created":
            created.setdefault(e.entity, []).append(e.body.version)  # type: ignore[attr-defined]
    for numbers in created.values():
        assert numbers == list(range(1, len(numbers) + 1))  # 1, 2, 3 ... never reused, never skipped
    for _, state in after:
        live = [m for m in state.models.values() if not m.deleted]
        assert state.names == {m.name: m.id for m in live}  # one live model per name, and all named
        for m in live:
            assert all(n in m.versions for n in m.aliases.values())  # aliases point at live versions
            assert all(0 < n <= m.last_version for n in m.versions)
            assert all(v.stage in r.STAGES for v in m.versions.values())
            assert list(m.versions) == sorted(m.versions)


@PROPERTY
@given(SCRIPTS)
def test_every_event_is_in_exactly_one_models_audit_trail(script: list[tuple[r.Command, int]]) -> None:
    log, _ = run(script)
    model_ids = {e.entity for e in log}
    trails = [a.event_id for model_id in model_ids for a in r.model_history(log, model_id)]
    assert sorted(trails) == sorted(e.id for e in log)
