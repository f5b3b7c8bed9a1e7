"""`make demo` end to end, on the fake and on real rkt (fly and host), as a person runs it.

`python -m controller.demo` is what the Makefile runs: on the fake by default, and with
`--rkt` (`RKT=`) / `--stage1` (`STAGE1=`) on a real rkt, with the busybox image it
builds itself. Each run must converge every example task, replace the edited one, stop
the daemon with exit 0 and leave nothing behind: no temp directory, no pod process, no
mount. TMPDIR points the demo's temp directory into the test's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.demo import mounts_below
from tests.backends import Backend

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _demo_argv(backend: Backend) -> list[str]:
    argv = [sys.executable, "-m", "controller.demo"]
    if not backend.is_fake:
        argv += ["--rkt", backend.rkt]
    if backend.stage1 is not None:
        argv += ["--stage1", backend.stage1]
    return argv


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{proc.name}: {cmdline}")
    return found


def test_the_demo_converges_replaces_and_leaves_nothing_behind(
    backend: Backend, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")}
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        _demo_argv(backend),
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "converged in" in out
    assert "replaced by" in out
    assert "daemon exited with 0" in out
    if backend.is_fake:
        assert "copied 4 example manifests" in out
    else:
        assert "built the demo image" in out
        assert "0 pod(s) left" in out
    # Nothing is left: the temp dir is gone, and so is every pod process and mount in it.
    assert list(tmp_path.glob("rktctl-demo-*")) == []
    assert _processes_mentioning(str(tmp_path)) == []
    assert mounts_below(tmp_path) == []


def test_an_unknown_rkt_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controller.demo", "--rkt", str(tmp_path / "no-rkt")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "not found: install rkt 1.30" in result.stderr
    assert "make demo RKT=/path/to/rkt" in result.stderr
    assert list(tmp_path.iterdir()) == []
