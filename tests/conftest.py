"""Shared pytest setup: every test starts with structlog's defaults.

`rktctl` commands run in-process (`cli.main([...])`) configure structlog; resetting
after each test keeps `structlog.testing.capture_logs()` working in the next one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
