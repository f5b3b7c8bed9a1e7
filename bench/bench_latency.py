"""Latency from a manifest's atomic rename into the desired dir to the `rkt prepare` call.

Runs the real daemon (`python -m controller run`) against the fake rkt in a temp
directory, renames 20 manifests into place one at a time, and reads the time of
each task's `prepare` from the fake's call log. Prints median and worst; asserts
nothing (timing belongs in benchmarks, not tests).

    .venv/bin/python bench/bench_latency.py [--n 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import Harness, manifest_yaml, wait_for


def prepare_time(h: Harness, task: str) -> float | None:
    times = h.prepare_times(task)
    return times[0] if times else None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rktctl-bench-") as tmp:
        h = Harness(Path(tmp))
        try:
            h.start(resync_interval_s=30.0, log_level="info")
            wait_for((h.status_dir / "controller.json").exists, what="first pass")
            latencies = []
            for i in range(args.n):
                name = f"lat{i:02}"
                tmp_file = h.desired / f".{name}.yaml.tmp"
                tmp_file.write_text(manifest_yaml(name))
                t0 = time.time()
                tmp_file.rename(h.desired / f"{name}.yaml")
                t1 = wait_for(
                    lambda name=name: prepare_time(h, name),
                    timeout=30,
                    interval=0.005,
                    what=f"prepare of {name}",
                )
                latencies.append((t1 - t0) * 1000)
                wait_for(lambda name=name: h.running(name), timeout=30, what=f"{name} running")
        finally:
            h.cleanup()
    latencies.sort()
    print(f"rename -> rkt prepare latency over {len(latencies)} manifests:")
    print(
        f"  median {statistics.median(latencies):.1f} ms, worst {latencies[-1]:.1f} ms, "
        f"best {latencies[0]:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
