"""One slow task never stalls another task or the heartbeat (item 5 of issue 11).

The attack run saw one graceful stop waiting out a 45 s kill_timeout hold the whole loop: a
crashed pod of another task stayed down 47 s and no heartbeat was written. These scenarios
assert the property only (no timings): while one task's stop is still in progress, another
task's crashed pod is started again and the heartbeat moves. The figure (how long the crashed
pod waits) comes from bench/bench_head_of_line.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

import pytest

from tests.e2e.harness import Harness, rkt_pids, wait_for
from tests.fakes import fakerkt

pytestmark = pytest.mark.e2e

CRASH_LOOP = "  restart: {policy: always, initial_delay: 200ms, max_delay: 1s}\n"


def _one_running(h: Harness, task: str) -> dict[str, Any]:
    """The task's one running pod, once booted: a real host pod reads `running` about a
    second before its pid file (`started_at`), and a host pod that fails to boot on a
    loaded machine ends by itself, which would pass for what the test asserts."""
    pods = wait_for(
        lambda: [p for p in h.running(task) if p.get("started_at")],
        timeout=60,
        what=f"a booted running pod of {task}",
    )
    assert len(pods) == 1, pods
    return pods[0]


def _heartbeat(h: Harness) -> str | None:
    import json

    path = h.status_dir / "controller.json"
    return json.loads(path.read_text()).get("heartbeat_at") if path.exists() else None


@pytest.mark.parametrize("stop_fault", ["lies", "hangs"])
def test_a_crashed_pod_restarts_while_another_task_is_still_stopping(
    h: Harness, stop_fault: str
) -> None:
    if stop_fault == "hangs":
        h.backend.skip_unless_fake("the same loop property as `lies`; one real run is enough")
    h.start(command_timeout_s=60.0)  # the hung `rkt stop` is not cut short at 20 s
    stuck_manifest = h.manifest("stuck").replace("kill_timeout: 5s", "kill_timeout: 45s")
    h.write_manifest("stuck.yaml", stuck_manifest)
    # Crashes every 3 s, on every backend, without help from the test.
    crashy = h.manifest("crashy", command="/bin/sh", args=("-c", "sleep 3; exit 3"))
    h.write_manifest("crashy.yaml", crashy + CRASH_LOOP)
    stuck = _one_running(h, "stuck")["name"]
    _one_running(h, "crashy")
    if stop_fault == "lies":
        # `rkt stop` says it stopped the pod and did nothing: the graceful stop runs its
        # whole 45 s kill_timeout before rktctl forces it.
        h.add_fault(cmd="stop", match=f"stop {stuck}", stdout=stuck, exit=0)
    else:
        # `rkt stop` itself hangs (then stops the pod).
        h.add_fault(cmd="stop", match=f"stop {stuck}", delay_s=40)

    (h.desired / "stuck.yaml").unlink()
    if stop_fault == "lies":
        wait_for(lambda: h.calls("stop"), what="the graceful stop of stuck")
    crashy_prepares = len(h.prepare_times("crashy"))
    beat = _heartbeat(h)

    # Within 30 s, long before the 40/45 s stop ends: crashy crashed and was started again.
    wait_for(
        lambda: len(h.prepare_times("crashy")) > crashy_prepares and h.running("crashy"),
        timeout=30,
        what="a new running pod of crashy",
    )
    wait_for(lambda: _heartbeat(h) != beat, timeout=10, what="a newer heartbeat")
    # ... and stuck's stop is still in progress: its pod runs and nothing forced it yet.
    assert [p["name"] for p in h.running("stuck")] == [stuck]
    assert not [argv for argv in h.calls("stop") if "--force" in argv]
    fakerkt.clear_faults(h.rkt_dir)
    # SIGTERM (teardown) waits for rkt commands in flight: end the hung one.
    _kill(rkt_pids(h.rkt_dir, "stop"))


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_hung_rkt_gc_does_not_hold_the_loop(h: Harness) -> None:
    h.backend.skip_unless_fake("a fault rule stands in for the hang; rkt plays no part")
    h.add_fault(cmd="gc", delay_s=60)
    h.start(host_gc=True, gc_interval_s=0.5)  # rkt gc runs only when opted in
    try:
        wait_for(lambda: rkt_pids(h.rkt_dir, "gc"), what="rkt gc under way")
        h.write_manifest("web.yaml", h.manifest("web"))
        _one_running(h, "web")
        assert rkt_pids(h.rkt_dir, "gc"), "the gc finished: the test proved nothing"
        assert not h.calls("gc")
    finally:
        fakerkt.clear_faults(h.rkt_dir)
        _kill(rkt_pids(h.rkt_dir, "gc"))
