"""Chaos: `kill -9` of the daemon at random moments while manifests are added, edited and
deleted, then a last daemon converges. Seeded, so a failure can be replayed
(RKTCTL_CHAOS_SEED=<n>); the attack run of issue 11 did 30 kills over two seeds, this is the
CI-sized version.

At the end, whatever the kills interrupted (a pass, a prepare, a run-prepared, a stop):
exactly one running pod of the current spec per desired task (0 lost), no second live pod
of any task (0 duplicates), no live pod of a deleted task, and the foreign pod running and
never touched. The figures are printed (pytest -s shows them). Runs on the fake and on
real rkt with the fly stage1 (~40 s); the host stage1's boots would take minutes.
"""

from __future__ import annotations

import os
import random
import signal
import time
from typing import Any

import pytest

from controller.manifests import parse_manifest
from tests.e2e.harness import Harness, WaitTimeout, pod_task, wait_for

pytestmark = pytest.mark.e2e

SEED = int(os.environ.get("RKTCTL_CHAOS_SEED", "11"))
KILLS = 10
NAMES = tuple(f"c{i}" for i in range(6))
LIVE = ("running", "prepared", "preparing", "embryo")


def _spec_hash(text: str) -> str:
    # No ports or ${...} in these manifests: the stamped hash is the manifest's own.
    return parse_manifest(text.encode(), source="chaos").spec_hash


def _verdict(h: Harness, desired: dict[str, str], foreign: str) -> dict[str, Any]:
    pods = h.list_pods()
    by_task: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        task = pod_task(pod)
        if task is not None and pod["state"] in LIVE:
            by_task.setdefault(task, []).append(pod)
    current = {name: _spec_hash(text) for name, text in desired.items()}

    def is_current(pod: dict[str, Any], name: str) -> bool:
        annotations = pod["apps"][0].get("user_annotations") or {}
        return pod["state"] == "running" and annotations.get("rktctl.io/spec-hash") == current[name]

    lost = [n for n in desired if not any(is_current(p, n) for p in by_task.get(n, []))]
    duplicates = [n for n, live in by_task.items() if len(live) > 1]
    leftovers = [n for n in by_task if n not in desired]
    foreign_running = any(p["name"] == foreign and p["state"] == "running" for p in pods)
    return {
        "lost": lost,
        "duplicates": duplicates,
        "leftovers": leftovers,
        "foreign_running": foreign_running,
    }


def test_kill_9_during_churn_leaves_exactly_one_current_pod_per_task(h: Harness) -> None:
    h.backend.skip_if(h.backend.flavor == "host", "dozens of nspawn boots: minutes on 2 cores")
    rng = random.Random(SEED)
    foreign = h.backend.prepare(h.rkt_dir, "--exec=/bin/sleep", "--", "3600")
    launched = h.backend.run_detached(h.rkt_dir, foreign, h.root / "foreign.log")
    try:
        desired: dict[str, str] = {}
        version = 0

        def write(name: str) -> None:
            nonlocal version
            version += 1
            desired[name] = h.manifest(name, env={"VERSION": str(version)})
            h.write_manifest(f"{name}.yaml", desired[name])

        for name in NAMES[:4]:
            write(name)
        # The deletion guard would rightly hold a burst of deletions: not under test here.
        h.start(max_delete_fraction=1.0)
        kills = 0
        for _ in range(KILLS):
            for _ in range(rng.randint(2, 5)):
                name = rng.choice(NAMES)
                if name in desired and len(desired) > 1 and rng.random() < 0.35:
                    del desired[name]
                    (h.desired / f"{name}.yaml").unlink()
                else:
                    write(name)  # a new task, or an edit (spec change: replace)
                # Chaos timing, not settling: the kill lands mid-pass, mid-start or mid-stop.
                time.sleep(rng.uniform(0.0, 0.4))
            time.sleep(rng.uniform(0.0, 1.0))
            assert h.proc is not None
            os.kill(h.proc.pid, signal.SIGKILL)
            h.proc.wait(timeout=10)
            h.proc = None
            kills += 1
            h.start()

        try:
            verdict = wait_for(
                lambda: (
                    (v := _verdict(h, desired, foreign))
                    and not (v["lost"] or v["duplicates"] or v["leftovers"])
                    and v
                ),
                timeout=90,
                what="convergence after the last kill",
            )
        except WaitTimeout:
            raise AssertionError(
                f"seed {SEED}: not converged: {_verdict(h, desired, foreign)}"
            ) from None
        print(
            f"\nchaos seed {SEED}: {kills} kills, {len(desired)} tasks desired, "
            f"duplicates {len(verdict['duplicates'])}, lost {len(verdict['lost'])}, "
            f"foreign pod running: {verdict['foreign_running']}"
        )
        assert verdict["foreign_running"]
        touched = [
            argv
            for argv in h.calls()
            if foreign in argv and ("stop" in argv or "rm" in argv or "run-prepared" in argv)
        ]
        assert not touched
    finally:
        h.backend.run(h.rkt_dir, "stop", "--force", foreign)
        launched.wait(timeout=30)
