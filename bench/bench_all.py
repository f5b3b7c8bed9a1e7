"""Issue 13's whole table from one command: the pass figures, then the reactivity figures.

Runs bench/bench_pass.py (CPU and wall of a no-change pass, files rewritten, cold start,
idle RSS and CPU, `rkt list` parse vs. the bare decode; each beside its goal) and
bench/bench_latency.py (drop -> prepare, fly drop -> running, pod exit -> noticed; each
beside its floor, with the ratios) one after the other, so neither measures the other,
and prints both tables with the CPU time each run took. Asserts nothing.

    .venv/bin/python bench/bench_all.py [--scales 1000,10000] [--n 30] [--sizes 1,100,1000]
                                        [--real-n 8] [--prepare-only]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run(argv: list[str]) -> str:
    """Run one bench; return its table and the CPU (its processes') and wall time it took."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, *argv], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return f"{out.stdout.rstrip()}\n(took {wall:.0f} s wall, {cpu:.0f} s CPU)"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", default="1000,10000", help="bench_pass: tasks per column")
    parser.add_argument("--n", default="30", help="bench_latency: drops per size")
    parser.add_argument("--sizes", default="1,100,1000", help="bench_latency: other manifests")
    parser.add_argument("--real-n", default="8", help="bench_latency: real-rkt samples")
    parser.add_argument("--prepare-only", action="store_true", help="bench_latency: part 1 only")
    args = parser.parse_args()
    latency = [str(HERE / "bench_latency.py"), "--n", args.n, "--sizes", args.sizes,
               "--real-n", args.real_n]  # fmt: skip
    latency += ["--prepare-only"] if args.prepare_only else []
    print("== issue 13: passes at scale (bench/bench_pass.py) ==")
    print(_run([str(HERE / "bench_pass.py"), "--scales", args.scales]), flush=True)
    print("\n== issue 13: reactivity (bench/bench_latency.py) ==")
    print(_run(latency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
