"""A runner for one rkt binary bound to one temp `--dir` (the contract tier's `rkt`).

TEST HELPER for tests/contract (imported by its conftest and tests, never by rktctl).
Which rkt it runs is the test's `backend` (tests/backends.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.backends import Backend


class Rkt:
    """One rkt binary bound to one temp `--dir`."""

    def __init__(self, backend: Backend, rkt_dir: Path) -> None:
        self.backend = backend
        self.dir = rkt_dir

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.backend.run(self.dir, *args, timeout=timeout)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def prepare(self, image: str, *app_flags: str) -> str:
        """`prepare --quiet` with the backend's stage1; the UUID is the last UUID line."""
        return self.backend.prepare(self.dir, *app_flags, image=image)

    def pods(self) -> list[dict[str, Any]]:
        return self.backend.pods(self.dir)
