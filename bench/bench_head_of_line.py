"""How long a crashed pod waits for its restart while another task is stuck in a graceful stop.

Runs the real daemon (`python -m controller run`) on the fake rkt (or a real one) in a
temp directory with two tasks: `stuck` (kill_timeout 45 s) and `crashy` (restart policy
always, initial_delay 100 ms). Each round deletes `stuck`'s manifest while its `rkt stop`
"lies" (a fault rule: exit 0, nothing signalled), so rktctl's graceful stop of it runs the
whole 45 s; 3 s into that stop the bench kills `crashy`'s pod (`rkt stop --force`, which
rktctl did not ask for: a crash as far as it knows) and measures, by polling `rkt list`,
how long until a new `crashy` pod runs. Printed per round: that wait, split into detection
(crash -> rktctl removes the exited pod) and restart (-> the new pod runs), and whether
`stuck` was still stopping when `crashy` ran again. Asserts nothing (timings belong here,
not in tests); tests/e2e/test_no_head_of_line.py asserts the property.

    .venv/bin/python bench/bench_head_of_line.py [--rounds 3] [--backend fake|real-fly|real-host]
    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/bench_head_of_line.py  # compare

The daemon runs with the production resync interval (30 s) unless --resync says otherwise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.backends import backend_or_skip
from tests.e2e.harness import Harness, wait_for

KILL_TIMEOUT_S = 45
CRASH_AFTER_S = 3.0


def _event_time(h: Harness, event: str, task: str, after: float) -> float | None:
    from controller.timefmt import parse_iso

    for e in h.events(event):
        at = parse_iso(e.get("timestamp"))
        if e.get("task") == task and at is not None and at >= after:
            return at
    return None


def one_round(h: Harness, resync_s: float) -> dict[str, float | bool]:
    h.start(resync_interval_s=resync_s, log_level="info", command_timeout_s=60.0)
    stuck = h.manifest("stuck").replace("kill_timeout: 5s", f"kill_timeout: {KILL_TIMEOUT_S}s")
    h.write_manifest("stuck.yaml", stuck)
    crashy = h.manifest("crashy") + "  restart: {policy: always, initial_delay: 100ms}\n"
    h.write_manifest("crashy.yaml", crashy)
    stuck_uuid = wait_for(lambda: h.running("stuck"), timeout=120, what="stuck running")[0]["name"]
    crashy_uuid = wait_for(lambda: h.running("crashy"), timeout=120, what="crashy running")[0][
        "name"
    ]
    h.add_fault(cmd="stop", match=f"stop {stuck_uuid}", stdout=stuck_uuid, exit=0)
    (h.desired / "stuck.yaml").unlink()
    wait_for(lambda: h.calls("stop"), timeout=120, what="the graceful stop of stuck")
    stop_began = time.time()
    time.sleep(CRASH_AFTER_S)  # a benchmark may wait on purpose: the crash lands mid-stop

    h.backend.run(h.rkt_dir, "stop", "--force", crashy_uuid)
    crashed = time.time()
    wait_for(
        lambda: [p for p in h.running("crashy") if p["name"] != crashy_uuid],
        timeout=KILL_TIMEOUT_S + 2 * resync_s + 60,
        interval=0.02,
        what="a new crashy pod running",
    )
    restarted = time.time()
    still_stopping = any(p["name"] == stuck_uuid for p in h.running("stuck"))
    removed = _event_time(h, "pod_removed", "crashy", crashed - 0.5) or restarted
    return {
        "wait_s": restarted - crashed,
        "detect_s": max(removed - crashed, 0.0),
        "restart_s": max(restarted - removed, 0.0),
        "stuck_still_stopping": still_stopping,
        "stop_age_at_restart_s": restarted - stop_began,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="fake", choices=("fake", "real-fly", "real-host"))
    parser.add_argument("--resync", type=float, default=30.0, help="resync_interval_s")
    parser.add_argument("--json", action="store_true", help="print the rounds as JSON")
    args = parser.parse_args()
    backend = backend_or_skip(args.backend)
    rounds = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="rktctl-bench-hol-") as tmp:
            h = Harness(Path(tmp), backend)
            try:
                rounds.append(one_round(h, args.resync))
            finally:
                h.cleanup()
    if args.json:
        print(json.dumps(rounds, indent=2))
        return 0
    print(
        f"crashed pod -> running again, while another task is in a {KILL_TIMEOUT_S} s graceful "
        f"stop ({args.backend}, resync {args.resync:g} s, crash {CRASH_AFTER_S:g} s into the stop):"
    )
    for i, r in enumerate(rounds, 1):
        print(
            f"  round {i}: {r['wait_s']:.2f} s (detect {r['detect_s']:.2f} s, restart "
            f"{r['restart_s']:.2f} s); the stop was {r['stop_age_at_restart_s']:.1f} s old, "
            f"still in progress: {'yes' if r['stuck_still_stopping'] else 'NO'}"
        )
    waits = sorted(r["wait_s"] for r in rounds)
    print(f"  median {statistics.median(waits):.2f} s, worst {waits[-1]:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
