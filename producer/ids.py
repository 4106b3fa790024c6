"""Identifiers: time-ordered UUIDv7 (as 32 lowercase hex chars, MLflow's run-id shape).

``new_id`` is the default id factory; anything that mints ids takes a factory
argument so tests can inject deterministic ones.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

__all__ = ["new_id", "IdFactory", "id_time_ms", "id_version", "experiment_id_for", "DEFAULT_EXPERIMENT_ID",
           "DEFAULT_EXPERIMENT_NAME"]

IdFactory = Callable[[], str]

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    """A UUIDv7: 48-bit ms timestamp, then a 12-bit counter that keeps ids in one ms ordered."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                ms += 1
                _counter = 0
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        _last_ms = ms
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFFFFFFFFFFFFFF
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
    return f"{value:032x}"


def id_time_ms(event_id: str) -> int:
    """The millisecond timestamp embedded in a UUIDv7 id."""
    return int(event_id[:12], 16)


def id_version(event_id: str) -> int:
    """The first 64 bits of a UUIDv7 id: ms timestamp and per-process counter, monotonic per source.

    "The later event wins" everywhere (projections, folds) compares these, so
    it does not depend on the order events arrive in. 0 for an id that is not hex.
    """
    try:
        return int(event_id[:16], 16)
    except ValueError:
        return 0


DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


def experiment_id_for(name: str) -> str:
    """The id of the experiment called ``name``, computed client-side (no round trip).

    A decimal string (MLflow's experiment-id shape), stable for a name, so two
    processes that both "create" an experiment agree on its id. The default
    experiment is "0".
    """
    if name == DEFAULT_EXPERIMENT_NAME:
        return DEFAULT_EXPERIMENT_ID
    import hashlib

    return str(int.from_bytes(hashlib.sha1(name.encode()).digest()[:7], "big") or 1)
