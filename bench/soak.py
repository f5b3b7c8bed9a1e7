"""Soak: run the daemon for a while under manifest churn and print its RSS, fds and pass times.

Runs the real daemon (`python -m controller run`) on the fake rkt (or a real one) in a temp
directory with --tasks manifests, then changes --churn manifests a second (edits, which
replace the pod, deletions and re-additions) for --duration seconds. Every --interval it
prints one line: elapsed time, the daemon's RSS and open fds (from /proc), its threads,
the passes since the last line with their median and worst duration, actions booked,
pods running. A leak shows as RSS or fds that keep growing; head-of-line blocking as
pass times that grow with the load. Asserts nothing.

    .venv/bin/python bench/soak.py [--tasks 50] [--churn 1.0] [--duration 120] [--interval 10]
    .venv/bin/python bench/soak.py --tasks 1000 --churn 1.7 --duration 600   # the attack run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.backends import backend_or_skip
from tests.e2e.harness import Harness, wait_for


class LogTail:
    """Reads the daemon's JSON log incrementally (the log of a long soak is large)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
        self.offset += end
        events = []
        for line in data[:end].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events


def proc_facts(pid: int) -> tuple[float, int, int]:
    """(RSS in MiB, open fds, threads) of process `pid`."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kib = int(fields["VmRSS"].split()[0])
    threads = int(fields["Threads"].strip())
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss_kib / 1024, fds, threads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--churn", type=float, default=1.0, help="manifest changes per second")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of churn")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between lines")
    parser.add_argument("--backend", default="fake", choices=("fake", "real-fly", "real-host"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    backend = backend_or_skip(args.backend)
    with tempfile.TemporaryDirectory(prefix="rktctl-soak-") as tmp:
        h = Harness(Path(tmp), backend)
        try:
            return soak(h, args, rng)
        finally:
            h.cleanup()


def soak(h: Harness, args: argparse.Namespace, rng: random.Random) -> int:
    names = [f"soak{i:04}" for i in range(args.tasks)]
    version = dict.fromkeys(names, 0)
    desired = set(names)
    for name in names:
        h.write_manifest(f"{name}.yaml", h.manifest(name, env={"V": "0"}))
    h.start(
        resync_interval_s=30.0,
        log_level="debug",  # every pass's reconcile_finished line (debug when it did nothing)
        max_delete_fraction=1.0,
        max_parallel=8,
        command_timeout_s=60.0,
    )
    assert h.proc is not None
    tail = LogTail(h.log_path)
    started = time.monotonic()
    wait_for(
        lambda: len([p for p in h.list_pods() if p["state"] == "running"]) >= args.tasks,
        timeout=max(120.0, args.tasks * 1.0),
        interval=0.5,
        what=f"{args.tasks} running pods",
    )
    print(f"{args.tasks} pods running after {time.monotonic() - started:.1f} s; churn starts")
    print(f"{'t/s':>6} {'rss/MiB':>8} {'fds':>5} {'thr':>4} {'passes':>6} "
          f"{'median/ms':>10} {'worst/ms':>9} {'actions':>8} {'running':>8}")  # fmt: skip
    tail.new_events()
    begin = time.monotonic()
    next_change = begin
    next_line = begin + args.interval
    while (now := time.monotonic()) < begin + args.duration:
        if now >= next_change:
            name = rng.choice(names)
            if name in desired and rng.random() < 0.15:
                desired.discard(name)
                (h.desired / f"{name}.yaml").unlink()
            else:
                desired.add(name)
                version[name] += 1
                text = h.manifest(name, env={"V": str(version[name])})
                h.write_manifest(f"{name}.yaml", text)
            next_change += 1.0 / args.churn if args.churn > 0 else args.duration
        if now >= next_line:
            report_line(h, tail, now - begin)
            next_line += args.interval
        time.sleep(max(0.0, min(next_change, next_line) - time.monotonic()))
    report_line(h, tail, time.monotonic() - begin)
    return 0


def report_line(h: Harness, tail: LogTail, elapsed: float) -> None:
    assert h.proc is not None
    rss, fds, threads = proc_facts(h.proc.pid)
    passes = [e for e in tail.new_events() if e.get("event") == "reconcile_finished"]
    durations = sorted(float(e.get("duration_ms") or 0) for e in passes)
    actions = sum(
        int(e.get("started") or 0) + int(e.get("stopped") or 0) + int(e.get("removed") or 0)
        for e in passes
    )
    running = len([p for p in h.list_pods() if p["state"] == "running"])
    median = statistics.median(durations) if durations else 0.0
    worst = durations[-1] if durations else 0.0
    print(f"{elapsed:6.0f} {rss:8.1f} {fds:5d} {threads:4d} {len(passes):6d} "
          f"{median:10.1f} {worst:9.1f} {actions:8d} {running:8d}", flush=True)  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
