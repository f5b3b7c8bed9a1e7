"""Pod logs (`<state_dir>/logs/<task>-<uuid8>.log`) go with their pods and stay bounded.

Issue 10: the detached launcher wrote one file per pod ever started and never removed
or cut one. A log now goes when rktctl has removed its pod, except the logs of a task's
last few removed pods (`pod_logs_keep`: a crash loop's recent output is the
diagnosis), and a log over `pod_log_max_bytes` is cut to its tail. Each scenario runs
on the fake and on real rkt (fly and host).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.harness import Harness, wait_for

pytestmark = pytest.mark.e2e

CRASH = "  restart: {policy: always, initial_delay: 200ms, max_delay: 1s}\n"


def _started(h: Harness, task: str) -> list[str]:
    """UUIDs of the pods the daemon started for `task`, oldest first."""
    return [e["pod_uuid"] for e in h.events("pod_started") if e.get("task") == task]


def _logs(h: Harness, task: str) -> set[str]:
    """The uuid8 of every log file of `task`."""
    return {p.name.removesuffix(".log")[-8:] for p in (h.state_dir / "logs").glob(f"{task}-*.log")}


def _log(h: Harness, task: str, uuid: str) -> Path:
    return h.state_dir / "logs" / f"{task}-{uuid[:8]}.log"


def _passes(h: Harness) -> int:
    return len(h.events("reconcile_finished"))


def test_a_crash_loop_keeps_the_logs_of_its_last_pods_only(h: Harness) -> None:
    h.start(pod_logs_keep=2)
    h.write_manifest(
        "crashy.yaml",
        h.manifest(
            "crashy", command="/bin/sh", args=("-c", "echo crashing; exit 3"), extra_spec=CRASH
        ),
    )
    # Generous: a host pod takes seconds to start and stop on a loaded 2-CPU machine.
    wait_for(lambda: len(_started(h, "crashy")) >= 6, timeout=180, what="crashy started 6 times")
    h.write_manifest("crashy.yaml", h.manifest("crashy"))  # now it runs: the loop ends

    def kept() -> bool:
        events = [e for e in h.events("pod_started") if e.get("task") == "crashy"]
        crashing = events[0]["spec_hash"]
        crashed = [e["pod_uuid"] for e in events if e["spec_hash"] == crashing]
        runner = [e["pod_uuid"] for e in events if e["spec_hash"] != crashing]
        wanted = {uuid[:8] for uuid in (*crashed[-2:], *runner)}
        running = [p["name"] for p in h.running("crashy")]
        return bool(runner) and running == runner and _logs(h, "crashy") == wanted

    wait_for(
        kept, timeout=60, what="the running pod's log and those of the last 2 crashed pods only"
    )
    crashed = {e["pod_uuid"] for e in h.events("pod_started") if e.get("task") == "crashy"}
    assert len(crashed) >= 7  # 6 crashed pods at least, and the running one


def test_logs_go_with_a_deleted_task_and_stay_for_a_replaced_pod(h: Harness) -> None:
    h.start()
    h.write_manifest("web.yaml", h.manifest("web"))
    h.write_manifest("db.yaml", h.manifest("db"))
    web = wait_for(lambda: h.running("web"), what="web running")[0]["name"]
    db = wait_for(lambda: h.running("db"), what="db running")[0]["name"]
    assert _log(h, "web", web).exists()
    assert _log(h, "db", db).exists()

    h.write_manifest("db.yaml", h.manifest("db", env={"EDITED": "1"}))
    (h.desired / "web.yaml").unlink()
    wait_for(
        lambda: (
            [p["name"] for p in h.running("db")] not in ([], [db])
            and all(p["name"] not in (web, db) for p in h.list_pods())
        ),
        timeout=60,
        what="db replaced, web removed",
    )
    wait_for(lambda: not _log(h, "web", web).exists(), what="the deleted task's log removed")
    later = _passes(h) + 2
    wait_for(lambda: _passes(h) >= later, what="two more passes")
    # The replaced pod's log is among the task's last few: it stays, as does the new one's.
    assert _log(h, "db", db).exists()
    assert _logs(h, "db") == {uuid[:8] for uuid in _started(h, "db")}


def test_a_chatty_pod_log_is_cut_to_its_tail(h: Harness) -> None:
    filler = "x" * 100
    script = (
        f'i=0; while [ $i -lt 300 ]; do echo "line $i {filler}"; i=$((i+1)); done; '
        "echo END; exec sleep 3600"
    )
    h.start(pod_log_max_bytes=4096)
    h.write_manifest("chatty.yaml", h.manifest("chatty", command="/bin/sh", args=("-c", script)))
    pod = wait_for(lambda: h.running("chatty"), what="chatty running")[0]["name"]
    log = _log(h, "chatty", pod)
    text = wait_for(
        lambda: (t := log.read_text()) and "END" in t and len(t.encode()) <= 4096 and t,
        timeout=90,  # host pods' output reaches the log late on a loaded 2-CPU machine
        what="the log cut to at most 4096 bytes, ending with the pod's last output",
    )
    first, *rest = text.splitlines()
    assert "rktctl" in first
    assert "pod_log_max_bytes" in first
    # The newest output is kept, whole lines only; the oldest is gone.
    assert rest[-1].endswith("END")
    assert re.search(rf"line 299 {filler}$", rest[-2])
    assert re.search(rf"line \d+ {filler}$", rest[0])
    assert "line 0 " not in text
