"""The `h` fixture: a Harness on one backend in a temp dir; afterwards every status file must
match the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.reports import TestReport

from tests.backends import Backend
from tests.e2e.harness import Harness, harness
from tests.statuscheck import assert_valid_status_dir


@pytest.fixture
def h(tmp_path: Path, backend: Backend) -> Iterator[Harness]:
    with harness(tmp_path, backend) as instance:
        yield instance
        if instance.proc is not None:
            instance.stop()  # SIGTERM: the pass in flight finishes and publishes its status
        # Whatever the scenario, every status file the daemon wrote matches the schema.
        if instance.status_dir.exists():
            assert_valid_status_dir(instance.status_dir)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed scenario's report ends with what the daemon did, from its log: the
    test's temp dir is gone by the time anyone reads a CI log."""
    outcome = yield
    report: TestReport = outcome.get_result()  # type: ignore[attr-defined]
    instance = getattr(item, "funcargs", {}).get("h")
    if report.when == "call" and report.failed and isinstance(instance, Harness):
        report.sections.append(("daemon log (last events)", instance.log_digest()))
