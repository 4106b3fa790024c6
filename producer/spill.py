"""Local spill files: where batches wait while the backend is unreachable.

One file per batch (the encoded wire batch), named so that lexical order is
write order. A sender claims a file by renaming it before resending, so two
processes sharing a spill folder never send the same file at once; a crash
mid-send leaves a claimed file that the next start reclaims (resending is
harmless: every sink is idempotent).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .codec import decode_batch, encode_batch
from .events import Event

__all__ = ["Spill", "default_spill_dir"]


def default_spill_dir() -> Path:
    env = os.environ.get("RUNLEDGER_SPILL_DIR")
    return Path(env) if env else Path.home() / ".runledger" / "spill"


class Spill:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._n = 0

    def write(self, events: Sequence[Event]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._n += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._n:06d}"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(encode_batch(events))
        final = self.folder / f"{name}.batch"
        os.replace(tmp, final)  # atomic: a reader never sees half a batch
        return final

    def pending(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.batch"))

    def claim(self) -> Iterator[tuple[Path, list[Event]]]:
        """Yield (claimed path, events) oldest first; call ``done(path)`` after a successful send."""
        for path in self.pending():
            claimed = path.with_suffix(f".sending-{os.getpid()}")
            try:
                os.replace(path, claimed)
            except FileNotFoundError:
                continue  # another process took it
            events, _ = decode_batch(claimed.read_bytes())
            yield claimed, events

    def release(self, claimed: Path) -> None:
        """Give a claimed file back (send failed): it keeps its place in the order."""
        os.replace(claimed, claimed.with_suffix(".batch"))

    @staticmethod
    def done(claimed: Path) -> None:
        claimed.unlink(missing_ok=True)

    def reclaim_stale(self) -> None:
        """Files claimed by a process that no longer exists go back to pending."""
        if not self.folder.is_dir():
            return
        for path in self.folder.glob("*.sending-*"):
            pid = int(path.suffix.rsplit("-", 1)[1])
            if pid != os.getpid() and not _alive(pid):
                os.replace(path, path.with_suffix(".batch"))

    def count(self) -> int:
        return len(self.pending())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
