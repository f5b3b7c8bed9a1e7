"""Benchmark: validate 10,000 small manifests and print the time per 1,000.

Run: .venv/bin/python bench/bench_validate.py [--count N]
Prints figures only (timings are never asserted in tests). Also times the loader
stages separately, the desired/ examples, a full-featured manifest, and the YAML
bombs of the invalid corpus, which must be refused within milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from controller import manifests as manifest
from controller.errors import ManifestError
from controller.manifests import rules, schema, yamlload

ROOT = Path(__file__).resolve().parents[1]

SMALL = """\
apiVersion: rktctl.io/v1
kind: Task
metadata:
  name: task-{i}
  labels: {{team: bench}}
spec:
  config:
    image: docker://nginx:1.{i}
    command: /bin/sh
    args: ["-c", "exec sleep {i}"]
    port_map: {{http: 8080}}
  env: {{INDEX: "{i}", LISTEN: "${{RKTCTL_PORT_http}}"}}
  resources:
    cpu: 250m
    memory: 64Mi
    ports:
      http: {{}}
  restart: {{policy: on-failure}}
"""


def timed(label: str, items: list[bytes], parse: Callable[[bytes], object]) -> float:
    start = time.perf_counter()
    for data in items:
        parse(data)
    elapsed = time.perf_counter() - start
    per_1000 = elapsed / len(items) * 1000
    print(f"{label:<44} {len(items):>6} files  {elapsed:7.3f} s  {per_1000 * 1000:7.1f} ms/1000")
    return per_1000


def parse_valid(data: bytes) -> object:
    return manifest.parse_manifest(data, source="bench.yaml")


def parse_any(data: bytes) -> object:
    try:
        return manifest.parse_manifest(data, source="bench.yaml")
    except ManifestError as exc:
        return exc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()

    small = [SMALL.format(i=i).encode() for i in range(args.count)]
    parse_valid(small[0])  # load the schema once, outside the figures
    lines = small[0].count(b"\n")
    print(f"small manifest: {len(small[0])} bytes, {lines} lines")
    runs = [timed("parse_manifest, small valid manifests", small, parse_valid) for _ in range(3)]
    print(f"  -> median {statistics.median(runs) * 1000:.1f} ms per 1000 manifests")

    texts = [yamlload.decode(d) for d in small]  # the stages, timed separately
    start = time.perf_counter()
    loaded = [yamlload.load(t) for t in texts]
    load = time.perf_counter() - start
    start = time.perf_counter()
    for value, index, _problems in loaded:
        schema.schema_problems(value, index)
    checked = time.perf_counter() - start
    start = time.perf_counter()
    for value, index, _problems in loaded:
        assert isinstance(value, dict)
        rules.rule_problems(value, index)
    ruled = time.perf_counter() - start
    each = 1e6 / len(small)
    print(f"  stages: YAML load {load * each:.0f} us, schema {checked * each:.0f} us, "
          f"rules {ruled * each:.0f} us per manifest")  # fmt: skip

    examples = [p.read_bytes() for p in sorted((ROOT / "desired").glob("*.yaml"))]
    timed("parse_manifest, desired/ examples x 250", examples * 250, parse_valid)
    broken = [SMALL.format(i=i).replace("250m", "2").encode() for i in range(1000)]
    timed("parse_manifest, invalid (bare cpu number)", broken, parse_any)
    state_files = [(f"d/{i}.yaml", d) for i, d in enumerate(small[:1000])]
    # The budget: a cold start over 1,000 small manifests within a second on 2 cores.
    # CPU time too: on a busy machine wall time measures the neighbours as well.
    start, cpu = time.perf_counter(), time.process_time()
    manifest.build_desired(state_files)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"{'build_desired of 1000 manifests (cold)':<44} {wall:7.3f} s  ({cpu:.3f} s CPU)")

    for name in ("billion-laughs", "too-many-aliases", "deep-nesting"):
        data = (ROOT / "tests" / "data" / "invalid" / f"{name}.yaml").read_bytes()
        start = time.perf_counter()
        parse_any(data)
        label = f"refusing {name}.yaml"
        print(f"{label:<44} {(time.perf_counter() - start) * 1000:7.3f} ms")
    deep = ("a: " + "[" * (manifest.MAX_BYTES - 10)).encode()
    start = time.perf_counter()
    parse_any(deep)
    label = "refusing 1 MiB of '[' (flow nesting)"
    print(f"{label:<44} {(time.perf_counter() - start) * 1000:7.3f} ms")


if __name__ == "__main__":
    main()
