"""A pod that ends is an event: rktctl acts on it at once, not at the next resync.

The daemon runs with a 10-minute resync, so only the pod-exit path (a pidfd on the
pod's rkt process, `controller/podwatch.py`) can make these pass within their waits.
Each scenario runs on the fake and on real rkt (fly, host).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import Harness, wait_for

pytestmark = pytest.mark.e2e

RESYNC_S = 600.0
ALWAYS = "  restart: {policy: always, initial_delay: 200ms, max_delay: 1s}\n"


def _booted(h: Harness, task: str, *, not_uuid: str | None = None) -> dict[str, Any]:
    """The task's running pod once booted (a real host pod has its pid a second later)."""
    pods = wait_for(
        lambda: [p for p in h.running(task) if p.get("started_at") and p["name"] != not_uuid],
        timeout=60,
        what=f"a booted running pod of {task}",
    )
    assert len(pods) == 1, pods
    return pods[0]


def test_pod_that_exits_by_itself_is_restarted_before_any_resync(h: Harness) -> None:
    h.start(resync_interval_s=RESYNC_S)
    h.write_manifest(
        "short.yaml",
        h.manifest("short", command="/bin/sh", args=("-c", "sleep 2; exit 3"), extra_spec=ALWAYS),
    )
    wait_for(lambda: len(h.prepare_times("short")) >= 3, timeout=60, what="three starts")
    assert any(e.get("trigger") == "pod_exit" for e in h.events())


def test_pod_found_running_after_a_restart_is_watched_too(h: Harness) -> None:
    h.start(resync_interval_s=RESYNC_S)
    h.write_manifest("web.yaml", h.manifest("web", extra_spec=ALWAYS))
    first = _booted(h, "web")
    assert h.stop() == 0  # rktctl goes; the pod stays
    passes = len(h.events("reconcile_finished"))
    h.start(resync_interval_s=RESYNC_S)  # the new daemon is not the pod's parent
    wait_for(
        lambda: len(h.events("reconcile_finished")) > passes,
        what="the restarted daemon's first pass",
    )
    starts = len(h.prepare_times("web"))
    # Stopped behind rktctl's back: only its exit event can tell rktctl in time.
    stopped = h.backend.run(h.rkt_dir, "stop", first["name"])
    assert stopped.returncode == 0, stopped.stderr
    _booted(h, "web", not_uuid=first["name"])
    assert len(h.prepare_times("web")) > starts
