"""One daemon per state dir: a second `rktctl run` (or `reconcile --once`) on the same state
refuses to act, exits 78 and names the process that holds the lock.

The attack run started two daemons on the same state: both prepared every new task, and
two pods of one task ran at once. The lock involves no rkt, so these run on the fake only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.e2e.harness import Harness, wait_for

pytestmark = pytest.mark.e2e


def _rktctl(h: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    env = h.backend.env({k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")})
    return subprocess.run(
        [sys.executable, "-m", "controller", *args, "--config", str(h.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=h.root,
    )


def test_a_second_daemon_on_the_same_state_exits_78_naming_the_holder(h: Harness) -> None:
    h.backend.skip_unless_fake("the state-dir lock involves no rkt")
    h.write_manifest("web.yaml", h.manifest("web"))
    h.start()
    wait_for(lambda: h.running("web"), what="web running under the first daemon")
    assert h.proc is not None
    prepares = len(h.calls("prepare"))

    for command in (("run",), ("reconcile", "--once")):
        second = _rktctl(h, *command)
        assert second.returncode == 78, second.stderr
        assert f"pid {h.proc.pid}" in second.stderr
        assert str(h.state_dir) in second.stderr
        assert "Traceback" not in second.stderr

    assert len(h.calls("prepare")) == prepares
    assert len(h.running("web")) == 1


def test_the_lock_dies_with_the_daemon_even_by_kill_9(h: Harness) -> None:
    """The lock is an flock on an fd no pod inherits: a killed daemon's successor starts."""
    h.backend.skip_unless_fake("the state-dir lock involves no rkt")
    h.write_manifest("web.yaml", h.manifest("web"))
    h.start()
    wait_for(lambda: h.running("web"), what="web running")
    assert h.proc is not None
    os.kill(h.proc.pid, signal.SIGKILL)
    h.proc.wait(timeout=10)
    h.proc = None
    h.start()
    assert h.proc is not None
    pid = h.proc.pid
    wait_for(lambda: _controller_pid(h) == pid, what="a status written by the second daemon")
    assert h.proc.poll() is None


def _controller_pid(h: Harness) -> int | None:
    path = h.status_dir / "controller.json"
    return json.loads(path.read_text()).get("pid") if path.exists() else None
