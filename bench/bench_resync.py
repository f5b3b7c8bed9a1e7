"""Cost of reading the desired directory: cold (every file parsed) vs. a resync of unchanged files.

The daemon re-reads the whole directory on every pass (file event or periodic resync);
the stat + content-hash cache makes an unchanged directory cheap. Prints figures,
asserts nothing.

    .venv/bin/python bench/bench_resync.py [--n 5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller import nodeinfo, placement
from controller.config import Config
from controller.model import DesiredState, Observation
from controller.plan import plan
from controller.reconcile import ManifestCache

MANIFEST = """apiVersion: rktctl.io/v1
kind: Task
metadata:
  name: task-{i:05}
spec:
  config:
    image: example.com/app:1.0
    command: /bin/sleep
    args: ["3600"]
  env: {{INDEX: "{i}"}}
  resources: {{cpu: 100m, memory: 64Mi}}
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rktctl-bench-") as tmp:
        desired = Path(tmp)
        for i in range(args.n):
            (desired / f"task-{i:05}.yaml").write_text(MANIFEST.format(i=i))
        cache = ManifestCache()
        t0 = time.perf_counter()
        state = cache.read(str(desired))
        cold = time.perf_counter() - t0
        assert len(state.tasks) == args.n, len(state.tasks)
        warm_runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            cache.read(str(desired))
            warm_runs.append(time.perf_counter() - t0)
        (desired / "task-00000.yaml").write_text(MANIFEST.format(i=0).replace("3600", "7200"))
        t0 = time.perf_counter()
        cache.read(str(desired))
        one_changed = time.perf_counter() - t0
        place_s, plan_s = _place_and_plan(cache.read(str(desired)), desired)
    print(f"desired dir with {args.n} manifests:")
    print(
        f"  cold read (parse all):      {cold * 1000:8.1f} ms ({cold / args.n * 1e6:.0f} us each)"
    )
    print(f"  resync, nothing changed:    {min(warm_runs) * 1000:8.1f} ms (best of 5)")
    print(f"  resync, one file changed:   {one_changed * 1000:8.1f} ms")
    print(f"  placement of every task:    {place_s * 1000:8.1f} ms")
    print(f"  plan (no pods yet):         {plan_s * 1000:8.1f} ms")
    return 0


def _place_and_plan(desired_state: DesiredState, state_dir: Path) -> tuple[float, float]:
    """Time the pure middle of a pass: placement (interpolation, ports, hashes) and plan."""
    cfg = Config(state_dir=str(state_dir), overcommit=True)
    attrs = nodeinfo.gather_attributes(cfg, rkt_attrs={"driver.rkt.version": "1.30.0"})
    t0 = time.perf_counter()
    placed = placement.place(
        desired_state,
        attrs=attrs,
        persisted_ports={},
        host_bound=frozenset(),
        running_tasks=frozenset(),
        cfg_port_range=cfg.port_range,
        env=None,
        capacity=nodeinfo.capacity(attrs, cfg),
        overcommit=True,
    )
    t1 = time.perf_counter()
    plan(desired_state, Observation(), now=0.0, blocked=placed.blocked)
    return t1 - t0, time.perf_counter() - t1


if __name__ == "__main__":
    sys.exit(main())
