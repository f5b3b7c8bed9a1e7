"""Contract tests: what rktctl relies on, checked against *any* rkt (the fake by default).

Integration tier. `RKTCTL_TEST_RKT=/usr/bin/rkt pytest tests/contract` runs the same
scenarios against a real rkt 1.30 (it needs root for prepare/rm/gc, and a default
stage1 image for prepare); without the variable they run against tests/fakes/rkt, so
the fake and real rkt cannot drift apart on these points. Each test gets a temp
`--dir`; pods are created only through `prepare` of a tiny local ACI (make_aci), never
by touching rkt's directories, and are force-stopped and gc'ed afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.rktcli import IS_FAKE, RKT, Rkt
from tests.fakes import make_aci


@pytest.fixture(scope="session")
def aci(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny valid ACI (no app binary inside: real rkt can prepare it, not run it)."""
    path = tmp_path_factory.mktemp("contract-aci") / "app.aci"
    return make_aci.build_aci(path, name="example.com/contract-app", version="1.0.0")


@pytest.fixture
def rkt(tmp_path: Path) -> Iterator[Rkt]:
    if not Path(RKT).exists():
        pytest.skip(f"RKTCTL_TEST_RKT={RKT} does not exist")
    if not IS_FAKE and os.geteuid() != 0:
        pytest.skip("a real rkt needs root for prepare/rm/gc (`cannot run as unprivileged user`)")
    runner = Rkt(tmp_path / "rkt")
    runner.dir.mkdir()
    try:
        yield runner
    finally:
        for pod in runner.pods():
            if pod["state"] == "running":
                runner("stop", "--force", pod["name"])
        runner("gc", "--grace-period=0s")
