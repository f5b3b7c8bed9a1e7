"""Issue 15 item 2 end to end: a crash-looping task keeps its last exited pods.

With `exited_pods_keep = 2` the newest two exited pods stay (with their logs) for a
post-mortem, older ones are removed by UUID, and the task's status document lists
the kept ones with how to read them.
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import Harness, wait_for

pytestmark = pytest.mark.e2e

CRASH = "  restart: {policy: always, initial_delay: 1s, max_delay: 1s}\n"


def test_a_crash_loop_keeps_its_last_two_exited_pods_with_their_logs(h: Harness) -> None:
    h.start(exited_pods_keep=2)
    h.write_manifest(
        "crashy.yaml",
        h.manifest("crashy", command="/bin/sh", args=("-c", "echo boom; exit 3"), extra_spec=CRASH),
    )

    def settled() -> list[str] | None:
        kept = sorted(p["name"] for p in h.pods_of("crashy", "exited"))
        doc = h.task_status("crashy") or {}
        listed = sorted(p["uuid"] for p in doc.get("retained_pods", []))
        # at least four starts: two pods kept, at least one pruned
        if len(h.prepare_times("crashy")) >= 4 and len(kept) == 2 and listed == kept:
            return kept
        return None

    kept = wait_for(settled, timeout=120, what="two kept exited pods, listed in status")
    pruned = [a for a in h.calls("rm") if not any(u in a for u in kept)]
    assert pruned, "an older exited pod was removed by uuid"
    doc = h.task_status("crashy")
    assert doc is not None
    for entry in doc["retained_pods"]:
        assert entry["inspect"].startswith(f"rkt status {entry['uuid']}; tail -n 50 ")
        log = entry["log"]
        assert log.endswith(f"crashy-{entry['uuid'][:8]}.log")
        with open(log, encoding="utf-8", errors="replace") as f:
            assert any(line.endswith("boom") for line in f.read().splitlines())
