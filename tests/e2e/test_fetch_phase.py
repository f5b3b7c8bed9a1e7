"""The fetch phase (issue 15 item 3): a start runs `rkt fetch` before `prepare
--pull-policy=never`; while a slow pull runs, status says so and other tasks go on.

A fault rule holds the first `rkt fetch` (real rkt behind the recording proxy too): the
property is asserted, not a time.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from typing import Any

import pytest

from tests.e2e.harness import Harness, rkt_pids, wait_for
from tests.fakes import fakerkt

pytestmark = pytest.mark.e2e


def _fetching(h: Harness, task: str) -> dict[str, Any] | None:
    doc = h.task_status(task)
    if not doc or doc.get("phase") != "Starting":
        return None
    reasons = {c.get("reason") for c in doc.get("conditions") or ()}
    return doc if "FetchingImage" in reasons else None


def _metric(h: Harness, name: str) -> float:
    path = h.status_dir / "rktctl.prom"
    text = path.read_text() if path.exists() else ""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_a_slow_pull_shows_fetching_image_and_holds_no_other_task(h: Harness) -> None:
    h.add_fault(cmd="fetch", delay_s=120, times=1)  # the first pull hangs
    h.start()
    try:
        h.write_manifest("slow.yaml", h.manifest("slow"))
        doc = wait_for(lambda: _fetching(h, "slow"), timeout=60, what="slow fetching its image")
        assert doc["message"].startswith("fetching image ")
        h.write_manifest("fast.yaml", h.manifest("fast"))
        wait_for(lambda: h.running("fast"), timeout=90, what="a running pod of fast")
        # fast started while slow's pull still hangs: slow has no pod and still says so.
        assert rkt_pids(h.rkt_dir, "fetch"), "the held fetch ended: the test proved nothing"
        assert not h.pods_of("slow", "prepared", "running")
        assert _fetching(h, "slow")
        # Every prepare reads the store only, by the ID its fetch printed.
        for argv in h.calls("prepare"):
            at = argv.index("--pull-policy=never")
            assert argv[at + 1].startswith("sha512-"), argv
        wait_for(
            lambda: _metric(h, 'rktctl_image_fetches_total{result="fetched"}') >= 1,
            what="the fetch counted in rktctl.prom",
        )
    finally:
        fakerkt.clear_faults(h.rkt_dir)
        for pid in rkt_pids(h.rkt_dir, "fetch"):  # SIGTERM (teardown) waits for it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # The killed pull fails slow's start; its retry fetches again and it runs.
    wait_for(lambda: h.running("slow"), timeout=120, what="a running pod of slow")
