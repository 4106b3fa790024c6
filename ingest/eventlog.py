"""Reading the ``events`` table back into Events (through the codec, so upcasters apply)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from producer.codec import event_from_wire
from producer.events import Event

__all__ = ["EVENT_COLUMNS", "row_to_event"]

#: SELECT list whose rows ``row_to_event`` understands.
EVENT_COLUMNS = ("event_id, schema_version, type, entity, source_host, source_pid, source_rank, seq, "
                 "toUnixTimestamp64Milli(ts), actor, body")


def row_to_event(r: Sequence[Any]) -> Event:
    eid, version, etype, entity, host, pid, rank, seq, ts, actor, body = r
    return event_from_wire({"v": version, "id": eid, "type": etype, "entity": entity,
                            "src": {"host": host, "pid": pid, "rank": rank}, "seq": seq, "ts": ts,
                            "actor": actor, "body": orjson.loads(body)})
