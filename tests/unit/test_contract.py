"""The wire contract: round trips, validation errors, versions, golden payloads."""

from __future__ import annotations

import json
import math
from pathlib import Path

import orjson
import pytest

from producer import events as ev
from producer.codec import decode_batch, decode_event, encode_batch, encode_event, event_from_wire, event_to_wire
from producer.errors import ContractError, UnknownEventType, UnknownSchemaVersion
from producer.ids import experiment_id_for, id_time_ms, new_id

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"

BODIES: list[ev.Body] = [
    ev.ExperimentCreated(name="llm-sft", artifact_location="/a", tags=(("team", "nlp"),)),
    ev.ExperimentRenamed(name="llm-sft-2"),
    ev.ExperimentDeleted(),
    ev.ExperimentRestored(),
    ev.ExperimentTagSet(key="k", value="v"),
    ev.ExperimentTagDeleted(key="k"),
    ev.RunCreated(experiment_id="12", name="lora-r8", tags=(("a", "b"),), parent_run_id="p" * 32,
                  start_time_ms=1_763_850_000_000, user="ana"),
    ev.RunStatusChanged(status="RUNNING"),
    ev.RunEnded(status="FAILED", end_time_ms=1_763_850_000_500),
    ev.RunRenamed(name="new"),
    ev.RunDeleted(),
    ev.RunRestored(),
    ev.ParamsLogged(params=(("lr", "2e-05"), ("rank", "8"))),
    ev.TagsSet(tags=(("stage", "sft"),)),
    ev.TagsDeleted(keys=("stage",)),
    ev.MetricsLogged(keys=("acc",), steps=(0,), timestamps_ms=(5,), values=(0.9,), model_id="m-" + "a" * 32,
                     dataset_name="eval", dataset_digest="d1"),
    ev.MetricsLogged(keys=("loss", "lr", "loss"), steps=(0, 0, 1), timestamps_ms=(1, 2, 3),
                     values=(0.5, math.inf, math.nan)),
]


def _event(body: ev.Body, **kw: object) -> ev.Event:
    return ev.Event(id=new_id(), type=body.TYPE, entity="r" * 32, ts_ms=1_763_850_000_123, body=body,
                    source=ev.Source(host="gpu-1", pid=42, rank=3), seq=7, **kw)  # type: ignore[arg-type]


def _same(a: ev.Event, b: ev.Event) -> bool:
    # NaN != NaN, so compare the wire forms
    return orjson.dumps(event_to_wire(a)) == orjson.dumps(event_to_wire(b))


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b.TYPE)
def test_every_event_type_round_trips(body: ev.Body) -> None:
    e = _event(body, actor="ana")
    back = decode_event(encode_event(e))
    assert _same(back, e)
    assert back.source.rank == 3 and back.seq == 7 and back.actor == "ana"


def test_every_registered_tracking_type_is_covered() -> None:
    tracking = {cls.TYPE for cls in ev.TRACKING_BODIES}
    assert tracking == {b.TYPE for b in BODIES}


def test_non_finite_metric_values_travel_as_strings() -> None:
    e = _event(BODIES[-1])
    wire = json.loads(encode_event(e))
    assert wire["body"]["values"] == [0.5, "Infinity", "NaN"]
    back = decode_event(encode_event(e)).body
    assert isinstance(back, ev.MetricsLogged)
    assert back.values[1] == math.inf and math.isnan(back.values[2])


def test_batch_keeps_good_events_and_rejects_bad_ones_with_reasons() -> None:
    good = event_to_wire(_event(BODIES[0]))
    bad_steps = event_to_wire(_event(BODIES[-1]))
    bad_steps["body"]["steps"] = [0, "one", 2]
    items = [good, {"v": 1}, bad_steps, "not an object", {**good, "v": 99}, {**good, "type": "nope"}]
    events, rejected = decode_batch(orjson.dumps(items))
    assert [e.id for e in events] == [good["id"]]
    reasons = {r.position: r.reason for r in rejected}
    assert set(reasons) == {1, 2, 3, 4, 5}
    assert "steps" in reasons[2]
    assert "JSON object" in reasons[3]
    assert "schema version 99" in reasons[4]
    assert "unknown event type 'nope'" in reasons[5]
    assert all(r.raw for r in rejected)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(id=5), "'id'"),
        (lambda d: d.update(entity=""), "'entity'"),
        (lambda d: d.update(ts=-1), "'ts'"),
        (lambda d: d.update(ts="now"), "'ts'"),
        (lambda d: d.update(seq=-3), "'seq'"),
        (lambda d: d.update(src={"host": 1}), "'src'"),
        (lambda d: d.update(body=[]), "'body'"),
        (lambda d: d["body"].update(keys=[]), "'keys'"),
        (lambda d: d["body"].update(values=[1, 2]), "'values'"),
        (lambda d: d["body"].update(values=[1, "x", 3]), "non-number"),
        (lambda d: d["body"].update(timestamps_ms=[1, 2.5, 3]), "timestamps_ms"),
        (lambda d: d["body"].update(keys=["a", "", "b"]), "metric key"),
        (lambda d: d["body"].update(keys=["x" * 251, "a", "b"]), "longer than 250"),
    ],
)
def test_envelope_and_metric_validation_errors_name_the_field(mutate, message) -> None:  # type: ignore[no-untyped-def]
    d = event_to_wire(_event(BODIES[-1]))
    mutate(d)
    with pytest.raises(ContractError, match=message):
        event_from_wire(d)


def test_body_validation_errors() -> None:
    with pytest.raises(ContractError, match="status"):
        ev.RunEnded.from_wire({"status": "RUNNING", "end_time_ms": 1})
    with pytest.raises(ContractError, match="one of"):
        ev.RunStatusChanged.from_wire({"status": "DONE"})
    with pytest.raises(ContractError, match="must be a string"):
        ev.ParamsLogged.from_wire({"params": {"lr": 0.1}})
    with pytest.raises(ContractError, match="must not be empty"):
        ev.TagsSet.from_wire({"tags": {}})
    with pytest.raises(ContractError, match="experiment_id"):
        ev.RunCreated.from_wire({"start_time_ms": 1})
    with pytest.raises(ContractError, match="longer than 8000"):
        ev.ParamsLogged.from_wire({"params": {"big": "x" * 8001}})


def test_unknown_version_and_type_are_typed_errors() -> None:
    d = event_to_wire(_event(BODIES[0]))
    with pytest.raises(UnknownSchemaVersion):
        event_from_wire({**d, "v": 2})
    with pytest.raises(UnknownEventType):
        event_from_wire({**d, "type": "run_teleported"})
    with pytest.raises(ContractError, match="not valid JSON"):
        decode_event(b"{nope")
    with pytest.raises(ContractError, match="JSON array"):
        decode_batch(b'{"v": 1}')


def test_golden_payloads_still_decode() -> None:
    """Payloads written by earlier builds must always decode (upcast), never be rewritten."""
    files = sorted(FIXTURES.glob("tracking_*.json"))
    assert files, "golden fixtures missing"
    for f in files:
        wire = json.loads(f.read_text())
        e = event_from_wire(wire)
        assert e.id == wire["id"] and e.type == wire["type"]


def test_ids_are_time_ordered_uuid7_hex() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(i) == 32 and i[12] == "7" for i in ids)
    import time

    assert abs(id_time_ms(ids[-1]) - time.time() * 1000) < 5000


def test_experiment_ids_are_stable_decimal_strings() -> None:
    assert experiment_id_for("Default") == "0"
    a = experiment_id_for("llm-sft")
    assert a == experiment_id_for("llm-sft") and a.isdigit() and a != experiment_id_for("llm-sft2")


def test_encode_batch_is_a_json_array() -> None:
    batch = [_event(b) for b in BODIES[:3]]
    assert [d["id"] for d in orjson.loads(encode_batch(batch))] == [e.id for e in batch]
