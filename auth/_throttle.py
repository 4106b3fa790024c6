"""Failed-login backoff: how long to hold the answer to a request from a key that keeps failing (pure).

Keys are ``user:<name>`` and ``ip:<address>``; the delay of a request is the
largest over its keys. The first ``free_failures`` failures cost nothing;
then each doubles the delay, from ``base_delay_s`` up to ``max_delay_s``. A
key forgets its failures ``window_s`` after the last one, or at a success.
The caller sleeps (``await asyncio.sleep``: the event loop keeps serving
everyone else) — nobody is locked out, guessing just gets slow.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["LoginThrottle"]


@dataclass(slots=True)
class LoginThrottle:
    free_failures: int = 3
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    window_s: float = 900.0
    max_keys: int = 100_000
    """Bound on the memory a flood of distinct keys can take (oldest forgotten first)."""
    _failures: OrderedDict[str, tuple[int, float]] = field(default_factory=OrderedDict)

    def delay_s(self, keys: Iterable[str], now_s: float) -> float:
        """How long to wait before answering a request from ``keys`` (0 when none of them has failed much)."""
        worst = 0.0
        for key in keys:
            count, last = self._failures.get(key, (0, 0.0))
            if count <= self.free_failures or now_s - last > self.window_s:
                continue
            worst = max(worst, min(self.max_delay_s, self.base_delay_s * 2 ** (count - self.free_failures - 1)))
        return worst

    def failed(self, keys: Iterable[str], now_s: float) -> None:
        for key in keys:
            count, last = self._failures.pop(key, (0, 0.0))
            if now_s - last > self.window_s:
                count = 0
            self._failures[key] = (count + 1, now_s)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)
