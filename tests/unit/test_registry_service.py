"""RegistryService over an in-memory log that arbitrates positions with the real ingest check (no engine)."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import pytest

import registry as r
from ingest.registry_sequence import check_registry_sequence
from producer.errors import ConflictError, ContractError, NotFoundError, TransientError
from producer.events import Event, Source
from producer.registry_events import REGISTRY_EVENT_TYPES
from registry.service import RegistryService, id_after, model_id_for_name


class Refusal(NamedTuple):
    event_id: str
    reason: str


class Result(NamedTuple):
    rejected: list[Refusal]


class MemoryLog:
    """Both ports: an append that runs the ingest position check, and a reader of what was accepted."""

    def __init__(self) -> None:
        self.log: list[Event] = []
        self.appends = 0
        self.refused: list[Refusal] = []
        self.reads = 0
        self.before_append: Callable[[], None] | None = None
        self.fail_with: Exception | None = None
        self._lock = threading.Lock()

    def append(self, events: Sequence[Event]) -> Result:
        hook, self.before_append = self.before_append, None
        if hook is not None:
            hook()  # another process wins the race in between
        if self.fail_with is not None:
            raise self.fail_with
        with self._lock:
            self.appends += 1
            known = {e.id for e in self.log}
            positions = Counter(e.entity for e in self.log)
            ok, bad = check_registry_sequence(list(events), positions, known)
            self.log += [e for e in ok if e.id not in known]
            refused = [Refusal(c.event.id, c.reason) for c in bad]
            self.refused += refused
            return Result(refused)

    def events(self, models: Sequence[str] | None = None, *, until_ms: int | None = None) -> Iterable[Event]:
        self.reads += 1
        return sorted((e for e in self.log if (models is None or e.entity in models)
                       and (until_ms is None or e.ts_ms <= until_ms)), key=lambda e: (e.entity, e.id))

    def events_after(self, model_id: str, position: int) -> list[Event]:
        return sorted((e for e in self.log if e.entity == model_id), key=lambda e: e.id)[position:]

    def heads(self) -> dict[str, int]:
        return dict(Counter(e.entity for e in self.log))

    def claimants(self, name: str, *, until_ms: int | None = None) -> list[str]:
        return sorted({e.entity for e in self.log if (until_ms is None or e.ts_ms <= until_ms)
                       and name in (getattr(e.body, "name", None), getattr(e.body, "new_name", None))})


def ticking(start: int = 1_763_850_000_000, step: int = 1000) -> Callable[[], int]:
    it = itertools.count(start, step)
    return lambda: next(it)


def service(log: MemoryLog, **kw: object) -> RegistryService:
    kw = {"clock_ms": ticking(), "sleep": lambda s: None, "source": Source(host="api-1", pid=7), **kw}
    return RegistryService(log, log, **kw)  # type: ignore[arg-type]


def test_execute_appends_sequenced_events_and_folds_them() -> None:
    log = MemoryLog()
    s = service(log)
    created = s.execute(r.CreateModel(name="iris", tags=(("team", "cv"),)), actor="ana")
    s.execute(r.CreateVersion(name="iris", source="s3://m/1"), actor="bo")
    arch = s.execute(r.TransitionStage(name="iris", version=1, stage="production", archive_existing_versions=True),
                     actor="bo")
    s.execute(r.CreateVersion(name="iris", source="s3://m/2"), actor="bo")
    arch = s.execute(r.TransitionStage(name="iris", version=2, stage="Production", archive_existing_versions=True),
                     actor="cy")
    assert [e.seq for e in log.log] == [1, 2, 3, 4, 5, 6]  # the archiving of v1 is position 6
    assert [e.type for e in arch] == ["model_version_stage_transitioned"] * 2
    assert created[0].entity == model_id_for_name("iris", 0)
    assert {e.source for e in log.log} == {Source(host="api-1", pid=7)}
    assert [e.actor for e in log.log] == ["ana", "bo", "bo", "bo", "cy", "cy"]
    assert s.state() == r.project(log.log)
    m = s.model("iris")
    assert {n: v.stage for n, v in m.versions.items()} == {1: "Archived", 2: "Production"}
    assert s.resolve("models:/iris/Production").version == 2


def test_a_command_that_records_nothing_appends_nothing() -> None:
    log = MemoryLog()
    s = service(log)
    s.execute(r.CreateModel(name="iris"), actor="ana")
    assert s.execute(r.DeleteModelTag(name="iris", key="absent"), actor="ana") == []
    assert log.appends == 1


@pytest.mark.parametrize("command,error", [
    (r.CreateVersion(name="nope", source="s3://m"), NotFoundError),
    (r.CreateModel(name="iris"), ConflictError),
    (r.TransitionStage(name="iris", version=1, stage="Prod"), ContractError),
    (r.SetAlias(name="iris", alias="champion", version=9), NotFoundError),
])
def test_domain_errors_come_back_at_once_and_append_nothing(command: r.Command, error: type[Exception]) -> None:
    log = MemoryLog()
    s = service(log)
    s.execute(r.CreateModel(name="iris"), actor="ana")
    s.execute(r.CreateVersion(name="iris", source="s3://m"), actor="ana")
    with pytest.raises(error):
        s.execute(command, actor="ana")
    assert log.appends == 2


def test_fifty_concurrent_create_versions_number_1_to_50() -> None:
    log = MemoryLog()
    s = service(log, clock_ms=lambda: 1_763_850_000_000)
    s.execute(r.CreateModel(name="iris"), actor="ana")
    threads = [threading.Thread(target=s.execute, args=(r.CreateVersion(name="iris", source=f"s3://m/{i}"), "t"))
               for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(s.model("iris").versions) == list(range(1, 51))
    assert sorted(v.source for v in s.model("iris").versions.values()) == sorted(f"s3://m/{i}" for i in range(50))
    assert log.refused == []


def test_a_stale_process_is_refused_then_rereads_the_log_and_decides_again() -> None:
    log = MemoryLog()
    a, b = service(log), service(log, distributed=False)  # b does not catch up before deciding
    a.execute(r.CreateModel(name="iris"), actor="ana")
    b.reload()
    a.execute(r.CreateVersion(name="iris", source="s3://a/1"), actor="ana")  # b has not seen it
    events = b.execute(r.CreateVersion(name="iris", source="s3://b/1"), actor="bo")
    assert events[0].body.version == 2 and events[0].seq == 3  # type: ignore[attr-defined]
    assert [x.reason for x in log.refused] == ["model changed concurrently (expected position 3, got 2)"]
    assert b.state() == r.project(log.log) == service(log).state()  # a fresh process folds the same


def test_losing_a_race_is_retried_transparently() -> None:
    log = MemoryLog()
    a, b = service(log, distributed=True), service(log, distributed=True)
    a.execute(r.CreateModel(name="iris"), actor="ana")
    log.before_append = lambda: a.execute(r.CreateVersion(name="iris", source="s3://a"), actor="ana")
    b.execute(r.CreateVersion(name="iris", source="s3://b"), actor="bo")
    assert len(log.refused) == 1
    versions = b.model("iris").versions
    assert {n: v.source for n, v in versions.items()} == {1: "s3://a", 2: "s3://b"}
    assert a.model("iris") == b.model("iris")


def test_two_processes_creating_one_name_collide_on_one_model_id() -> None:
    log = MemoryLog()
    a, b = service(log), service(log, distributed=False)
    b.reload()
    a.execute(r.CreateModel(name="iris", description="a's"), actor="ana")
    with pytest.raises(ConflictError, match=r"Registered Model \(name=iris\) already exists"):
        b.execute(r.CreateModel(name="iris", description="b's"), actor="bo")
    assert [e.body.description for e in log.log] == ["a's"]  # type: ignore[attr-defined]
    assert len(log.refused) == 1


def test_a_name_created_again_after_a_delete_gets_the_next_id() -> None:
    log = MemoryLog()
    s = service(log)
    first = s.execute(r.CreateModel(name="iris"), actor="ana")[0].entity
    s.execute(r.DeleteModel(name="iris"), actor="ana")
    second = s.execute(r.CreateModel(name="iris"), actor="ana")[0].entity
    assert (first, second) == (model_id_for_name("iris", 0), model_id_for_name("iris", 1))
    stale = service(log, distributed=False)
    stale._stale = False  # as if it had loaded before any of it: it proposes id #0 and learns
    assert stale.execute(r.CreateModel(name="wine"), actor="bo")[0].entity == model_id_for_name("wine", 0)


def test_it_gives_up_after_max_attempts_with_the_last_reason() -> None:
    log = MemoryLog()
    sleeps: list[float] = []
    s = service(log, max_attempts=3, sleep=sleeps.append, jitter=lambda: 0.5, backoff_s=0.01)
    s.execute(r.CreateModel(name="iris"), actor="ana")
    log.append = lambda events: Result([Refusal(e.id, "ClickHouse said no") for e in events])  # type: ignore[method-assign]
    with pytest.raises(ConflictError, match="refused it 3 times, last because ClickHouse said no"):
        s.execute(r.SetModelTag(name="iris", key="k", value="v"), actor="ana")
    assert sleeps == [0.01, 0.02]  # backoff * attempt * (0.5 + jitter), none after the last try


def test_an_append_that_failed_makes_the_next_call_reread_the_log() -> None:
    log = MemoryLog()
    s = service(log)
    s.execute(r.CreateModel(name="iris"), actor="ana")
    log.fail_with = TransientError("broker down")
    with pytest.raises(TransientError):
        s.execute(r.CreateVersion(name="iris", source="s3://m"), actor="ana")
    log.fail_with = None
    reads = log.reads
    s.execute(r.CreateVersion(name="iris", source="s3://m"), actor="ana")
    assert log.reads == reads + 1  # reloaded first
    assert list(s.model("iris").versions) == [1]


def test_times_never_go_back_and_ids_always_grow_along_a_model_stream() -> None:
    log = MemoryLog()
    times = iter([5_000, 4_000, 3_000, 6_000])  # a clock that jumps back (another host's clock, NTP)
    ids = iter(["01a0000000007000a000000000000004", "01a0000000007000a000000000000003",
                "01a0000000007000a000000000000002", "01a0000000007000a000000000000001"])
    s = service(log, clock_ms=lambda: next(times), new_id=lambda: next(ids))
    s.execute(r.CreateModel(name="iris"), actor="ana")
    s.execute(r.CreateVersion(name="iris", source="s3://m"), actor="ana")
    s.execute(r.SetModelTag(name="iris", key="k", value="v"), actor="ana")
    s.execute(r.SetModelTag(name="iris", key="k", value="w"), actor="ana")
    assert [e.ts_ms for e in log.log] == [5_000, 5_000, 5_000, 6_000]
    firsts = [e.id[:16] for e in log.log]
    assert firsts == sorted(firsts) and len(set(firsts)) == 4
    assert all(e.id[12] == "7" and e.id[16] in "89ab" for e in log.log)  # still UUIDv7


def test_id_after_is_above_in_the_first_64_bits_and_rolls_into_the_next_ms() -> None:
    nxt = id_after("0190000000007abc8000000000000000")
    assert nxt[:16] == "0190000000007abd" and nxt[16] in "89ab"
    rolled = id_after("0190000000007fff8000000000000000")
    assert rolled[:16] == "0190000000017000"


def test_reads_as_of_and_the_audit_trail_come_from_the_log() -> None:
    log = MemoryLog()
    s = service(log, clock_ms=ticking(step=1000))
    s.execute(r.CreateModel(name="iris"), actor="ana")  # t0
    s.execute(r.CreateVersion(name="iris", source="s3://m/1"), actor="bo")  # t0 + 1 s
    s.execute(r.SetAlias(name="iris", alias="champion", version=1), actor="bo")  # + 2 s
    s.execute(r.RenameModel(name="iris", new_name="iris-v2"), actor="cy")  # + 3 s
    t0 = log.log[0].ts_ms
    assert s.model("iris", as_of_ms=t0).versions == {}
    assert s.resolve("models:/iris@champion", as_of_ms=t0 + 2000).source == "s3://m/1"
    with pytest.raises(NotFoundError):
        s.resolve("models:/iris@champion", as_of_ms=t0 + 1000)
    with pytest.raises(NotFoundError):
        s.model("iris")  # renamed since
    with pytest.raises(NotFoundError):
        s.model("iris", as_of_ms=t0 - 1)
    assert s.model("iris-v2").aliases == {"champion": 1}
    assert s.state(as_of_ms=t0 + 3000) == s.state()
    trail = s.history("iris")
    assert [(a.actor, a.type) for a in trail] == [
        ("ana", "registered_model_created"), ("bo", "model_version_created"),
        ("bo", "registered_model_alias_set"), ("cy", "registered_model_renamed")]
    assert trail[-1].changes == (r.Change("name", "iris", "iris-v2"),)
    assert [a.type for a in s.history("iris-v2")] == [a.type for a in trail]  # one trail across the rename
    with pytest.raises(NotFoundError, match="no registered model was ever called 'iris-v2' as of"):
        s.history("iris-v2", as_of_ms=t0 + 2000)  # not yet
    with pytest.raises(NotFoundError):
        s.history("never")


def test_reload_folds_the_same_state_as_live() -> None:
    log = MemoryLog()
    s = service(log)
    s.execute(r.CreateModel(name="iris"), actor="ana")
    for i in range(3):
        s.execute(r.CreateVersion(name="iris", source=f"s3://m/{i}"), actor="ana")
    s.execute(r.DeleteVersion(name="iris", version=2), actor="ana")
    live = s.state()
    assert s.reload() == 5
    assert s.state() == live == service(log).state()
    assert all(t in REGISTRY_EVENT_TYPES for t in {e.type for e in log.log})
