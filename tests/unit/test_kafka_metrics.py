"""Ingest counters and their Prometheus text; the gateway's read-your-writes watermarks (injected clock and poll)."""

from __future__ import annotations

import threading

import httpx
import pytest
from kafka_broker import prometheus_value

from ingest.kafka_metrics import IngestStats, MetricsServer, RateWindow, render_prometheus
from producer.errors import TransientError
from query.kafka_log import Watermarks


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rates_over_the_window() -> None:
    clock = FakeClock()
    w = RateWindow(window_s=10, clock=clock)
    assert w.rates(0, 0) == (0.0, 0.0)
    w.add(0, 0)
    clock.now += 2
    w.add(100, 50_000)
    assert w.rates(100, 50_000) == (50.0, 25_000.0)
    clock.now += 20  # old samples fall out of the window
    w.add(100, 50_000)
    clock.now += 1
    w.add(110, 60_000)
    eps, pps = w.rates(110, 60_000)
    assert eps < 10 and pps < 10_000


def test_stats_render_as_prometheus_text() -> None:
    clock = FakeClock()
    st = IngestStats("runledger.events", 'gr"oup', clock=clock)
    st.set_state("running")
    st.assigned((2, 0))
    st.batch_written(records=3, events=7, points=20_000, dead_letters=1, seconds=0.05)
    clock.now += 1
    st.batch_written(records=2, events=3, points=10_000, dead_letters=0, seconds=0.05)
    st.committed({0: 10, 2: 4})
    st.seen_end(0, 15)
    st.seen_end(2, 4)
    st.seen_end(7, None)
    st.count("commit_failures")
    text = render_prometheus(st.snapshot())
    labels = {"topic": "runledger.events", "group": 'gr\\"oup'}
    assert prometheus_value(text, "runledger_ingest_records_total", **labels) == 5
    assert prometheus_value(text, "runledger_ingest_points_total") == 30_000
    assert prometheus_value(text, "runledger_ingest_dead_letters_total") == 1
    assert prometheus_value(text, "runledger_ingest_commit_failures_total") == 1
    assert prometheus_value(text, "runledger_ingest_points_per_second") == 10_000
    assert prometheus_value(text, "runledger_ingest_lag_records", partition="0") == 5
    assert prometheus_value(text, "runledger_ingest_lag_records", partition="2") == 0
    assert prometheus_value(text, "runledger_ingest_assigned_partitions") == 2
    assert prometheus_value(text, "runledger_ingest_up") == 1
    for line in text.splitlines():
        assert line.startswith("#") or line.count(" ") == 1 or "{" in line


def test_metrics_server_answers_metrics_health_and_clear_errors() -> None:
    st = IngestStats("t", "g")
    server = MetricsServer("127.0.0.1", 0, lambda: [st.snapshot()])
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert "runledger_ingest_up" in httpx.get(f"{base}/metrics").text
        h = httpx.get(f"{base}/health")
        assert h.status_code == 200 and h.json()["workers"][0]["state"] == "starting"
        st.set_state("stopped")
        assert httpx.get(f"{base}/health").status_code == 503
        nope = httpx.get(f"{base}/nope")
        assert nope.status_code == 404 and "try /metrics" in nope.json()["error"]["message"]
        assert httpx.post(f"{base}/metrics", content=b"\x00junk").status_code == 405
    finally:
        server.close()


# -------------------------------------------------------------- watermarks


class Polls:
    def __init__(self, answers: list[dict[int, int] | Exception]) -> None:
        self.answers = answers
        self.calls = 0

    def __call__(self) -> dict[int, int]:
        self.calls += 1
        a = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(a, Exception):
            raise a
        return a


def test_wait_past_polls_until_ingest_wrote_every_produced_offset() -> None:
    polls = Polls([{0: 3}, TransientError("ClickHouse blinked"), {0: 6, 1: 1}])
    w = Watermarks(polls, interval_s=0.001)
    assert w.wait_past({0: 5, 1: 0}, timeout_s=5.0)
    assert polls.calls == 3 and w.known() == {0: 6, 1: 1}
    assert w.wait_past({0: 2}, timeout_s=0.0)  # already known: no poll, no wait
    assert polls.calls == 3


def test_wait_past_gives_up_after_the_timeout() -> None:
    w = Watermarks(Polls([{0: 1}]), interval_s=0.001)
    assert not w.wait_past({0: 1}, timeout_s=0.05)


def test_an_in_process_worker_advances_waiters_without_a_poll() -> None:
    gate = threading.Event()

    def slow_poll() -> dict[int, int]:
        gate.wait(5)
        return {}

    w = Watermarks(slow_poll, interval_s=10.0)
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(w.wait_past({3: 9}, timeout_s=5.0)))
    t.start()
    w.advance({3: 10})
    gate.set()
    t.join(5)
    assert result == [True]


@pytest.mark.parametrize("waiters", [8])
def test_many_waiters_share_one_poll_at_a_time(waiters: int) -> None:
    in_flight = 0
    most = 0
    lock = threading.Lock()
    calls = 0

    def poll() -> dict[int, int]:
        nonlocal in_flight, most, calls
        with lock:
            in_flight += 1
            calls += 1
            most = max(most, in_flight)
        threading.Event().wait(0.01)
        with lock:
            in_flight -= 1
        return {0: calls}

    w = Watermarks(poll, interval_s=0.0)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda i=i: results.append(w.wait_past({0: 3 + i}, timeout_s=5.0)))
               for i in range(waiters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [True] * waiters and most == 1
