"""``runledger registry history NAME`` and ``runledger registry show NAME --as-of TIME``.

Both ask a running server (``--url``, default http://127.0.0.1:5000: the
embedded store admits one process, the server's) and print readable
tables. Errors print one line and exit 2: unknown model, bad ``--as-of``,
server unreachable.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from producer.credentials import auth_headers
from producer.errors import ContractError, NotFoundError, RunledgerError, TransientError

__all__ = ["register", "DEFAULT_URL", "table"]

DEFAULT_URL = "http://127.0.0.1:5000"
MAX_CELL = 60


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("registry", help="the model registry: audit trail, state as of a time (asks a server)")
    rs = p.add_subparsers(dest="registry_command", required=True, metavar="COMMAND")

    h = rs.add_parser("history", help="print the audit trail of a model (who, when, what, before -> after)")
    h.add_argument("name", help="registered model name (current, or a name it had before)")
    h.add_argument("--version", type=int, default=None, help="only the events about this version")
    h.add_argument("--as-of", default=None, metavar="TIME", help="only events up to TIME (ISO 8601 or epoch ms)")
    h.add_argument("--url", default=DEFAULT_URL, help=f"runledger server (default {DEFAULT_URL})")
    h.set_defaults(func=_history)

    s = rs.add_parser("show", help="print a model: versions, stages, aliases, tags (now or as of a time)")
    s.add_argument("name", help="registered model name")
    s.add_argument("--as-of", default=None, metavar="TIME", help="the model as it was then (ISO 8601 or epoch ms)")
    s.add_argument("--url", default=DEFAULT_URL, help=f"runledger server (default {DEFAULT_URL})")
    s.set_defaults(func=_show)


def _get(url: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """GET a registry read; server errors become runledger errors (exit 2) with the server's message."""
    query = {k: v for k, v in params.items() if v is not None}
    try:
        resp = httpx.get(url.rstrip("/") + path, params=query, headers=auth_headers(), timeout=60)
    except httpx.HTTPError as exc:
        raise TransientError(f"cannot reach the runledger server at {url}: {exc}") from exc
    if resp.status_code == 200:
        return resp.json()  # type: ignore[no-any-return]
    try:
        message = resp.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = resp.text[:500]
    if resp.status_code == 404:
        raise NotFoundError(message)
    if resp.status_code in (400, 422):
        raise ContractError(message)
    raise RunledgerError(f"server answered {resp.status_code}: {message}")


def _history(args: argparse.Namespace) -> int:
    out = _get(args.url, f"/api/v1/registry/models/{quote(args.name, safe='')}/history",
               {"version": args.version, "as_of": args.as_of})
    title = f"audit trail of {args.name!r}" + (f" version {args.version}" if args.version else "")
    print(title + (f" as of {args.as_of}" if args.as_of else "") + f": {len(out['entries'])} event(s)")
    rows = [[_time(e["ts_ms"]), e["actor"], e["type"], "" if e["version"] is None else str(e["version"]), e["summary"]]
            for e in out["entries"]]
    print(table(["TIME (UTC)", "ACTOR", "EVENT", "VERSION", "BEFORE -> AFTER"], rows))
    return 0


def _show(args: argparse.Namespace) -> int:
    m = _get(args.url, f"/api/v1/registry/models/{quote(args.name, safe='')}", {"as_of": args.as_of})
    print(f"model {m['name']!r} (id {m['id']})" + (f" as of {args.as_of}" if args.as_of else ""))
    print(f"  created {_time(m['created_ms'])} by {m['created_by'] or '-'}, last change {_time(m['updated_ms'])}")
    print(f"  description: {m['description'] or '-'}")
    print(f"  tags: {_pairs(m['tags'])}")
    print(f"  aliases: {_pairs({a: f'v{n}' for a, n in m['aliases'].items()})}")
    print(f"  latest: {_pairs({s: f'v{n}' for s, n in m['latest_versions'].items()})}")
    rows = [[str(v["version"]), v["stage"], ",".join(v["aliases"]), v["source"], v["run_id"] or "",
             _time(v["created_ms"]), v["created_by"], v["description"], _pairs(v["tags"], empty="")]
            for v in m["versions"]]
    print()
    print(table(["VERSION", "STAGE", "ALIASES", "SOURCE", "RUN", "CREATED (UTC)", "BY", "DESCRIPTION", "TAGS"], rows)
          if rows else "  (no versions)")
    return 0


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart; long cells cut with an ellipsis; newlines shown as spaces."""
    cells = [[_cell(c) for c in row] for row in [list(header), *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def _cell(value: str) -> str:
    value = value.replace("\n", " ")
    return value if len(value) <= MAX_CELL else value[: MAX_CELL - 1] + "…"


def _pairs(d: dict[str, Any], empty: str = "-") -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) or empty


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
