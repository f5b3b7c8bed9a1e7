"""How long from a broken commit to its rollback being complete (`spec.update`, issue 14).

Runs the real daemon (`python -m controller run`, production resync of 30 s) on the fake
rkt (or a real one) in a temp directory. A task `web` (sleep, an `exec` health check
every 1 s, failure_threshold 3) runs a healthy version until rktctl has recorded it as
the last healthy spec; then the bench atomically replaces the manifest by a version
whose check always fails (the "broken commit") and polls until the rollback is
complete: the task reports Stalled/RolloutFailed, only the old spec's pod runs, and it
is Ready. Printed per setting: that time, and the healthy_deadline it includes.
Asserts nothing (timings belong here; tests/e2e/test_rollout.py asserts the behaviour).

    .venv/bin/python bench/bench_rollback.py [--backend fake|real-fly|real-host]
        [--order start-first|stop-first] [--settings default,tight]

`default` sets no `update` timing (min_healthy_time 10s, healthy_deadline 5m);
`tight` sets min_healthy_time 1s, healthy_deadline 5s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.backends import backend_or_skip
from tests.e2e.harness import Harness, wait_for

SETTINGS = {"default": "", "tight": "min_healthy_time: 1s, healthy_deadline: 5s, "}


def _manifest(h: Harness, version: str, *, healthy: bool, order: str, timing: str) -> str:
    text = h.manifest("web", command="/bin/sleep", args=("3600",), env={"VERSION": version})
    return text + (
        "  restart: {policy: always, initial_delay: 1s, max_delay: 2s}\n"
        f"  health:\n    exec: {{command: [/bin/sh, -c, 'exit {0 if healthy else 1}']}}\n"
        "    interval: 1s\n    timeout: 10s\n    failure_threshold: 3\n"
        f"  update: {{{timing}order: {order}}}\n"
    )


def _cond(h: Harness, kind: str) -> dict[str, Any]:
    for c in (h.task_status("web") or {}).get("conditions") or ():
        if c["type"] == kind:
            return dict(c)
    return {}


def _record(h: Harness) -> dict[str, Any]:
    path = h.state_dir / "rollouts.json"
    return dict(json.loads(path.read_text()).get("web") or {}) if path.exists() else {}


def one(backend: str, setting: str, order: str) -> float:
    with tempfile.TemporaryDirectory(prefix="rktctl-bench-rollback-") as tmp:
        h = Harness(Path(tmp), backend_or_skip(backend))
        try:
            h.start(resync_interval_s=30.0, log_level="info", command_timeout_s=60.0)
            timing = SETTINGS[setting]
            h.write_manifest("web.yaml", _manifest(h, "1", healthy=True, order=order,
                                                   timing=timing))  # fmt: skip
            wait_for(lambda: _record(h).get("healthy_manifest"), what="v1 healthy", timeout=300)
            old_hash = _record(h)["healthy_hash"]
            started = time.time()  # the broken commit lands
            h.write_manifest("web.yaml", _manifest(h, "2", healthy=False, order=order,
                                                   timing=timing))  # fmt: skip

            def done() -> bool:
                pods = h.running("web")
                return (
                    _cond(h, "Stalled").get("reason") == "RolloutFailed"
                    and _cond(h, "Ready").get("status") == "True"
                    and bool(pods)
                    and all(
                        p["apps"][0]["user_annotations"]["rktctl.io/spec-hash"] == old_hash
                        for p in pods
                    )
                )

            wait_for(done, what="rollback complete", timeout=900, interval=0.05)
            return time.time() - started
        finally:
            h.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="fake")
    ap.add_argument("--order", default="start-first")
    ap.add_argument("--settings", default="tight,default")
    args = ap.parse_args()
    for setting in args.settings.split(","):
        took = one(args.backend, setting, args.order)
        deadline = "5s" if setting == "tight" else "5m"
        print(f"{args.backend} {args.order} {setting:7s} (healthy_deadline {deadline}): "
              f"broken commit -> rollback complete {took:.2f} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
