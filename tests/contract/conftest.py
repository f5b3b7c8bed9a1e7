"""Contract tests: what rktctl relies on, checked against every backend.

Integration tier. Each scenario runs on the fake and on a real rkt 1.30 with the fly
and the host stage1 (tests/backends.py; the real ones need root and skip with the
reason elsewhere), so the fake and real rkt cannot drift apart on these points. Each
test gets a temp `--dir`; pods are created only through rkt itself (`prepare` of a
local ACI), never by touching rkt's directories, and everything is force-stopped,
collected and unmounted afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import Backend
from tests.contract.rktcli import Rkt
from tests.fakes import make_aci


@pytest.fixture(scope="session")
def aci(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny valid ACI (no app binary inside: real rkt can prepare it, not run it)."""
    path = tmp_path_factory.mktemp("contract-aci") / "app.aci"
    return make_aci.build_aci(path, name="example.com/contract-app", version="1.0.0")


@pytest.fixture
def rkt(backend: Backend, tmp_path: Path) -> Iterator[Rkt]:
    runner = Rkt(backend, tmp_path / "rkt")
    runner.dir.mkdir()
    try:
        yield runner
    finally:
        backend.cleanup(runner.dir)
