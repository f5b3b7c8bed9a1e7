"""The rkt under contract test: which binary (RKTCTL_TEST_RKT, default the fake) and a runner.

TEST HELPER for tests/contract (imported by its conftest and tests, never by rktctl).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.fakes import fakerkt

FAKE = Path(fakerkt.FAKE_RKT)


def _rkt_binary() -> tuple[str, bool]:
    wanted = os.environ.get("RKTCTL_TEST_RKT", "")
    if not wanted:
        return str(FAKE), True
    found = shutil.which(wanted) or wanted
    return found, Path(found).resolve() == FAKE.resolve()


RKT, IS_FAKE = _rkt_binary()
# The venv's python first on PATH, so the fake's `#!/usr/bin/env python3` skips slow shims.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


class Rkt:
    """One rkt binary bound to one temp `--dir`."""

    def __init__(self, rkt_dir: Path) -> None:
        self.dir = rkt_dir

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RKT, f"--dir={self.dir}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=ENV,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def prepare(self, image: str, *app_flags: str) -> str:
        """`prepare --quiet`; the UUID is the last stdout line shaped like one (rkt's tests)."""
        out = self.ok("--insecure-options=image", "prepare", "--quiet", image, *app_flags)
        lines = [ln for ln in out.splitlines() if fakerkt.is_uuid(ln.strip())]
        assert lines, out
        return lines[-1].strip()

    def pods(self) -> list[dict]:
        return json.loads(self.ok("list", "--format=json")) or []
