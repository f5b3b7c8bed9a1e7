"""How long from a config file write to the app having handled its reload signal.

Runs the real daemon (production resync of 30 s, so only the reload watch can be what
reacts) on the fake rkt or a real one, with the task of tests/e2e/test_reload_signal.py:
an app that copies its config file aside on SIGHUP. Each round writes a new version of
the file (temp file + rename) and polls until the app's copy of it appears. Prints the
median and the slowest round. Asserts nothing (tests/e2e/test_reload_signal.py asserts
the behaviour).

    .venv/bin/python bench/bench_reload.py [--backend fake|real-fly|real-host] [--rounds 10]

The floor is the watch's poll interval (1 s; half of it on average) plus one pass.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.backends import backend_or_skip
from tests.e2e.harness import Harness, harness, wait_for
from tests.e2e.test_reload_signal import conf_dir, start_reloadable_app, write_atomically


def rounds(backend: str, count: int) -> list[float]:
    with (
        tempfile.TemporaryDirectory(prefix="rktctl-bench-reload-") as tmp,
        harness(Path(tmp), backend_or_skip(backend)) as h,
    ):
        h.settings["resync_interval_s"] = 30.0
        start_reloadable_app(h)
        return [_one(h, n) for n in range(1, count + 1)]


def _one(h: Harness, n: int) -> float:
    conf = conf_dir(h)
    time.sleep(1.0 + random.random())  # land anywhere in the watch's 1 s poll cycle
    started = time.monotonic()
    write_atomically(conf / "app.conf", f"v{n + 1}\n")
    wait_for((conf / f"seen.{n}").exists, timeout=60, interval=0.005, what=f"reload {n}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="fake")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    times = rounds(args.backend, args.rounds)
    print(
        f"{args.backend}: config write -> app reloaded, {len(times)} rounds: "
        f"median {statistics.median(times) * 1000:.0f} ms, slowest {max(times) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
