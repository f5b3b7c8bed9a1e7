"""Stopping pods: whose kill_timeout applies, and how failed stops and removes are retried.

A pod that ignores the graceful stop is simulated with a fault rule that makes `rkt stop
<uuid>` (not `--force`) print the uuid and exit 0 without signalling anything: "an `rkt stop`
that lies". The fault works on every backend (real rkt is reached through the proxy).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.e2e.harness import Harness, wait_for

pytestmark = pytest.mark.e2e


def _one_running(h: Harness, task: str) -> dict[str, Any]:
    """The task's one running pod, once booted: a real host pod reads `running` about a
    second before its pid file (`started_at`), and a host pod that fails to boot on a
    loaded machine ends by itself, which would pass for what the test asserts."""
    pods = wait_for(
        lambda: [p for p in h.running(task) if p.get("started_at")],
        timeout=30,
        what=f"a booted running pod of {task}",
    )
    assert len(pods) == 1, pods
    return pods[0]


def _lie_on_graceful_stop(h: Harness, uuid: str) -> None:
    h.add_fault(cmd="stop", match=f"stop {uuid}", stdout=uuid, exit=0)


def _gone(h: Harness, uuid: str) -> bool:
    return all(p["name"] != uuid for p in h.list_pods())


def test_a_deleted_manifest_is_stopped_with_its_own_kill_timeout(h: Harness) -> None:
    """Item 7: deletion forced the pod after a hard-coded 30 s, not the task's value."""
    h.start()
    h.write_manifest("keep.yaml", h.manifest("keep"))
    h.write_manifest(
        "slow.yaml", h.manifest("slow").replace("kill_timeout: 5s", "kill_timeout: 2s")
    )
    keep = _one_running(h, "keep")["name"]
    uuid = _one_running(h, "slow")["name"]
    _lie_on_graceful_stop(h, uuid)
    (h.desired / "slow.yaml").unlink()
    # Forced at 2 s: well inside this wait. With the old 30 s it times out.
    wait_for(lambda: _gone(h, uuid), timeout=25, what="the slow pod forced, then removed")
    forced = [e for e in h.events("pod_stop_forced") if e.get("pod_uuid") == uuid]
    assert [e["kill_timeout_s"] for e in forced] == [2.0]
    assert not [a for a in h.calls() if keep in a and ("stop" in a or "rm" in a)]


def test_the_last_known_kill_timeout_survives_a_daemon_restart(h: Harness) -> None:
    """The manifest is deleted while the daemon is down: the kill_timeout it last saw applies."""
    h.backend.skip_unless_fake("bookkeeping in the state dir; rkt plays no part")
    h.start()
    h.write_manifest("keep.yaml", h.manifest("keep"))
    h.write_manifest(
        "slow.yaml", h.manifest("slow").replace("kill_timeout: 5s", "kill_timeout: 2s")
    )
    _one_running(h, "keep")
    uuid = _one_running(h, "slow")["name"]
    assert h.stop() == 0
    _lie_on_graceful_stop(h, uuid)
    (h.desired / "slow.yaml").unlink()
    h.start()
    wait_for(lambda: _gone(h, uuid), timeout=25, what="the slow pod forced, then removed")
    forced = [e for e in h.events("pod_stop_forced") if e.get("pod_uuid") == uuid]
    assert [e["kill_timeout_s"] for e in forced] == [2.0]


def _stop_calls(h: Harness, uuid: str) -> list[float]:
    from tests.fakes import fakerkt

    return [float(c["t"]) for c in fakerkt.calls(h.rkt_dir, "stop") if uuid in c["argv"]]


def test_a_failing_stop_is_retried_with_backoff_and_status_says_when(h: Harness) -> None:
    """Item 9: a failing `rkt stop` was retried on every pass (103 a minute), forever."""
    h.start(backoff_base_s=0.5, backoff_cap_s=60.0)
    h.write_manifest("keep.yaml", h.manifest("keep"))
    h.write_manifest("web.yaml", h.manifest("web"))
    _one_running(h, "keep")
    uuid = _one_running(h, "web")["name"]
    h.add_fault(cmd="stop", match=uuid, exit=254, stderr="stop: injected failure")
    (h.desired / "web.yaml").unlink()
    wait_for(lambda: len(_stop_calls(h, uuid)) >= 4, timeout=30, what="four stop attempts")
    status = wait_for(
        lambda: (s := h.task_status("web")) and s.get("next_retry_at") and s,
        what="next_retry_at in web's status",
    )
    assert status["last_error"]["code"] == "rkt_command_failed"
    scheduled = [
        e
        for e in h.events("reconcile_retry_scheduled")
        if e.get("task") == "web" and e.get("action") == "stop"
    ]
    assert [e["attempt"] for e in scheduled[:3]] == [1, 2, 3]
    assert [e["retry_in_s"] for e in scheduled[:3]] == [0.5, 1.0, 2.0]
    times = _stop_calls(h, uuid)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Each retry waits at least the delay the daemon announced (a lower bound, not a timing).
    assert all(gap >= delay for gap, delay in zip(gaps, (0.5, 1.0, 2.0), strict=False)), gaps
    assert len(h.running("web")) == 1  # still running: nothing else stopped it


def test_a_failing_rm_is_retried_with_backoff(h: Harness) -> None:
    h.start(backoff_base_s=0.5, backoff_cap_s=60.0)
    h.write_manifest("keep.yaml", h.manifest("keep"))
    h.write_manifest("web.yaml", h.manifest("web"))
    _one_running(h, "keep")
    uuid = _one_running(h, "web")["name"]
    h.add_fault(cmd="rm", match=uuid, exit=254, stderr="rm: injected failure")
    (h.desired / "web.yaml").unlink()

    def rm_calls() -> list[float]:
        from tests.fakes import fakerkt

        return [float(c["t"]) for c in fakerkt.calls(h.rkt_dir, "rm") if uuid in c["argv"]]

    wait_for(lambda: len(rm_calls()) >= 6, timeout=30, what="three rm attempts (two calls each)")
    status = wait_for(
        lambda: (s := h.task_status("web")) and s.get("next_retry_at") and s,
        what="next_retry_at in web's status",
    )
    assert status["last_error"]["code"] == "rkt_command_failed"
    # Only the rm failures: a real host stage1's first `rkt stop` right after the pod
    # started may fail too (it has not booted yet); that retry succeeds and starts over.
    scheduled = [
        e
        for e in h.events("reconcile_retry_scheduled")
        if e.get("task") == "web" and e.get("action") == "remove"
    ]
    assert [e["retry_in_s"] for e in scheduled[:2]] == [0.5, 1.0]
    # RktCli.remove retries once at once: attempts are pairs; between pairs the backoff.
    starts = rm_calls()[::2]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= delay for gap, delay in zip(gaps, (0.5, 1.0), strict=False)), gaps
