from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import ServerProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh embedded ``runledger serve`` on a free port (stopped after the test)."""
    s = ServerProcess(tmp_path / "data").start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One embedded server for a whole test module (tests must not assume an empty store)."""
    s = ServerProcess(tmp_path_factory.mktemp("shared") / "data").start()
    try:
        yield s
    finally:
        s.stop()
