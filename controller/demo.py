"""A live demo: the daemon converges a temp host (bundled fake rkt) to `desired/`.

SHELL, a script for people (`make demo` / `python -m controller.demo`). It copies
the example manifests into a temp directory, runs `rktctl run` against the fake
rkt from `tests/fakes/rkt` (real processes, a temp `--dir`), waits until every
task is up, edits one manifest and shows the pod being replaced, then stops the
daemon with SIGTERM (pods keep running, as in production) and finally cleans up
the demo's pods and files. Nothing outside the temp directory is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.statusfiles import StatusFileError, read_task_statuses

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FAKE = REPO / "tests" / "fakes" / "rkt"
SETTLED_PHASES = {"Running", "Exited"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.demo", description=__doc__)
    parser.add_argument("--rkt", default=str(DEFAULT_FAKE), help="rkt binary (default: the fake)")
    parser.add_argument("--desired", default=str(REPO / "desired"), help="example manifests")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    if not Path(args.rkt).exists():
        print(f"demo: rkt binary {args.rkt} not found (run from a checkout of rktctl)")
        return 1
    root = Path(tempfile.mkdtemp(prefix="rktctl-demo-"))
    demo = _Demo(root, Path(args.rkt), Path(args.desired), args.timeout)
    try:
        return demo.run()
    finally:
        demo.cleanup()
        if args.keep:
            print(f"\nkept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


class _Demo:
    def __init__(self, root: Path, rkt: Path, examples: Path, timeout: float) -> None:
        self.root = root
        self.rkt = rkt
        self.examples = examples
        self.timeout = timeout
        self.desired = root / "desired"
        self.rkt_dir = root / "rkt"
        self.status_dir = root / "status"
        self.config = root / "config.toml"
        self.log = root / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def run(self) -> int:
        _say(f"demo directory: {self.root}")
        self.desired.mkdir()
        manifests = sorted(self.examples.glob("*.yaml"))
        for path in manifests:
            shutil.copy(path, self.desired / path.name)
        _say(f"copied {len(manifests)} example manifests: " + ", ".join(p.name for p in manifests))
        self.config.write_text(
            "\n".join(
                [
                    f'desired_dir = "{self.desired}"',
                    f'status_dir = "{self.status_dir}"',
                    f'state_dir = "{self.root / "state"}"',
                    f'rkt = "{self.rkt}"',
                    f'rkt_dir = "{self.rkt_dir}"',
                    f'rkt_local_config = "{self.root / "rkt-config"}"',
                    "resync_interval_s = 5",
                    "gc_interval_s = 0",
                    # The examples show host volumes and a stage1 of their own: both are
                    # off by default (SECURITY.md), so the demo host allows exactly these.
                    "volumes_enabled = true",
                    'allowed_volume_prefixes = ["/etc/ssl/certs", "/srv/redis"]',
                    'allowed_stage1 = ["coreos.com/rkt/stage1-coreos:1.30.0"]',
                    'log_format = "json"',
                ]
            )
            + "\n"
        )
        self._start_daemon()
        started = time.monotonic()
        tasks = self._wait(self._all_settled, "every task settled")
        if tasks is None:
            return 1
        _say(f"converged in {time.monotonic() - started:.2f}s")
        self._show_status()
        self._show_pods()

        target = self._pick_long_running(tasks)
        if target is None:
            _say("no long-running task to edit; done")
        else:
            old_uuid = tasks[target]["pod"]["uuid"]
            _say(f"editing {target}: adding env DEMO_EDIT=1 (a spec change => replace)")
            self._edit(target)
            t0 = time.monotonic()
            new = self._wait(lambda: self._replaced(target, old_uuid), f"{target} replaced")
            if new is None:
                return 1
            _say(
                f"{target}: pod {old_uuid[:8]} replaced by {new[:8]} "
                f"in {time.monotonic() - t0:.2f}s"
            )
            self._show_status()

        _say("stopping the daemon with SIGTERM (pods keep running, as in production)")
        code = self._stop_daemon()
        _say(f"daemon exited with {code}")
        self._show_pods()
        return 0 if code == 0 else 1

    # --- steps --------------------------------------------------------------------------

    def _start_daemon(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")}
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "controller", "run", "--config", str(self.config)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        _say(f"started `rktctl run` (pid {self.proc.pid}); logs: {self.log}")

    def _stop_daemon(self) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def _statuses(self) -> dict[str, dict[str, Any]]:
        try:
            return read_task_statuses(self.status_dir)
        except StatusFileError:  # the daemon has not written its first documents yet
            return {}

    def _all_settled(self) -> dict[str, dict[str, Any]] | None:
        docs = self._statuses()
        expected = len(list(self.desired.glob("*.yaml")))
        if len(docs) < expected:
            return None
        if all(
            d.get("phase") in SETTLED_PHASES or d.get("phase") == "Invalid" for d in docs.values()
        ):
            return docs
        return None

    def _pick_long_running(self, tasks: dict[str, dict[str, Any]]) -> str | None:
        for name, doc in sorted(tasks.items()):
            if doc.get("phase") == "Running" and doc.get("pod"):
                return name
        return None

    def _edit(self, task: str) -> None:
        import yaml

        for path in self.desired.glob("*.yaml"):
            doc = yaml.safe_load(path.read_text())
            if isinstance(doc, dict) and doc.get("metadata", {}).get("name") == task:
                doc.setdefault("spec", {}).setdefault("env", {})["DEMO_EDIT"] = "1"
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
                tmp.rename(path)
                return

    def _replaced(self, task: str, old_uuid: str) -> str | None:
        doc = self._statuses().get(task) or {}
        pod = doc.get("pod") or {}
        if doc.get("phase") == "Running" and pod.get("uuid") and pod["uuid"] != old_uuid:
            return str(pod["uuid"])
        return None

    def _wait(self, predicate: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.proc is not None and self.proc.poll() is not None:
                _say(f"the daemon exited early ({self.proc.returncode}); see {self.log}")
                return None
            time.sleep(0.1)
        _say(f"timed out waiting for {what}; see {self.log}")
        self._show_status()
        return None

    def _show_status(self) -> None:
        print()
        subprocess.run(
            [sys.executable, "-m", "controller", "status", "--status-dir", str(self.status_dir)],
            check=False,
        )
        print()

    def _show_pods(self) -> None:
        _say("rkt list:")
        subprocess.run([str(self.rkt), f"--dir={self.rkt_dir}", "list"], check=False)
        print()

    def cleanup(self) -> None:
        """Stop the daemon if still up, then force-stop the demo's pods (by its rkt dir)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if not self.rkt_dir.exists():
            return
        out = subprocess.run(
            [str(self.rkt), f"--dir={self.rkt_dir}", "list", "--format=json"],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            pods = json.loads(out.stdout) or []
        except ValueError:
            pods = []
        running = [p["name"] for p in pods if p.get("state") == "running"]
        if running:
            subprocess.run(
                [str(self.rkt), f"--dir={self.rkt_dir}", "stop", "--force", *running],
                capture_output=True,
                check=False,
            )
            _say(f"cleaned up {len(running)} demo pod(s)")


def _say(text: str) -> None:
    print(f"==> {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
