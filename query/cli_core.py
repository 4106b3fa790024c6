"""``runledger serve`` and ``runledger rebuild``."""

from __future__ import annotations

import argparse
import sys

import httpx

from .cli import add_common, settings_from_args


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the tracking server (embedded by default, on 127.0.0.1:5000)")
    add_common(p)
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 5000)")
    p.add_argument("--kafka", dest="kafka_bootstrap", default=None, metavar="HOST:PORT[,...]",
                   help="distributed mode: produce accepted events to this Kafka cluster")
    p.add_argument("--ingest", action="store_true", default=None,
                   help="with --kafka: also run the ingest consumer in this process (required with chDB)")
    p.add_argument("--artifacts-uri", default=None, help="artifact root: a folder or s3://bucket/prefix")
    p.add_argument("--default-artifact-root", default=None, metavar="URI",
                   help="new experiments keep artifacts at URI/<id>, written by clients directly (a folder, file: or "
                        "s3:// URI; default: behind this server's mlflow-artifacts proxy)")
    p.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"])
    p.add_argument("--auth", action="store_true", default=None,
                   help="require a login and enforce permissions (env RUNLEDGER_AUTH; docs/AUTH.md)")
    p.add_argument("--no-access-log", dest="access_log", action="store_false", default=None,
                   help="do not log one line per request (runledger.access)")
    p.set_defaults(func=_serve)

    r = sub.add_parser("rebuild", help="recompute every projection from the event log (into new tables, swapped in at once)")
    add_common(r)
    r.add_argument("--url", default=None,
                   help="ask a running server to rebuild (embedded mode: chDB admits one process per folder)")
    r.set_defaults(func=_rebuild)


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from .app import create_app

    settings = settings_from_args(args, host=args.host, port=args.port, kafka_bootstrap=args.kafka_bootstrap,
                                  ingest_in_process=args.ingest, artifacts_uri=args.artifacts_uri,
                                  default_artifact_root=args.default_artifact_root,
                                  log_level=args.log_level, access_log=args.access_log, auth=args.auth)
    if settings.kafka_bootstrap or settings.ingest_in_process:
        from .kafka_log import preflight

        preflight(settings)  # a bad address or an unreachable broker: one line, not a startup traceback
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not settings.auth and not _is_loopback(settings.host):
        print(f"runledger: WARNING: serving on {settings.host} without --auth: anyone who reaches the port can "
              "read, change and delete everything (docs/AUTH.md)", file=sys.stderr, flush=True)
    print(f"runledger: serving {settings.dsn} on http://{settings.host}:{settings.port}", file=sys.stderr, flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level,
                access_log=False)
    return 0


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or name) only accepts local connections."""
    import ipaddress

    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _rebuild(args: argparse.Namespace) -> int:
    if args.url:
        resp = httpx.post(args.url.rstrip("/") + "/api/v1/admin/rebuild", timeout=None)
        if resp.status_code != 200:
            print(f"runledger: error: rebuild failed: {resp.status_code} {resp.text}", file=sys.stderr)
            return 1
        print(resp.json())
        return 0
    from ingest.rebuild import rebuild
    from ingest.schema import apply_schema
    from ingest.sink import ClickHouseStore


    settings = settings_from_args(args)
    store = ClickHouseStore(settings.dsn, settings.database)
    apply_schema(store)
    report = rebuild(store)
    print(f"rebuilt from {report.events} events ({report.points} points, {report.dead_letters} log rows that no "
          f"longer decode sent to dead_letter) in {report.seconds:.2f} s")
    return 0
