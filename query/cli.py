"""The ``runledger`` command line.

Each area contributes a module with ``register(subparsers)``; listed in
``AREAS``. A command returns an exit code; errors print one line, never a
traceback (``RunledgerError`` -> exit 2, bad usage -> exit 2 from argparse).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "AREAS", "settings_from_args", "add_common"]

#: Modules that add sub-commands: each has ``register(subparsers) -> None``.
AREAS = ["query.cli_core", "query.cli_ingest", "query.cli_sql", "query.cli_registry", "query.cli_auth"]


def add_common(p: argparse.ArgumentParser) -> None:
    """Flags every command that opens the store understands (env RUNLEDGER_* are the defaults)."""
    p.add_argument("--data-dir", type=Path, default=None, help="data folder (default ./runledger-data)")
    p.add_argument("--clickhouse-dsn", default=None, help="chdb:///path or http://user:pass@host:8123")
    p.add_argument("--database", default=None, help="ClickHouse database (default runledger)")

from .settings import Settings  # noqa: E402 - light: only dataclasses


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:

    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        clickhouse_dsn=getattr(args, "clickhouse_dsn", None),
        database=getattr(args, "database", None),
        **extra,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runledger", description="Event-sourced experiment tracking on ClickHouse")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in AREAS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from producer.errors import RunledgerError

    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.func
    try:
        return run(args)
    except RunledgerError as exc:
        print(f"runledger: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
