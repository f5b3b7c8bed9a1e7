"""E2E: `spec.health` on every backend (fake, real fly, real host).

The app serves HTTP on its dynamic host port (`net: [host]`, so every stage1 shares
the host's network and the check connects to 127.0.0.1): busybox `httpd` serving
/bin on real rkt, Python's http.server serving a temp dir on the fake (which runs
apps on the host). A path that exists makes the check pass, one that does not (404)
makes it fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.backends import Backend
from tests.e2e.harness import Harness, wait_for

pytestmark = pytest.mark.e2e


def _serve(backend: Backend, tmp: Path) -> tuple[str, tuple[str, ...], str]:
    """Command, args and a path that answers 200."""
    port = "${RKTCTL_PORT_http}"
    if backend.is_fake:
        (tmp / "www").mkdir(exist_ok=True)
        (tmp / "www" / "ok").write_text("ok\n")
        args = ("-m", "http.server", port, "--bind", "127.0.0.1", "--directory", str(tmp / "www"))
        return sys.executable, args, "/ok"
    return "/bin/httpd", ("-f", "-p", port, "-h", "/bin"), "/busybox"


def _task(h: Harness, name: str, tmp: Path, *, healthy: bool) -> str:
    command, args, good = _serve(h.backend, tmp)
    path = good if healthy else "/missing"
    text = h.manifest(name, command=command, args=args)
    text = text.replace("  kill_timeout:", "    net: [host]\n  kill_timeout:")
    return text + (
        "  resources:\n    ports:\n      http: {}\n"
        "  restart: {policy: always, initial_delay: 1s, max_delay: 2s}\n"
        "  health:\n"
        f"    http: {{port: http, path: {path}, expected_status: '200'}}\n"
        # start_period: the host stage1 boots systemd before the app (seconds on a
        # loaded machine); failures then must not count, as they would not in production.
        "    interval: 500ms\n    timeout: 2s\n    start_period: 15s\n    failure_threshold: 2\n"
    )


def _ready(status: dict[str, Any] | None) -> str | None:
    for cond in (status or {}).get("conditions") or ():
        if cond["type"] == "Ready":
            return str(cond["status"])
    return None


def test_a_healthy_task_becomes_ready_once_its_check_passes(h: Harness, tmp_path: Path) -> None:
    h.start()
    h.write_manifest("web.yaml", _task(h, "web", tmp_path, healthy=True))
    waited = subprocess.run(
        [sys.executable, "-m", "controller", "status", "web", "--wait=90",
         "--status-dir", str(h.status_dir)],
        capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    status = wait_for(
        lambda: (s := h.task_status("web")) and _ready(s) == "True" and s,
        what="web Ready",
        timeout=90,
    )
    assert status["phase"] == "Running"
    assert status["health"]["state"] == "Healthy"
    assert status["health"]["last_check"]["ok"] is True
    assert "200" in status["health"]["last_check"]["output"]
    assert status["restarts"] == 0
    prom = (h.status_dir / "rktctl.prom").read_text()
    assert 'rktctl_task_health{state="Healthy",task="web"} 1.0' in prom
    assert 'rktctl_task_health_consecutive_failures{task="web"} 0.0' in prom


def test_an_unhealthy_task_is_never_ready_and_liveness_restarts_it(
    h: Harness, tmp_path: Path
) -> None:
    h.start()
    h.write_manifest("bad.yaml", _task(h, "bad", tmp_path, healthy=False))
    first = wait_for(lambda: h.running("bad"), what="bad running", timeout=90)[0]["name"]
    status = wait_for(
        lambda: (s := h.task_status("bad")) and s["restarts"] >= 1 and s,
        what="a liveness restart",
        timeout=120,
    )
    assert _ready(status) != "True"
    assert status["last_error"]["code"] == "unhealthy", status["last_error"]
    assert re.search(r"pod [0-9a-f]{8} failed its health check", status["last_error"]["message"])
    # The first pod was condemned for the check's own answer. (Status may already name a
    # later pod: on a loaded machine a second one can fail before this looks.)
    condemned = [
        e for e in h.events("health_changed")
        if e.get("pod") == first and e.get("live") is False
    ]  # fmt: skip
    assert condemned, "the first pod was never found unhealthy"
    assert "404" in condemned[0]["reason"], condemned[0]
    later = wait_for(
        lambda: [p for p in h.running("bad") if p["name"] != first],
        what="a new pod after the restart",
        timeout=120,
    )
    assert later
    assert not any(p["name"] == first for p in h.running("bad"))
    stops = [c for c in h.calls("stop") if first in c] if h.backend.is_fake else [first]
    assert stops, "the unhealthy pod was stopped"


def test_reconcile_once_wait_exits_0_when_ready_and_1_naming_the_unready_task(
    h: Harness, tmp_path: Path
) -> None:
    h.write_config()
    h.write_manifest("web.yaml", _task(h, "web", tmp_path, healthy=True))
    env = h.backend.env({k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")})
    argv = [sys.executable, "-m", "controller", "reconcile", "--once", "--config",
            str(h.config_path)]  # fmt: skip
    ok = subprocess.run([*argv, "--wait=90"], env=env, capture_output=True, text=True,
                        timeout=150, check=False, cwd=h.root)  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert _ready(h.task_status("web")) == "True"
    h.write_manifest("bad.yaml", _task(h, "bad", tmp_path, healthy=False))
    bad = subprocess.run([*argv, "--wait=4"], env=env, capture_output=True, text=True,
                         timeout=150, check=False, cwd=h.root)  # fmt: skip
    assert bad.returncode == 1
    assert "not ready: bad (" in bad.stderr
    assert "not ready: web" not in bad.stderr


def test_an_exec_check_runs_inside_the_pod_with_rkt_enter(h: Harness, tmp_path: Path) -> None:
    """`exit 0` passes, so the task gets Ready; the check's output says the exit code."""
    h.start()
    text = h.manifest("ex", command="/bin/sleep", args=("3600",))
    h.write_manifest(
        "ex.yaml",
        text + "  health:\n    exec: {command: [/bin/sh, -c, 'echo fine; exit 0']}\n"
        "    interval: 500ms\n    timeout: 10s\n",
    )
    status = wait_for(
        lambda: (s := h.task_status("ex")) and _ready(s) == "True" and s,
        what="ex Ready",
        timeout=90,
    )
    assert status["health"]["last_check"]["output"].startswith("exit code 0")
    assert "fine" in status["health"]["last_check"]["output"]
    if h.backend.is_fake:
        assert [c for c in h.calls("enter") if c[-3:] == ["/bin/sh", "-c", "echo fine; exit 0"]]
