"""``runledger sql "SELECT ..."``: ask a running server, print a table (or CSV / JSON).

    runledger sql "SELECT run_id, value FROM latest_metrics WHERE key = 'loss' ORDER BY value LIMIT 5"
    runledger sql --format csv "SELECT * FROM params" > params.csv
    echo "SELECT count() FROM metrics" | runledger sql -

The server is ``--url``, else ``RUNLEDGER_TRACKING_URI``, else
http://127.0.0.1:5000. A refused or failing query prints the server's reason
and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import orjson

__all__ = ["register", "render_table"]

MAX_CELL_CHARS = 60


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sql", help="run one read-only SELECT over the documented views (docs/SQL.md)")
    p.add_argument("sql", help='the query, e.g. "SELECT * FROM runs LIMIT 5"; "-" reads it from stdin')
    p.add_argument("--url", default=None, help="server URL (default $RUNLEDGER_TRACKING_URI or http://127.0.0.1:5000)")
    p.add_argument("--format", dest="output", choices=["table", "csv", "json"], default="table",
                   help="table (default): aligned columns; csv / json: the server's encoding, verbatim")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer (default 300)")
    p.set_defaults(func=_sql)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    text = text.replace("\n", "\\n").replace("\t", "\\t")
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def render_table(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as aligned text columns under a header, with a row count; long cells are cut."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(n.ljust(w) for n, w in zip(names, widths)).rstrip(), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def _sql(args: argparse.Namespace) -> int:
    from producer.errors import ContractError
    from producer.query_client import run_sql

    sql = sys.stdin.read() if args.sql == "-" else args.sql
    if not sql.strip():
        raise ContractError("no SQL given")
    if args.output != "table":
        sys.stdout.buffer.write(run_sql(sql, args.output, tracking_uri=args.url, timeout_s=args.timeout))
        sys.stdout.flush()
        return 0
    answer = orjson.loads(run_sql(sql, "json", tracking_uri=args.url, timeout_s=args.timeout))
    names = [m["name"] for m in answer["meta"]]
    rows = [[row[n] for n in names] for row in answer["data"]]
    print(render_table(names, rows))
    return 0
