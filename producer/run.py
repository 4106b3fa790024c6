"""The MLflow-shaped SDK: ``Producer`` (one per tracking URI) and ``Run``.

``Run.log_metrics`` never touches the network: it appends to the producer's
bounded buffer and returns. A background :class:`Sender` delivers batches.
"""

from __future__ import annotations

import atexit
import getpass
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from .accumulator import Accumulator, OnFull
from .credentials import auth_headers
from .errors import ContractError, ParamConflictError
from .events import (
    ExperimentCreated,
    ParamsLogged,
    RunCreated,
    RunEnded,
    Source,
    TagsDeleted,
    TagsSet,
)
from .ids import DEFAULT_EXPERIMENT_NAME, IdFactory, experiment_id_for, new_id
from .sender import Sender
from .spill import Spill, default_spill_dir
from .transport import Refusal, Transport, transport_for

__all__ = ["Producer", "Run", "start_run", "get_producer", "flush", "default_tracking_uri"]

log = logging.getLogger("runledger.producer")


def default_tracking_uri() -> str:
    return os.environ.get("RUNLEDGER_TRACKING_URI") or "http://127.0.0.1:5000"


def _clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _rank_from_env() -> int:
    for name in ("RUNLEDGER_RANK", "RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"):
        v = os.environ.get(name)
        if v and v.lstrip("-").isdigit():
            return int(v)
    return 0


class Producer:
    """Owns the buffer, the sender thread and the transport for one tracking URI.

    Settings (all optional): ``max_buffered_points`` (1,000,000), ``max_batch_points``
    (10,000), ``linger_ms`` (200), ``on_full`` ("block" | "drop"), ``block_timeout_s``
    (60), ``retry_window_s`` (10), ``spill_dir`` (env RUNLEDGER_SPILL_DIR or
    ~/.runledger/spill), ``exit_timeout_s`` (30: how long interpreter exit waits).
    """

    def __init__(self, tracking_uri: str, *, transport: Transport | None = None, rank: int | None = None,
                 max_buffered_points: int = 1_000_000, max_batch_points: int = 10_000, linger_ms: float = 200.0,
                 on_full: OnFull = "block", block_timeout_s: float = 60.0, retry_window_s: float = 10.0,
                 spill_dir: str | Path | None = None, exit_timeout_s: float = 30.0,
                 id_factory: IdFactory = new_id, **transport_settings: Any) -> None:
        self.tracking_uri = tracking_uri
        self.source = Source(host=socket.gethostname(), pid=os.getpid(), rank=_rank_from_env() if rank is None else rank)
        self.new_id = id_factory
        self.acc = Accumulator(source=self.source, new_id=id_factory, clock_ms=_clock_ms,
                               max_buffered_points=max_buffered_points, max_batch_points=max_batch_points,
                               on_full=on_full, block_timeout_s=block_timeout_s)
        self.sender = Sender(self.acc, transport or transport_for(tracking_uri, **transport_settings),
                             Spill(Path(spill_dir) if spill_dir else default_spill_dir()),
                             linger_ms=linger_ms, retry_window_s=retry_window_s)
        self.exit_timeout_s = exit_timeout_s
        self._closed = False

    @property
    def refusals(self) -> list[Refusal]:
        """Events the backend refused so far (e.g. a param conflict with another process)."""
        return self.sender.refusals

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        return self.sender.flush(timeout_s)

    def close(self, timeout_s: float | None = None) -> bool:
        if self._closed:
            return True
        self._closed = True
        return self.sender.close(self.exit_timeout_s if timeout_s is None else timeout_s)


_producers: dict[str, Producer] = {}
_producers_lock = threading.Lock()


def get_producer(tracking_uri: str | None = None, **settings: Any) -> Producer:
    """The process-wide producer for a tracking URI (created on first use with ``settings``)."""
    uri = tracking_uri or default_tracking_uri()
    with _producers_lock:
        p = _producers.get(uri)
        if p is None or p._closed:
            p = _producers[uri] = Producer(uri, **settings)
        return p


def flush(timeout_s: float | None = 30.0) -> bool:
    """Deliver everything every producer of this process buffered. True if all of it arrived."""
    with _producers_lock:
        producers = list(_producers.values())
    return all([p.flush(timeout_s) for p in producers])


@atexit.register
def _close_all() -> None:
    with _producers_lock:
        producers = list(_producers.values())
    for p in producers:
        p.close()


class Run:
    """A run being logged to. Create with :func:`start_run`; use as a context manager."""

    def __init__(self, producer: Producer, run_id: str, experiment_id: str, *, owner: bool) -> None:
        self.producer = producer
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.owner = owner
        """True in the process that created the run: only it ends the run."""
        self._next_step: dict[str, int] = {}
        self._params: dict[str, str] = {}
        self._finished = False

    @property
    def rank(self) -> int:
        return self.producer.source.rank

    # --------------------------------------------------------------- metrics

    def log_metric(self, key: str, value: float, step: int | None = None, timestamp_ms: int | None = None) -> None:
        self.log_metrics({key: value}, step=step, timestamp_ms=timestamp_ms)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None,
                    timestamp_ms: int | None = None) -> None:
        """Buffer one point per key. Without ``step``, each key gets its next step (0, 1, 2 ...)."""
        keys = list(metrics)
        n = len(keys)
        if not n:
            return
        ts = time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
        nxt = self._next_step
        if step is None:
            steps = [nxt.get(k, 0) for k in keys]
            for k, s in zip(keys, steps):
                nxt[k] = s + 1
        else:
            steps = [step] * n
            for k in keys:
                if nxt.get(k, 0) <= step:
                    nxt[k] = step + 1
        self.producer.acc.add_points(self.run_id, keys, steps, [ts] * n, list(metrics.values()))

    # ---------------------------------------------------------- params, tags

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params are immutable: a different value for a key already logged by this process raises
        :class:`ParamConflictError` here; one logged by another process is refused by the server
        and reported in ``producer.refusals`` (and the log)."""
        values = {str(k): str(v) for k, v in params.items()}
        for k, v in values.items():
            old = self._params.get(k)
            if old is not None and old != v:
                raise ParamConflictError(f"param {k!r} of run {self.run_id} was already logged as {old!r}; "
                                         f"params are immutable, got {v!r}")
        new = {k: v for k, v in values.items() if k not in self._params}
        if new:
            self.producer.acc.add_event(self.run_id, ParamsLogged.from_wire({"params": new}))
            self._params.update(new)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if tags:
            self.producer.acc.add_event(self.run_id, TagsSet.from_wire({"tags": {str(k): str(v) for k, v in tags.items()}}))

    def delete_tag(self, key: str) -> None:
        self.producer.acc.add_event(self.run_id, TagsDeleted(keys=(key,)))

    # ------------------------------------------------------------- lifecycle

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        return self.producer.flush(timeout_s)

    def finish(self, status: str = "FINISHED", *, timeout_s: float | None = 30.0) -> bool:
        """End the run (only the creating process does) and deliver everything. True if all arrived."""
        if not self._finished:
            self._finished = True
            if self.owner:
                self.producer.acc.add_event(self.run_id, RunEnded.from_wire({"status": status, "end_time_ms": _clock_ms()}))
        return self.producer.flush(timeout_s)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        status = "FINISHED" if exc_type is None else ("KILLED" if exc_type is KeyboardInterrupt else "FAILED")
        self.finish(status)

    def __repr__(self) -> str:
        return f"Run(run_id={self.run_id!r}, experiment_id={self.experiment_id!r}, rank={self.rank})"


def start_run(experiment: str | None = None, *, run_name: str | None = None, tags: Mapping[str, Any] | None = None,
              tracking_uri: str | None = None, run_id: str | None = None, experiment_id: str | None = None,
              parent_run_id: str | None = None, rank: int | None = None, user: str | None = None,
              api_url: str | None = None, **producer_settings: Any) -> Run:
    """Start a run, or attach to one (``run_id=`` or env ``RUNLEDGER_RUN_ID``) from another rank.

    The experiment is resolved by name on the server (one round trip: ``POST /api/v1/experiments``, which
    creates it when missing), so a renamed experiment's old name means a new experiment, as in MLflow. With a
    ``kafka://`` tracking URI the server is ``api_url`` (or env ``RUNLEDGER_API_URL``); without one, or when
    the server cannot be reached, the id is derived from the name and the producer records the creation
    itself (the log writer refuses it if the name is taken). The run id is minted here. Rank 0 creates the
    run and shares ``run.run_id`` (e.g. exports ``RUNLEDGER_RUN_ID``); other ranks attach, and every event
    they send carries their rank.
    """
    producer = get_producer(tracking_uri, **({"rank": rank} if rank is not None else {}), **producer_settings)
    attach_to = run_id or os.environ.get("RUNLEDGER_RUN_ID")
    exp_name = experiment or os.environ.get("RUNLEDGER_EXPERIMENT") or DEFAULT_EXPERIMENT_NAME
    if attach_to:
        return Run(producer, attach_to, experiment_id or experiment_id_for(exp_name), owner=False)
    exp_id, create_here = (experiment_id, False) if experiment_id else _resolve_experiment(
        exp_name, api_url or os.environ.get("RUNLEDGER_API_URL") or producer.tracking_uri)
    rid = producer.new_id()
    name = run_name or f"run-{rid[-8:]}"
    who = user or os.environ.get("RUNLEDGER_USER") or _user()
    all_tags = {"mlflow.runName": name, "mlflow.user": who, "mlflow.source.name": _source_name(),
                "mlflow.source.type": "LOCAL"}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    all_tags.update({str(k): str(v) for k, v in (tags or {}).items()})
    if create_here:
        producer.acc.add_event(exp_id, ExperimentCreated(name=exp_name))
    created = RunCreated.from_wire({"experiment_id": exp_id, "name": name, "tags": all_tags,
                                    "parent_run_id": parent_run_id, "start_time_ms": _clock_ms(), "user": who})
    producer.acc.add_event(rid, created)
    return Run(producer, rid, exp_id, owner=True)


def _resolve_experiment(name: str, api_url: str) -> tuple[str, bool]:
    """(experiment id, whether the producer must record its creation) for the experiment called ``name``."""
    if not api_url.startswith(("http://", "https://")):
        return experiment_id_for(name), True
    url = api_url.rstrip("/") + "/api/v1/experiments"
    try:
        resp = httpx.post(url, json={"name": name}, headers=auth_headers(), timeout=10.0)
    except httpx.HTTPError as exc:
        log.warning("runledger: %s unreachable (%r): experiment %r gets its derived id", url, exc, name)
        return experiment_id_for(name), True
    if resp.status_code == 200:
        return str(resp.json()["experiment_id"]), False
    if resp.status_code >= 500 or resp.status_code == 404:
        log.warning("runledger: %s answered %d: experiment %r gets its derived id", url, resp.status_code, name)
        return experiment_id_for(name), True
    raise ContractError(f"experiment {name!r}: {url} answered {resp.status_code}: {resp.text[:300]}")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _source_name() -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
