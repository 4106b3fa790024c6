"""``runledger ingest``: one Kafka -> ClickHouse ingest worker (a consumer-group member).

Run as many as the topic has partitions; they share them. With a ClickHouse
server (``--clickhouse-dsn http://user:pass@host:8123``) any number of workers
write the same database. With chDB (the default, ``--data-dir``) the folder
admits one process: use one worker, or ``runledger serve --kafka ... --ingest``
to consume inside the query service. SIGTERM / Ctrl-C drain: the batch in
flight is written and committed, then the worker leaves the group (exit 0).
``GET /metrics`` (Prometheus text) and ``GET /health`` (JSON) on
``--metrics-host:--metrics-port``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING

from .cli import add_common, settings_from_args

if TYPE_CHECKING:
    from ingest.consumer import IngestWorker

_DEFAULTS = {"max_batch_points": 50_000, "max_batch_events": 5_000, "max_batch_wait_ms": 250.0,
             "metrics_port": 9108}


def _positive_int(raw: str) -> int:
    try:
        v = int(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {raw!r}") from exc
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {raw!r}")
    return v


def _non_negative_float(raw: str) -> float:
    try:
        v = float(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {raw!r}") from exc
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {raw!r}")
    return v


def _port(raw: str) -> int:
    try:
        v = int(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {raw!r}") from exc
    if not 0 <= v < 65536:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {raw!r}")
    return v


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ingest", help="run a Kafka -> ClickHouse ingest worker (one consumer-group member)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common(p)
    p.add_argument("--kafka", dest="kafka_bootstrap", default=None, metavar="HOST:PORT[,...]",
                   help="Kafka bootstrap servers (env RUNLEDGER_KAFKA_BOOTSTRAP)")
    p.add_argument("--topic", default=None, help="topic (default runledger.events, env RUNLEDGER_KAFKA_TOPIC)")
    p.add_argument("--group", default=None, help="consumer group (default runledger-ingest, env RUNLEDGER_KAFKA_GROUP)")
    p.add_argument("--partitions", type=_positive_int, default=None,
                   help="partitions when creating a missing topic (default 12, env RUNLEDGER_KAFKA_PARTITIONS)")
    p.add_argument("--replication-factor", type=_positive_int, default=1, help="when creating the topic (default 1)")
    p.add_argument("--retention-ms", type=int, default=-1,
                   help="retention when creating the topic (default -1: keep the log)")
    p.add_argument("--max-batch-points", type=_positive_int, default=_DEFAULTS["max_batch_points"],
                   help="insert when this many metric points are pending (default 50000)")
    p.add_argument("--max-batch-events", type=_positive_int, default=_DEFAULTS["max_batch_events"],
                   help="insert when this many events are pending (default 5000)")
    p.add_argument("--max-batch-wait-ms", type=_non_negative_float, default=_DEFAULTS["max_batch_wait_ms"],
                   help="insert at the latest this long after the first pending record (default 250)")
    p.add_argument("--session-timeout-ms", type=_positive_int, default=None,
                   help="how soon the group gives a crashed worker's partitions away (default 10000, "
                        "env RUNLEDGER_KAFKA_SESSION_TIMEOUT_MS)")
    p.add_argument("--startup-timeout-s", type=_non_negative_float, default=60.0,
                   help="keep trying to reach Kafka at start this long, then exit with an error (default 60)")
    p.add_argument("--metrics-host", default="127.0.0.1", help="bind address of /metrics (default 127.0.0.1)")
    p.add_argument("--metrics-port", type=_port, default=_DEFAULTS["metrics_port"],
                   help="port of /metrics and /health (default 9108; 0 picks a free one)")
    p.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_ingest)


def _ingest(args: argparse.Namespace) -> int:
    from ingest.consumer import IngestConfig, IngestWorker
    from ingest.kafka_metrics import MetricsServer
    from ingest.schema import apply_schema
    from ingest.sink import ClickHouseStore
    from ingest.writer import Writer
    from producer.errors import ContractError
    from producer.kafka_transport import KafkaSettings


    settings = settings_from_args(
        args, kafka_bootstrap=args.kafka_bootstrap, kafka_topic=args.topic, kafka_group=args.group,
        kafka_partitions=args.partitions, kafka_session_timeout_ms=args.session_timeout_ms, log_level=args.log_level)
    if not settings.kafka_bootstrap:
        raise ContractError("runledger ingest needs Kafka: --kafka HOST:PORT[,HOST:PORT] or RUNLEDGER_KAFKA_BOOTSTRAP")
    target = KafkaSettings.parse(settings.kafka_bootstrap)
    bootstrap = target.bootstrap
    try:
        config = IngestConfig(bootstrap=bootstrap, security=target.security,
                              topic=settings.kafka_topic, group=settings.kafka_group,
                              partitions=settings.kafka_partitions, replication_factor=args.replication_factor,
                              retention_ms=args.retention_ms, max_batch_points=args.max_batch_points,
                              max_batch_events=args.max_batch_events, max_batch_wait_ms=args.max_batch_wait_ms,
                              session_timeout_ms=settings.kafka_session_timeout_ms,
                              heartbeat_interval_ms=max(100, settings.kafka_session_timeout_ms // 3),
                              startup_timeout_s=args.startup_timeout_s)
    except ValueError as exc:
        raise ContractError(str(exc)) from exc
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = ClickHouseStore(settings.dsn, settings.database)
    apply_schema(store)
    worker = IngestWorker(config, Writer(store), store)
    try:
        metrics = MetricsServer(args.metrics_host, args.metrics_port, lambda: [worker.stats.snapshot()])
    except OSError as exc:
        raise ContractError(f"cannot serve /metrics on {args.metrics_host}:{args.metrics_port}: {exc}") from exc
    print(f"runledger: ingest worker: {config.topic} (group {config.group}) from {bootstrap} into {store.dsn}; "
          f"metrics on http://{args.metrics_host}:{metrics.port}/metrics", file=sys.stderr, flush=True)
    try:
        asyncio.run(_run(worker))
    finally:
        metrics.close()
        store.close()
    snap = worker.stats.snapshot()
    print(f"runledger: ingest worker stopped: {snap.records} records, {snap.events} events, {snap.points} points, "
          f"{snap.dead_letters} dead letters, {snap.commit_failures} failed commits", file=sys.stderr, flush=True)
    return 0


async def _run(worker: IngestWorker) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.run(stop)
