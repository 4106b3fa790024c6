"""SQL from Python: ``query_df(sql)`` returns a pandas DataFrame (Arrow on the wire).

    import producer
    df = producer.query_df("SELECT run_id, value FROM latest_metrics WHERE key = 'eval/loss'")

The server runs one read-only SELECT over its documented views (docs/SQL.md)
and answers an Arrow IPC stream, which becomes the DataFrame without a
per-row Python step. pandas and pyarrow are imported only when ``query_df``
runs, so ``import producer`` stays light (install them with the ``sql``
extra).

Errors: the server refused or could not run the SQL (a 4xx, the message
says why) -> :class:`ContractError`; the server is unreachable, timed out or
failed (5xx) -> :class:`TransientError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import orjson

from .credentials import auth_headers
from .errors import ContractError, TransientError

if TYPE_CHECKING:
    import pandas

__all__ = ["query_df", "run_sql"]


def run_sql(sql: str, fmt: str = "arrow", *, tracking_uri: str | None = None, timeout_s: float = 300.0) -> bytes:
    """The server's encoded answer to ``sql`` in ``fmt`` (json, csv, arrow or parquet)."""
    from .run import default_tracking_uri

    url = (tracking_uri or default_tracking_uri()).rstrip("/") + "/api/v1/sql"
    try:
        resp = httpx.post(url, content=orjson.dumps({"sql": sql, "format": fmt}),
                          headers={"content-type": "application/json", **auth_headers()}, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise TransientError(f"{url} unreachable: {exc!r}") from exc
    if resp.status_code == 200:
        return resp.content
    message = _error_message(resp)
    if resp.status_code >= 500 or resp.status_code in (408, 429):
        raise TransientError(f"{url} answered {resp.status_code}: {message}")
    raise ContractError(message)


def _error_message(resp: httpx.Response) -> str:
    try:
        err = orjson.loads(resp.content)["error"]
        return f"{err['code']}: {err['message']}"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"HTTP {resp.status_code}: {resp.text[:500]}"


def query_df(sql: str, tracking_uri: str | None = None, *, timeout_s: float = 300.0) -> pandas.DataFrame:
    """Run ``sql`` (one SELECT over the documented views) on the server; the result as a DataFrame.

    ``tracking_uri`` defaults to ``RUNLEDGER_TRACKING_URI`` (else
    http://127.0.0.1:5000). Column types follow Arrow's mapping of the
    ClickHouse types (``DateTime64(3, 'UTC')`` -> ``datetime64[ms, UTC]``,
    ``Nullable(String)`` -> object with None ...).
    """
    import pyarrow as pa

    payload = run_sql(sql, "arrow", tracking_uri=tracking_uri, timeout_s=timeout_s)
    with pa.ipc.open_stream(payload) as reader:
        return reader.read_all().to_pandas()
