"""rktctl removes only its own pods, by UUID; a host-wide `rkt gc` runs only on request.

Issue 10: the daemon's periodic `rkt gc` collected exited pods rktctl does not own
(`RKTCTL_GC_INTERVAL_S=3 RKTCTL_GC_GRACE_PERIOD_S=0 rktctl run`: a hand-made exited pod
was gone within 8 s). Each scenario runs on the fake and on real rkt (fly and host).
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import Harness, pod_task, wait_for

pytestmark = pytest.mark.e2e

CRASH = "  restart: {policy: always, initial_delay: 200ms, max_delay: 1s}\n"


def _exited_foreign_pod(h: Harness) -> str:
    """A pod made by hand (no rktctl stamp) that ran `/bin/true` and exited."""
    uuid = h.backend.prepare(h.rkt_dir, "--exec=/bin/true")
    h.backend.run_detached(h.rkt_dir, uuid, h.root / "foreign.log").wait(timeout=120)
    wait_for(
        lambda: any(p["name"] == uuid and p["state"] == "exited" for p in h.list_pods()),
        what="the foreign pod exited",
    )
    return uuid


def _started(h: Harness, task: str) -> list[str]:
    """UUIDs of the pods the daemon started for `task`, oldest first."""
    return [e["pod_uuid"] for e in h.events("pod_started") if e.get("task") == task]


def test_foreign_exited_pod_survives_and_owned_pods_are_removed_by_uuid(h: Harness) -> None:
    foreign = _exited_foreign_pod(h)
    # The repro knobs: a short gc interval and no grace period. Without the
    # operator's opt-in (host_gc) they must not make rktctl run a host-wide `rkt gc`.
    h.start(gc_interval_s=0.2, gc_grace_period_s=0.0)
    h.write_manifest(
        "crashy.yaml",
        h.manifest("crashy", command="/bin/sh", args=("-c", "exit 3"), extra_spec=CRASH),
    )
    h.write_manifest("web.yaml", h.manifest("web"))
    h.write_manifest("gone.yaml", h.manifest("gone"))
    old_web = wait_for(lambda: _started(h, "web"), what="web started")[0]
    gone = wait_for(lambda: _started(h, "gone"), what="gone started")[0]

    h.write_manifest("web.yaml", h.manifest("web", env={"EDITED": "1"}))  # replace web's pod
    (h.desired / "gone.yaml").unlink()  # delete a task
    # Generous: a host pod takes seconds to start and stop on a loaded 2-CPU machine.
    wait_for(lambda: len(_started(h, "crashy")) >= 3, timeout=120, what="crashy restarted twice")
    listed = wait_for(
        lambda: (
            (pods := h.list_pods())
            and not any(p["name"] in (old_web, gone) for p in pods)
            and h.running("web")
            and pods
        ),
        timeout=60,
        what="the replaced and the deleted task's pods removed",
    )
    assert h.stop() == 0

    # The foreign pod is still there, untouched, long after several gc intervals.
    assert [p["state"] for p in h.list_pods() if p["name"] == foreign] == ["exited"]
    assert h.calls("gc") == []
    removed = [argv[-1] for argv in h.calls("rm")]
    assert foreign not in removed
    # Every removal names one owned pod by its full UUID: the stopped pods of the replaced
    # and the deleted task, and the crashed pods of crashy.
    owned = {uuid for task in ("crashy", "web", "gone") for uuid in _started(h, task)}
    assert set(removed) <= owned
    assert {old_web, gone} <= set(removed)
    assert len([u for u in removed if u in _started(h, "crashy")]) >= 2
    assert all(pod_task(p) in ("crashy", "web", None) for p in listed)


def test_host_gc_is_an_opt_in_that_collects_every_exited_pod(h: Harness) -> None:
    """The documented switch: a host-wide `rkt gc` touches pods rktctl does not own too."""
    foreign = _exited_foreign_pod(h)
    h.start(host_gc=True, gc_interval_s=0.2, gc_grace_period_s=0.0)
    wait_for(
        lambda: all(p["name"] != foreign for p in h.list_pods()),
        timeout=30,
        what="rkt gc collected the foreign exited pod",
    )
    # The call log gets its line when the call ends, just after rkt has deleted the pod.
    wait_for(lambda: h.calls("gc"), what="the rkt gc call in the call log")
    collected = wait_for(lambda: h.events("pods_collected"), what="pods_collected logged")
    assert collected[0]["count"] >= 1
