"""Shared pytest setup: structlog reset after every test, and the `backend` fixture.

`rktctl` commands run in-process (`cli.main([...])`) configure structlog; resetting
after each test keeps `structlog.testing.capture_logs()` working in the next one.

A test that takes `backend` runs once per rkt in tests/backends.py (`fake`,
`real-fly`, `real-host`); the real runs are marked `real_rkt`, so
`pytest -m "not real_rkt"` is the fast loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog

from tests.backends import BACKEND_NAMES, Backend, backend_or_skip


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture(params=BACKEND_NAMES)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The rkt this test runs against (skips, with the fix, where it is not installed)."""
    return backend_or_skip(request.param)


def pytest_configure(config: pytest.Config) -> None:
    # rktctl's trust policy refuses group-writable manifests; with a umask of 002 (common
    # for users) every manifest a test writes would be, so tests write as root's 022 does.
    os.umask(0o022)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = str(callspec.params.get("backend", "")) if callspec is not None else ""
        if name.startswith("real-"):
            item.add_marker(pytest.mark.real_rkt)
            # Under `-n N --dist loadgroup` (make test) each real stage1's tests run one
            # at a time on a worker of their own: two real pods of one stage1 booting at
            # once on 2 cores is the load that made the host stage1's races show, while
            # the fake's tests (mostly waiting) share the other workers.
            item.add_marker(pytest.mark.xdist_group(name))
