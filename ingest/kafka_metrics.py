"""What an ingest worker reports: counters, per-partition lag, throughput; Prometheus text and a tiny HTTP server.

:class:`IngestStats` is written by the consumer loop and read by whoever
serves ``/metrics`` (another thread), so every access takes its lock.
:func:`render_prometheus` is pure. :class:`MetricsServer` is the standalone
worker's endpoint (stdlib ``http.server``; the query service serves the same
text from its own app).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

__all__ = ["IngestStats", "StatsSnapshot", "RateWindow", "render_prometheus", "MetricsServer"]


class RateWindow:
    """Per-second rates of monotonically growing counters over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._samples: collections.deque[tuple[float, int, int]] = collections.deque()

    def add(self, events_total: int, points_total: int) -> None:
        now = self._clock()
        self._samples.append((now, events_total, points_total))
        while len(self._samples) > 2 and now - self._samples[1][0] > self.window_s:
            self._samples.popleft()

    def rates(self, events_total: int, points_total: int) -> tuple[float, float]:
        """(events/s, points/s) from the oldest sample in the window to the given totals now."""
        if not self._samples:
            return 0.0, 0.0
        t0, e0, p0 = self._samples[0]
        dt = self._clock() - t0
        if dt <= 0:
            return 0.0, 0.0
        return (events_total - e0) / dt, (points_total - p0) / dt


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    topic: str
    group: str
    state: str
    records: int
    events: int
    points: int
    dead_letters: int
    batches: int
    commit_failures: int
    insert_retries: int
    rebalances: int
    events_per_s: float
    points_per_s: float
    insert_seconds_sum: float
    committed: dict[int, int]
    """partition -> next offset committed by this worker."""
    end: dict[int, int]
    """partition -> end offset last seen by this worker."""
    assigned: tuple[int, ...]

    def lag(self) -> dict[int, int]:
        """Records not yet committed, per assigned partition whose end offset is known."""
        return {p: max(0, self.end[p] - self.committed.get(p, 0)) for p in self.assigned if p in self.end}

    def as_dict(self) -> dict[str, object]:
        return {"topic": self.topic, "group": self.group, "state": self.state, "records": self.records,
                "events": self.events, "points": self.points, "dead_letters": self.dead_letters,
                "batches": self.batches, "commit_failures": self.commit_failures,
                "insert_retries": self.insert_retries, "rebalances": self.rebalances,
                "events_per_s": round(self.events_per_s, 1), "points_per_s": round(self.points_per_s, 1),
                "assigned": list(self.assigned), "committed": self.committed, "lag": self.lag()}


class IngestStats:
    """Live counters of one worker (thread-safe)."""

    def __init__(self, topic: str, group: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.topic = topic
        self.group = group
        self._lock = threading.Lock()
        self._state = "starting"
        self._counts = dict.fromkeys(("records", "events", "points", "dead_letters", "batches", "commit_failures",
                                      "insert_retries", "rebalances"), 0)
        self._insert_s = 0.0
        self._committed: dict[int, int] = {}
        self._end: dict[int, int] = {}
        self._assigned: tuple[int, ...] = ()
        self._rates = RateWindow(clock=clock)

    def set_state(self, state: str) -> None:
        with self._lock:
            self._state = state

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def batch_written(self, *, records: int, events: int, points: int, dead_letters: int, seconds: float) -> None:
        with self._lock:
            c = self._counts
            c["records"] += records
            c["events"] += events
            c["points"] += points
            c["dead_letters"] += dead_letters
            c["batches"] += 1
            self._insert_s += seconds
            self._rates.add(c["events"], c["points"])

    def committed(self, offsets: dict[int, int]) -> None:
        with self._lock:
            self._committed.update(offsets)

    def seen_end(self, partition: int, end_offset: int | None) -> None:
        if end_offset is None:
            return
        with self._lock:
            self._end[partition] = end_offset

    def assigned(self, partitions: tuple[int, ...]) -> None:
        with self._lock:
            self._assigned = tuple(sorted(partitions))

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            c = dict(self._counts)
            eps, pps = self._rates.rates(c["events"], c["points"])
            return StatsSnapshot(
                topic=self.topic, group=self.group, state=self._state, records=c["records"], events=c["events"],
                points=c["points"], dead_letters=c["dead_letters"], batches=c["batches"],
                commit_failures=c["commit_failures"], insert_retries=c["insert_retries"],
                rebalances=c["rebalances"], events_per_s=eps, points_per_s=pps, insert_seconds_sum=self._insert_s,
                committed=dict(self._committed), end=dict(self._end), assigned=self._assigned)


_COUNTERS = (
    ("records", "runledger_ingest_records_total", "Kafka records processed (written or dead-lettered)"),
    ("events", "runledger_ingest_events_total", "Events written to ClickHouse"),
    ("points", "runledger_ingest_points_total", "Metric points written to ClickHouse"),
    ("dead_letters", "runledger_ingest_dead_letters_total", "Records or events sent to the dead_letter table"),
    ("batches", "runledger_ingest_batches_total", "Batches inserted"),
    ("commit_failures", "runledger_ingest_commit_failures_total",
     "Offset commits that failed (the records are re-read; writes are idempotent)"),
    ("insert_retries", "runledger_ingest_insert_retries_total", "Inserts retried because ClickHouse was unreachable"),
    ("rebalances", "runledger_ingest_rebalances_total", "Partition assignments received"),
)


def render_prometheus(snap: StatsSnapshot) -> str:
    """The Prometheus text exposition (format 0.0.4) of one worker's snapshot."""
    labels = f'topic="{_esc(snap.topic)}",group="{_esc(snap.group)}"'
    out: list[str] = []
    for attr, name, help_text in _COUNTERS:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name}{{{labels}}} {getattr(snap, attr)}"]
    gauges = (
        ("runledger_ingest_events_per_second", "Events written per second (last 10 s)", snap.events_per_s),
        ("runledger_ingest_points_per_second", "Metric points written per second (last 10 s)", snap.points_per_s),
        ("runledger_ingest_insert_seconds_total", "Seconds spent in ClickHouse inserts", snap.insert_seconds_sum),
        ("runledger_ingest_assigned_partitions", "Partitions assigned to this worker", len(snap.assigned)),
        ("runledger_ingest_up", "1 while the consumer loop runs", 1 if snap.state == "running" else 0),
    )
    for name, help_text, value in gauges:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name}{{{labels}}} {value:g}"]
    out += ["# HELP runledger_ingest_lag_records Records in the partition not yet committed by this worker",
            "# TYPE runledger_ingest_lag_records gauge"]
    out += [f'runledger_ingest_lag_records{{{labels},partition="{p}"}} {n}' for p, n in snap.lag().items()]
    out += ["# HELP runledger_ingest_committed_offset Next offset committed, per partition",
            "# TYPE runledger_ingest_committed_offset gauge"]
    out += [f'runledger_ingest_committed_offset{{{labels},partition="{p}"}} {n}'
            for p, n in sorted(snap.committed.items())]
    return "\n".join(out) + "\n"


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsServer:
    """``GET /metrics`` (Prometheus text) and ``GET /health`` (JSON) for a standalone worker, in a daemon thread."""

    def __init__(self, host: str, port: int, snapshots: Callable[[], list[StatsSnapshot]]) -> None:
        handler = _handler(snapshots)
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="runledger-metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(snapshots: Callable[[], list[StatsSnapshot]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body = "".join(render_prometheus(s) for s in snapshots()).encode()
                self._answer(200, "text/plain; version=0.0.4; charset=utf-8", body)
            elif path == "/health":
                snaps = snapshots()
                ok = all(s.state in ("starting", "running") for s in snaps)
                self._answer(200 if ok else 503, "application/json",
                             orjson.dumps({"status": "ok" if ok else "stopping",
                                           "workers": [s.as_dict() for s in snaps]},
                                          option=orjson.OPT_NON_STR_KEYS))
            else:
                self._answer(404, "application/json",
                             orjson.dumps({"error": {"code": "NOT_FOUND", "message": f"no route {path}; "
                                                     "try /metrics or /health"}}))

        def do_POST(self) -> None:
            self._answer(405, "application/json",
                         orjson.dumps({"error": {"code": "METHOD_NOT_ALLOWED", "message": "GET /metrics or /health"}}))

        def _answer(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler
