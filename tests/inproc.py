"""Run a scenario in a fresh (spawned) process: chDB admits one data folder per process, and the whole
suite shares one pytest process, so in-process engine tests open their folder in a child."""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["in_child"]


def in_child(fn: Callable[..., Any], *args: Any, timeout_s: float = 240.0) -> Any:
    """Run ``fn(*args)`` in a fresh (spawned) process; its return value, or its traceback as a failure."""
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(send, fn, args), daemon=True)
    proc.start()
    send.close()
    try:
        if not receive.poll(timeout_s):
            raise AssertionError(f"{fn.__name__} did not finish within {timeout_s} s")
        status, value = receive.recv()
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if status == "error":
        raise AssertionError(f"{fn.__name__} failed in the child process:\n{value}")
    return value


def _child_main(send: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        send.send(("ok", fn(*args)))
    except BaseException:
        send.send(("error", traceback.format_exc()))
