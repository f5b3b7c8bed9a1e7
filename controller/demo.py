"""A live demo: the daemon converges a temp host to `desired/`, on the fake rkt or a real one.

SHELL, a script for people: `make demo` (the bundled fake, tests/fakes/rkt) or, as
root where rkt is installed, `make demo RKT=rkt [STAGE1=fly|host|/path/stage1.aci]`
(`python -m controller.demo --rkt ... --stage1 ...`). It copies the example manifests
into a temp directory, runs `rktctl run` with its own rkt `--dir` there, waits until
every task is up, edits one manifest and shows the pod being replaced, then stops the
daemon with SIGTERM (pods keep running, as in production) and cleans up the demo's pods
and files (on a real rkt: `rkt gc` of its own `--dir`, and no mount left). A real rkt
has no network here: `demosetup` checks the host first, builds the demo's busybox image
and adapts the manifests to it. Nothing outside the temp directory is touched but what
rkt itself does for a pod (cgroups, CNI).
"""

from __future__ import annotations

import argparse
import contextlib
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

from controller import aci
from controller.demosetup import (
    DEFAULT_FAKE,
    IMAGE_NAME,
    IMAGE_VERSION,
    REPO,
    DemoRkt,
    adapt_manifest,
    build_image,
    check_rkt,
)
from controller.manifests import read_yaml
from controller.statusfiles import StatusFileError, read_task_statuses

NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")
SETTLED_PHASES = {"Running", "Exited", "Invalid", "Blocked"}
STOP_TIMEOUT_S = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.demo", description=__doc__)
    parser.add_argument(
        "--rkt", default=str(DEFAULT_FAKE), help="rkt binary (default: the bundled fake)"
    )
    parser.add_argument(
        "--stage1",
        help="real rkt only: fly (default), host, or the path of a stage1 ACI",
    )
    parser.add_argument("--desired", default=str(REPO / "desired"), help="example manifests")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args(argv)
    real, problems = check_rkt(args.rkt, args.stage1)
    if problems:
        for problem in problems:
            print(f"demo: {problem}", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="rktctl-demo-"))
    demo = _Demo(root, real, Path(args.desired), args.timeout)
    try:
        return demo.run()
    finally:
        demo.cleanup()
        if args.keep:
            print(f"\nkept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


class _Demo:
    def __init__(self, root: Path, rkt: DemoRkt, examples: Path, timeout: float) -> None:
        self.root = root
        self.rkt = rkt
        self.examples = examples
        self.timeout = timeout
        self.desired = root / "desired"
        self.rkt_dir = root / "rkt"
        self.status_dir = root / "status"
        self.state_dir = root / "state"
        self.config = root / "config.toml"
        self.log = root / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        path = [*rkt.path_prefix, os.environ.get("PATH", "")]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")}
        self.env["PATH"] = os.pathsep.join(p for p in path if p)

    def run(self) -> int:
        where = "the bundled fake rkt" if self.rkt.is_fake else f"{self.rkt.rkt}"
        if self.rkt.stage1:
            where += f", stage1 {self.rkt.stage1}"
        _say(f"demo directory: {self.root}; rkt: {where}")
        self._write_config()
        self._write_manifests()
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

    def _write_config(self) -> None:
        settings: dict[str, object] = {
            "desired_dir": str(self.desired),
            "status_dir": str(self.status_dir),
            "state_dir": str(self.state_dir),
            "rkt": self.rkt.rkt,
            "rkt_dir": str(self.rkt_dir),
            "rkt_local_config": str(self.root / "rkt-config"),
            "resync_interval_s": 5,
            "gc_interval_s": 0,
            "log_format": "json",
        }
        if self.rkt.stage1:
            settings["stage1"] = self.rkt.stage1
        # The examples show host volumes and a stage1 of their own: both are off by
        # default (SECURITY.md), so the demo host allows exactly these (on real rkt the
        # absolute paths move below the demo's own directory).
        settings["volumes_enabled"] = True
        settings["allowed_volume_prefixes"] = ["/etc/ssl/certs", str(self.root)]
        settings["allowed_stage1"] = ["coreos.com/rkt/stage1-coreos:1.30.0"]
        if self.rkt.is_fake:
            # The bundled fake's compiled-in stage1 is coreos, which remaps ports; rktctl's
            # default assumes fly, which cannot (README "Ports and port_map").
            settings["default_stage1_flavor"] = "coreos"
        self.config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))

    def _write_manifests(self) -> None:
        import yaml

        # Explicit modes: the trust policy refuses group-writable manifests, and a
        # checkout or a umask of 002 would make them so.
        self.desired.mkdir()
        self.desired.chmod(0o755)
        manifests = sorted(self.examples.glob("*.yaml"))
        if self.rkt.is_fake:  # the fake "fetches" any image name and runs no real image
            for path in manifests:
                shutil.copy(path, self.desired / path.name)
                (self.desired / path.name).chmod(0o644)
            _say(
                f"copied {len(manifests)} example manifests: "
                + ", ".join(p.name for p in manifests)
            )
            return
        image = self._build_image()
        host_root = self.root / "host"
        for path in manifests:
            example = read_yaml(path.read_text())
            assert isinstance(example, dict), path  # the examples are tested valid
            doc, notes = adapt_manifest(
                example,
                image=image,
                fly=self.rkt.fly,
                host_root=str(host_root),
            )
            (self.desired / path.name).write_text(yaml.safe_dump(doc, sort_keys=False))
            (self.desired / path.name).chmod(0o644)
            _say(f"{path.name}: the demo image" + "".join(f"; {n}" for n in notes))
        self._make_volume_dirs(host_root)

    def _build_image(self) -> str:
        path = build_image(self.root / "demo.aci")
        _say(f"built the demo image {IMAGE_NAME}:{IMAGE_VERSION} from {aci.BUSYBOX}: {path}")
        return path

    def _make_volume_dirs(self, host_root: Path) -> None:
        """Create every volume's host directory, as an operator provisions a host's data.

        Real rkt refuses a host path that does not exist; the moved absolute ones and
        the tasks' relative (per-task) ones start empty.
        """
        from controller import manifests, rktargs
        from controller.config import load_config
        from controller.runtime import argv_options

        data_dir = argv_options(load_config(str(self.config))).task_data_dir
        for path in sorted(self.desired.glob("*.yaml")):
            spec = manifests.parse_manifest(path.read_bytes(), source=str(path))
            for volume in spec.volumes:
                if "${" not in volume.host:  # variables are resolved only at start time
                    host = rktargs.host_path(spec.name, volume.host, data_dir)
                    Path(host).mkdir(parents=True, exist_ok=True)

    def _start_daemon(self) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "controller", "run", "--config", str(self.config)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=self.env,
            )
        _say(f"started `rktctl run` (pid {self.proc.pid}); logs: {self.log}")

    def _stop_daemon(self) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
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
        if all(d.get("phase") in SETTLED_PHASES for d in docs.values()):
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
            doc = read_yaml(path.read_text())
            if isinstance(doc, dict) and doc.get("metadata", {}).get("name") == task:
                doc.setdefault("spec", {}).setdefault("env", {})["DEMO_EDIT"] = "1"
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
                tmp.chmod(0o644)
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
        print(flush=True)
        subprocess.run(
            [sys.executable, "-m", "controller", "status", "--status-dir", str(self.status_dir)],
            check=False,
        )
        print(flush=True)

    def _show_pods(self) -> None:
        _say("rkt list:")
        self._rkt("list", capture=False)
        print(flush=True)

    def _rkt(
        self, *args: str, capture: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run rkt on the demo's own `--dir` (and nothing else); a hang or a missing binary
        is a failed call (254, the reason on stderr), so cleanup always goes on."""
        argv = [self.rkt.rkt, f"--dir={self.rkt_dir}", *args]
        try:
            return subprocess.run(
                argv, capture_output=capture, text=True, env=self.env, timeout=timeout, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return subprocess.CompletedProcess(argv, 254, "", str(exc))

    def _pods(self) -> list[dict[str, Any]]:
        try:
            pods = json.loads(self._rkt("list", "--format=json").stdout or "null")
        except ValueError:
            return []
        return pods if isinstance(pods, list) else []

    def cleanup(self) -> None:
        """Stop the daemon if still up, then the demo's pods; on a real rkt also collect
        them (`rkt gc` of the demo's own `--dir`) and check that no mount is left."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if not (self.rkt_dir / "pods").exists():
            return
        running = self._running()
        if self.rkt.is_fake:
            if running:
                self._rkt("stop", "--force", *running)
                _say(f"cleaned up {len(running)} demo pod(s)")
            return
        if running:
            self._rkt("stop", *running, timeout=STOP_TIMEOUT_S)  # graceful first
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while self._running() and time.monotonic() < deadline:
                time.sleep(0.2)
            if self._running():
                self._rkt("stop", "--force", *self._running(), timeout=STOP_TIMEOUT_S)
        uuids = [p["name"] for p in self._pods()]
        self._rkt("gc", "--grace-period=0s")
        for uuid in uuids:  # a host pod stopped with --force leaves its (empty) propagate dir
            with contextlib.suppress(OSError):
                (NSPAWN_PROPAGATE / f"rkt-{uuid}").rmdir()
        left = mounts_below(self.root)
        unmount_below(self.root)
        _say(
            f"cleaned up: {len(running)} demo pod(s) stopped, `rkt gc` of {self.rkt_dir}: "
            f"{len(self._pods())} pod(s) left, "
            + (f"{len(left)} mount(s) lazily unmounted" if left else "no mount left")
        )

    def _running(self) -> list[str]:
        return [p["name"] for p in self._pods() if p.get("state") == "running"]


def mounts_below(path: Path) -> list[str]:
    """Return the mount points at or below `path`, deepest first (from /proc/self/mountinfo)."""
    prefix = str(path.resolve())
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def unmount_below(path: Path) -> None:
    """Lazily unmount whatever a pod left mounted at or below `path` (gc normally does it)."""
    for point in mounts_below(path):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["/bin/umount", "-l", point], capture_output=True, check=False, timeout=10
            )


def _say(text: str) -> None:
    print(f"==> {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
