"""Offset arithmetic of the Kafka path: table tests of pure functions."""

from __future__ import annotations

import pytest

from ingest.kafka_offsets import advance, caught_up, committable, lag


@pytest.mark.parametrize(("positions", "expected"), [
    pytest.param([], {}, id="nothing processed"),
    pytest.param([(0, 0)], {0: 1}, id="first record: next offset is 1"),
    pytest.param([(0, 5), (0, 6), (0, 7)], {0: 8}, id="consecutive records"),
    pytest.param([(0, 3), (1, 10), (0, 4), (2, 0)], {0: 5, 1: 11, 2: 1}, id="interleaved partitions"),
    pytest.param([(0, 3), (0, 9)], {0: 10}, id="gap (compaction, transaction markers) is skipped"),
    pytest.param([(1, 9), (1, 4)], {1: 10}, id="out of order within a batch: the highest wins"),
    pytest.param([(3, 41), (3, 41)], {3: 42}, id="a record seen twice"),
])
def test_committable_is_one_past_the_highest_processed_offset(positions: list[tuple[int, int]],
                                                              expected: dict[int, int]) -> None:
    assert committable(positions) == expected


def test_committable_refuses_negative_offsets() -> None:
    with pytest.raises(ValueError, match="offset must be >= 0"):
        committable([(0, -1)])


@pytest.mark.parametrize(("current", "update", "expected"), [
    pytest.param({}, {}, {}, id="empty"),
    pytest.param({}, {0: 3}, {0: 3}, id="new partition"),
    pytest.param({0: 3}, {0: 7}, {0: 7}, id="moves forward"),
    pytest.param({0: 7}, {0: 3}, {0: 7}, id="never moves back"),
    pytest.param({0: 7, 1: 2}, {1: 5, 2: 1}, {0: 7, 1: 5, 2: 1}, id="merge"),
])
def test_advance_keeps_the_highest_watermark(current: dict[int, int], update: dict[int, int],
                                             expected: dict[int, int]) -> None:
    before = dict(current)
    assert advance(current, update) == expected
    assert current == before  # pure


@pytest.mark.parametrize(("produced", "written", "expected"), [
    pytest.param({}, {}, True, id="nothing produced"),
    pytest.param({0: 0}, {}, False, id="nothing written yet"),
    pytest.param({0: 0}, {0: 1}, True, id="record 0 written: next offset 1"),
    pytest.param({0: 5}, {0: 5}, False, id="next offset 5 means record 5 is not written"),
    pytest.param({0: 5, 1: 2}, {0: 9, 1: 2}, False, id="one partition behind"),
    pytest.param({0: 5, 1: 2}, {0: 9, 1: 3, 2: 100}, True, id="all past"),
])
def test_caught_up_compares_last_produced_offset_with_next_offset(produced: dict[int, int], written: dict[int, int],
                                                                  expected: bool) -> None:
    assert caught_up(produced, written) is expected


@pytest.mark.parametrize(("end", "committed", "expected"), [
    pytest.param({}, {}, {}, id="no partitions"),
    pytest.param({0: 10}, {}, {0: 10}, id="nothing committed"),
    pytest.param({0: 10, 1: 4}, {0: 10, 1: 1}, {0: 0, 1: 3}, id="per partition"),
    pytest.param({0: 3}, {0: 5}, {0: 0}, id="committed ahead of a stale end offset: never negative"),
    pytest.param({2: 1, 0: 1}, {}, {0: 1, 2: 1}, id="sorted by partition"),
])
def test_lag_is_end_minus_committed(end: dict[int, int], committed: dict[int, int], expected: dict[int, int]) -> None:
    got = lag(end, committed)
    assert got == expected
    assert list(got) == sorted(got)
