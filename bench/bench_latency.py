"""Reactivity figures, each beside its floor: drop -> prepare, drop -> running, exit -> noticed.

One run prints a table (median and p99 in ms; with fewer than 100 samples p99 is the
worst) of:

  1. drop -> `rkt prepare` on the fake, with 1 / 100 / 1,000 other manifests in the
     desired dir (blocked by a constraint, so they are read, planned and reported but
     start no pod). The real daemon (`python -m controller run`) runs; each manifest is
     renamed into place once the daemon is idle. Two times: when rktctl spawns `rkt
     prepare` (a /bin/sh wrapper in front of the fake logs it, then execs the fake) and
     when the fake's prepare starts (its call log; the fake is Python, so this adds its
     start-up, which real rkt does not have). Floor: a bare watchdog callback on the
     same rename plus a YAML load of the file. Between the two: the pass's `rkt list`
     and, for an image not yet in the store, the start's `rkt fetch` (one more row at
     the largest size drops tasks of an image already fetched: no fetch).
  2. real rkt (fly) drop -> pod running (its pid file written) vs. `rkt prepare` +
     `rkt run-prepared` by hand, timed to the same pid file. Only when real rkt is
     available (RKTCTL_TEST_RKT, or rkt on PATH, as the tests find it).
  3. pod exit -> rktctl notices: the pod's pid is SIGKILLed; noticed is the start of
     the first `rkt list` after it (the pass that observes the exit). The daemon runs
     with resync_interval_s = RESYNC_S, so without an exit event this waits for the
     resync. Fake, and fly when available.

Asserts nothing (timing belongs in benchmarks, not tests). To measure other code (e.g.
main before a change), put its checkout first on PYTHONPATH: the daemon is started as
`python -m controller`.

    .venv/bin/python bench/bench_latency.py [--n 30] [--sizes 1,100,1000] [--real-n 8]
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from tests.backends import _pod_pid, make_backend, unavailable
from tests.e2e.harness import Harness, manifest_yaml, pod_task, wait_for

RESYNC_S = 5.0
BLOCKED = (
    '  constraints:\n    - {attribute: "${attr.kernel.name}", operator: "==", value: "plan9"}\n'
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), pct(values, 0.99)


def drop(desired: Path, name: str, text: str) -> float:
    """Rename a manifest into place (as GitOps tools do); return when (epoch seconds)."""
    tmp = desired / f".{name}.yaml.tmp"
    tmp.write_text(text)
    t0 = time.time()
    tmp.rename(desired / f"{name}.yaml")
    return t0


# --- 1. drop -> prepare --------------------------------------------------------------------


def floor_callback(n: int) -> list[float]:
    """Rename -> a watchdog callback that has loaded the file's YAML (ms)."""
    done: dict[str, float] = {}

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.event_type in ("opened", "closed_no_write"):
                return  # our own read of the file; as rktctl's watcher does
            path = os.fsdecode(getattr(event, "dest_path", "") or event.src_path)
            if not path.endswith(".yaml") or Path(path).name.startswith("."):
                return
            with open(path, encoding="utf-8") as handle:
                yaml.safe_load(handle)
            done.setdefault(Path(path).stem, time.time())

    out = []
    with tempfile.TemporaryDirectory(prefix="rktctl-bench-floor-") as tmp:
        desired = Path(tmp)
        observer = Observer()
        observer.schedule(Handler(), tmp, recursive=True)
        observer.start()
        try:
            for i in range(n):
                name = f"lat{i:03}"
                t0 = drop(desired, name, manifest_yaml(name))
                wait_for(lambda name=name: name in done, timeout=10, interval=0.001, what=name)
                out.append((done[name] - t0) * 1000)
                time.sleep(0.2)  # the same quiet period as the daemon's drops
        finally:
            observer.stop()
            observer.join()
    return out


SPAWN_LOG_WRAPPER = """#!/bin/sh
# Logs when rktctl spawned this rkt call, then becomes the fake.
case " $* " in *" prepare "*) echo "$(date +%s.%N) $*" >> "{log}" ;; esac
exec "{fake}" "$@"
"""


def spawned_at(log: Path, task: str) -> float | None:
    """When rktctl spawned `rkt prepare` for `task` (epoch seconds), from the wrapper's log."""
    stamp = f"--user-annotation=rktctl.io/task={task}"
    text = log.read_text() if log.exists() else ""
    for line in text.splitlines():
        if stamp in line.split():
            return float(line.split(" ", 1)[0])
    return None


def wait_idle(h: Harness, quiet_s: float = 1.0) -> None:
    """Until the daemon is idle: no status file written for `quiet_s` (task files are
    renamed into tasks/, which changes its mtime; controller.json comes last), so a drop
    never waits for an earlier pass's status write."""

    def stamp() -> tuple[int, int]:
        return (
            (h.status_dir / "controller.json").stat().st_mtime_ns,
            (h.status_dir / "tasks").stat().st_mtime_ns,
        )

    last, since = stamp(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        time.sleep(0.05)
        now = stamp()
        if now != last:
            last, since = now, time.monotonic()


def drop_to_prepare(
    n: int, others: int, *, image: str | None = None
) -> tuple[list[float], list[float]]:
    """Rename -> rktctl spawns `rkt prepare`, and -> the fake's prepare runs (ms), with
    `others` blocked manifests present. Each dropped task has an image of its own, so
    its start runs `rkt fetch` first; with `image`, every task has that one image, which
    a warm-up task fetches first, so no measured start fetches."""
    with tempfile.TemporaryDirectory(prefix="rktctl-bench-") as tmp:
        h = Harness(Path(tmp))
        spawn_log = Path(tmp) / "spawned.log"
        wrapper = Path(tmp) / "rkt-wrapper"
        wrapper.write_text(SPAWN_LOG_WRAPPER.format(log=spawn_log, fake=h.backend.rkt))
        wrapper.chmod(0o755)
        try:
            for i in range(others):
                name = f"other{i:04}"
                (h.desired / f"{name}.yaml").write_text(manifest_yaml(name, extra_spec=BLOCKED))
            h.start(rkt=str(wrapper), resync_interval_s=600.0, log_level="info")
            wait_for((h.status_dir / "controller.json").exists, timeout=120, what="the first pass")
            wait_idle(h)
            if image is not None:
                drop(h.desired, "warmup", manifest_yaml("warmup", image=image))
                wait_for(lambda: h.running("warmup"), timeout=60, what="warmup running")
                wait_idle(h)
            spawned, started = [], []
            for i in range(n):
                name = f"lat{i:03}"
                t0 = drop(h.desired, name, manifest_yaml(name, image=image))
                t1 = wait_for(
                    lambda name=name: (times := h.prepare_times(name)) and times[0],
                    timeout=60,
                    interval=0.005,
                    what=f"prepare of {name}",
                )
                ts = wait_for(lambda name=name: spawned_at(spawn_log, name), what="spawn log")
                spawned.append((ts - t0) * 1000)
                started.append((t1 - t0) * 1000)
                wait_for(lambda name=name: h.running(name), timeout=60, what=f"{name} running")
                wait_idle(h)
        finally:
            h.cleanup()
    return spawned, started


def fake_list_wall(n: int) -> list[float]:
    """Wall time of one fake `rkt list --format=json` (ms): part of every pass, and the
    fake is Python; real rkt answers in ~20-30 ms."""
    out = []
    with tempfile.TemporaryDirectory(prefix="rktctl-bench-list-") as tmp:
        backend = make_backend("fake")
        for _ in range(n):
            t0 = time.perf_counter()
            backend.run(Path(tmp), "list", "--format=json")
            out.append((time.perf_counter() - t0) * 1000)
    return out


# --- 2. real fly: drop -> running -----------------------------------------------------------


def new_pid_file(rkt_dir: Path, known: set[str]) -> str | None:
    """The UUID of a pod not in `known` whose pid file exists (its app runs)."""
    run = rkt_dir / "pods" / "run"
    if not run.is_dir():
        return None
    for entry in os.listdir(run):
        if entry not in known and _pod_pid(rkt_dir, entry) is not None:
            return entry
    return None


def fly_by_hand(n: int) -> list[float]:
    """`rkt prepare` + detached `rkt run-prepared` -> pid file written (ms)."""
    backend = make_backend("real-fly")
    out = []
    with tempfile.TemporaryDirectory(prefix="rktctl-bench-fly-") as tmp:
        rkt_dir = Path(tmp) / "rkt"
        rkt_dir.mkdir()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            backend.prepare(rkt_dir, "--exec=/bin/sleep", "--", "3600")  # warm the store
            known: set[str] = set(os.listdir(rkt_dir / "pods" / "prepared"))
            for _ in range(n):
                t0 = time.time()
                uuid = backend.prepare(rkt_dir, "--exec=/bin/sleep", "--", "3600")
                procs.append(backend.run_detached(rkt_dir, uuid, Path(tmp) / f"{uuid}.log"))
                wait_for(
                    lambda: new_pid_file(rkt_dir, known), timeout=60, interval=0.002, what="pid"
                )
                out.append((time.time() - t0) * 1000)
                known.add(uuid)
                time.sleep(0.3)
        finally:
            backend.cleanup(rkt_dir)
            for proc in procs:
                proc.wait(timeout=30)
    return out


def fly_rktctl(n: int) -> list[float]:
    """Rename into the daemon's desired dir -> pid file of the new pod written (ms)."""
    backend = make_backend("real-fly")
    out = []
    with tempfile.TemporaryDirectory(prefix="rktctl-bench-fly-") as tmp:
        h = Harness(Path(tmp), backend)
        try:
            # rkt itself, not the recording proxy the tests use: a Python process in front
            # of every rkt call would be measured too.
            h.start(rkt=backend.direct, resync_interval_s=600.0, log_level="info")
            wait_for((h.status_dir / "controller.json").exists, timeout=60, what="first pass")
            h.write_manifest("warm.yaml", h.manifest("warm"))  # the image into the store
            wait_for(lambda: h.running("warm"), timeout=120, what="warm running")
            time.sleep(1.0)
            known = set(os.listdir(h.rkt_dir / "pods" / "run"))
            for i in range(n):
                name = f"fly{i:02}"
                t0 = drop(h.desired, name, h.manifest(name))
                uuid = wait_for(
                    lambda: new_pid_file(h.rkt_dir, known),
                    timeout=60,
                    interval=0.002,
                    what=f"{name}'s pid",
                )
                out.append((time.time() - t0) * 1000)
                known.add(uuid)
                time.sleep(1.0)  # the verify pass after the start is over
        finally:
            h.cleanup()
    return out


# --- 3. pod exit -> noticed -----------------------------------------------------------------


def exit_noticed(backend_name: str, n: int) -> list[float]:
    """SIGKILL of a running pod's pid -> the start of the next `rkt list` (ms)."""
    backend = make_backend(backend_name)
    out = []
    with tempfile.TemporaryDirectory(prefix="rktctl-bench-exit-") as tmp:
        h = Harness(Path(tmp), backend)
        try:
            h.start(resync_interval_s=RESYNC_S, log_level="info")
            restart = "  restart: {policy: always, initial_delay: 200ms, max_delay: 1s}\n"
            h.write_manifest("exiter.yaml", h.manifest("exiter", extra_spec=restart))
            for _ in range(n):
                pod = wait_for(lambda: h.running("exiter"), timeout=60, what="exiter running")[0]
                pid = wait_for(lambda pod=pod: _pod_pid(h.rkt_dir, pod["name"]), what="pid")
                time.sleep(1.0)  # the passes that followed the start are over
                t0 = time.time()
                os.kill(pid, signal.SIGKILL)
                t1 = wait_for(
                    lambda t0=t0: next((c["t"] for c in _list_calls(h) if c["t"] >= t0), None),
                    timeout=RESYNC_S * 3,
                    interval=0.005,
                    what="the next rkt list",
                )
                out.append((t1 - t0) * 1000)
                wait_for(
                    lambda pod=pod: all(
                        p["name"] != pod["name"]
                        for p in h.list_pods()
                        if pod_task(p) == "exiter" and p["state"] == "running"
                    ),
                    timeout=30,
                    what="the killed pod gone",
                )
        finally:
            h.cleanup()
    return out


def _list_calls(h: Harness) -> list[dict[str, float]]:
    from tests.fakes import fakerkt

    return fakerkt.calls(h.rkt_dir, "list")


# --- report ---------------------------------------------------------------------------------


def row(label: str, values: list[float], floor: list[float] | None) -> str:
    med, p99 = summary(values)
    text = f"{label:<44} {len(values):>4} {med:>9.1f} {p99:>9.1f}"
    if floor:
        fmed, fp99 = summary(floor)
        text += f" {fmed:>9.1f} {fp99:>9.1f} {med / fmed:>6.2f}x {p99 / fp99:>6.2f}x"
    return text


def timed(what: str, fn: Callable[[], list[float]]) -> list[float]:
    print(f"# measuring {what} ...", file=sys.stderr, flush=True)
    return fn()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=30, help="drops per size (fake)")
    parser.add_argument("--sizes", default="1,100,1000", help="other manifests present")
    parser.add_argument("--real-n", type=int, default=8, help="samples per real-rkt figure")
    parser.add_argument("--exit-n", type=int, default=10, help="pod exits (fake)")
    parser.add_argument("--prepare-only", action="store_true", help="only part 1")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    real = unavailable("real-fly") is None

    floor = timed("the watchdog+YAML floor", lambda: floor_callback(args.n))
    fake_list = timed("the fake's rkt list", lambda: fake_list_wall(args.n))
    prepare = {
        k: timed(f"drop->prepare at {k}", lambda k=k: drop_to_prepare(args.n, k)) for k in sizes
    }
    known = timed(
        f"drop->prepare at {sizes[-1]}, image known",
        lambda: drop_to_prepare(args.n, sizes[-1], image="example.com/shared:1.0"),
    )
    exits = (
        []
        if args.prepare_only
        else timed("exit->noticed", lambda: exit_noticed("fake", args.exit_n))
    )
    fly_hand = fly_ctl = fly_exits = None
    if real and not args.prepare_only:
        fly_hand = timed("fly by hand", lambda: fly_by_hand(args.real_n))
        fly_ctl = timed("fly via rktctl", lambda: fly_rktctl(args.real_n))
        fly_exits = timed("exit->noticed (fly)", lambda: exit_noticed("real-fly", args.real_n))

    head = f"{'figure (ms)':<44} {'n':>4} {'median':>9} {'p99':>9}"
    print(f"{head} {'floor med':>9} {'floor p99':>9} {'ratio':>7} {'ratio99':>7}")
    print(row("floor: watchdog callback + YAML load", floor, None))
    print(row("for reference: one fake `rkt list` (wall)", fake_list, None))
    for k, (spawned, started) in prepare.items():
        print(row(f"drop -> prepare spawned, {k} others", spawned, floor))
        print(row(f"drop -> fake's prepare runs, {k} others", started, floor))
    print(row(f"drop -> prepare spawned, {sizes[-1]} others, image known", known[0], floor))
    if fly_hand is not None and fly_ctl is not None:
        print(row("fly by hand: prepare + run-prepared -> pid", fly_hand, None))
        print(row("fly via rktctl: drop -> pid", fly_ctl, fly_hand))
    else:
        print(f"real rkt (fly): skipped: {unavailable('real-fly') or '--prepare-only'}")
    if exits:
        print(row(f"pod exit -> noticed, fake (resync {RESYNC_S:g} s)", exits, None))
    if fly_exits is not None:
        print(row(f"pod exit -> noticed, fly (resync {RESYNC_S:g} s)", fly_exits, None))
    print("goals: drop->prepare p99 <= 50 ms at 1,000; fly <= 1.2x by hand; exit <= 100 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
