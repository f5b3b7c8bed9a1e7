"""Where a test's rkt comes from: the fake, or a real rkt 1.30 with the fly or host stage1.

TEST HELPER (never imported by rktctl). The fake is the fast loop; real rkt is the
judge. A test that takes the `backend` fixture (tests/conftest.py) runs once per
backend, with the same assertions:

- `fake`: tests/fakes/rkt, default stage1 (systemd-like: exit codes, own network).
- `real-fly`: a real rkt (RKTCTL_TEST_RKT, else `rkt` on PATH) with its compiled-in
  default stage1, fly: shares the host's network and pid namespace, records no exit
  codes, cannot forward ports.
- `real-host`: the same rkt with `--stage1-path=.../stage1-host.aci` (systemd-nspawn;
  own network namespace on CNI's `default` network; exit codes recorded).

rktctl reaches a real rkt through tests/fakes/rktproxy.py, which passes every call
through untouched but keeps the fake's call log and honours its fault rules, so a
scenario that injects a fault or asserts on what rkt was asked to do runs unchanged on
every backend. A test's own direct calls (`Backend.run`) go to the rkt itself.

A real backend skips, with the reason and the fix, when there is no real rkt, when not
root, or when its stage1 or a host package is missing (a developer's laptop). Under
RKTCTL_REQUIRE_REAL_RKT=1 (set by .ci/run) that is a failure instead, so CI can never
pass by skipping the judge.

Real pods run `tests_image()`: an ACI holding Debian's busybox-static with its applets
linked in `/bin` (`sleep`, `sh`, `httpd`, ...), so a manifest whose command is
`/bin/sleep` runs the same on every backend (the fake runs it on the host).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller import aci
from controller.demo import unmount_below
from tests.fakes import fakerkt

BACKEND_NAMES = ("fake", "real-fly", "real-host")
FAKE_RKT = Path(fakerkt.FAKE_RKT)
STAGE1_DIR = Path("/usr/lib/rkt/stage1-images")
HOST_STAGE1 = STAGE1_DIR / "stage1-host.aci"
FLY_STAGE1 = STAGE1_DIR / "stage1-fly.aci"
BUSYBOX = aci.BUSYBOX
# rkt's host stage1 asks systemd-nspawn to register with machined over D-Bus, which fails
# where PID 1 is not systemd (containers, CI sandboxes): this shim turns registration off.
NSPAWN_SHIM_DIR = Path(__file__).resolve().parent / "nspawn-shim"
IMAGE_NAME = "example.com/rktctl-test"
IMAGE_VERSION = "1.0.0"
STOP_TIMEOUT_S = 30.0


def real_rkt() -> str | None:
    """The real rkt binary to test against: RKTCTL_TEST_RKT, else `rkt` on PATH."""
    wanted = os.environ.get("RKTCTL_TEST_RKT") or "rkt"
    found = shutil.which(wanted)
    if found is None or Path(found).resolve() == FAKE_RKT.resolve():
        return None
    return found


def pid1_is_systemd() -> bool:
    try:
        return Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False


def unavailable(name: str) -> str | None:
    """Why backend `name` cannot run here (with the fix), or None if it can."""
    if name == "fake":
        return None if FAKE_RKT.exists() else "tests/fakes/rkt is missing"
    rkt = real_rkt()
    if rkt is None:
        return (
            "no real rkt: install it (as root: ../shared/rkt/dist/install) or set "
            "RKTCTL_TEST_RKT=/path/to/rkt"
        )
    if os.geteuid() != 0:
        return "a real rkt needs root (`cannot run as unprivileged user`)"
    if not BUSYBOX.exists():
        return "the test image needs Debian's busybox-static (apt-get install busybox-static)"
    stage1 = HOST_STAGE1 if name == "real-host" else FLY_STAGE1
    if not stage1.exists():
        return f"{stage1} is missing (../shared/rkt/dist/install puts it there)"
    if name == "real-host":
        for tool, package in (("systemd-nspawn", "systemd-container"), ("iptables", "iptables")):
            if shutil.which(tool, path=_sbin_path()) is None:
                return f"the host stage1 needs {tool} (apt-get install {package})"
    return None


def _sbin_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


@functools.cache
def tests_image() -> str:
    """Path of the busybox ACI real pods run (built once per test session)."""
    out = Path(tempfile.mkdtemp(prefix="rktctl-test-image-")) / "busybox.aci"
    return aci.busybox_aci(
        out,
        name=IMAGE_NAME,
        version=IMAGE_VERSION,
        exec_=("/bin/sleep", "3600"),
        ports={"8080-tcp": 8080, "6379-tcp": 6379},
    )


@functools.cache
def proxy_for(real: str) -> str:
    """An executable that runs `real` through tests/fakes/rktproxy.py (one per session)."""
    script = Path(tempfile.mkdtemp(prefix="rktctl-test-proxy-")) / "rkt"
    proxy = FAKE_RKT.parent / "rktproxy.py"
    command = " ".join(shlex.quote(str(p)) for p in (sys.executable, proxy, real))
    script.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    script.chmod(0o755)
    return str(script)


@dataclass(frozen=True)
class Backend:
    """One rkt to test against; every method takes the test's own `--dir`."""

    name: str
    rkt: str
    """The rkt rktctl runs: the fake, or the recording proxy in front of a real rkt."""
    direct: str
    """The rkt a test runs by hand (`run`): the fake, or the real rkt itself."""
    stage1: str | None = None
    """rktctl's `stage1` setting for this backend (None: rkt's default)."""
    path_prefix: tuple[str, ...] = ()
    """Directories first on the PATH of anything that runs this rkt (the nspawn shim)."""

    def __str__(self) -> str:
        return self.name

    @property
    def is_fake(self) -> bool:
        return self.name == "fake"

    @property
    def flavor(self) -> str:
        """`fake`, `fly` or `host`."""
        return self.name.removeprefix("real-")

    @property
    def default_flavor(self) -> str:
        """The flavor of the stage1 this rkt uses when none is named (compiled in)."""
        return "coreos" if self.is_fake else "fly"

    @property
    def records_exit_codes(self) -> bool:
        """Fly runs the app as the rkt process itself and writes no exit status."""
        return self.flavor != "fly"

    def recorded_exit_codes(self, code: int) -> tuple[int | None, ...]:
        """What rkt may record for an app that exited with `code`.

        Fly records nothing. The host stage1's reaper reads the app unit's
        ExecMainStatus while systemd shuts the pod down; on a loaded machine it has been
        seen to read 0 for apps that exited 3 or failed to exec (203), so 0 is possible.
        """
        if self.flavor == "fly":
            return (None,)
        return (code, 0) if self.flavor == "host" else (code,)

    @property
    def forwards_ports(self) -> bool:
        """Fly shares the host's network: `--port` is silently ignored (FINDINGS 2)."""
        return self.flavor != "fly"

    def skip_unless_fake(self, why: str) -> None:
        if not self.is_fake:
            pytest.skip(f"{self.name}: {why}")

    def skip_if(self, condition: bool, why: str) -> None:
        if condition:
            pytest.skip(f"{self.name}: {why}")

    def image(self, task: str) -> str:
        """The `image` a manifest of `task` names on this backend."""
        return f"example.com/{task}:1.0" if self.is_fake else tests_image()

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default: os.environ) with this interpreter and `path_prefix` first on PATH.

        The interpreter's directory spares every fake call a pyenv-style shim.
        """
        env = dict(os.environ if base is None else base)
        parts = [*self.path_prefix, str(Path(sys.executable).parent), env.get("PATH", "")]
        env["PATH"] = os.pathsep.join(p for p in parts if p)
        return env

    def config(self) -> dict[str, Any]:
        """The rktctl config settings that point it at this backend (besides `rkt_dir`)."""
        # The flavor of this rkt's compiled-in stage1: the fake's is coreos, real rkt's fly.
        settings: dict[str, Any] = {
            "rkt": self.rkt,
            "default_stage1_flavor": self.default_flavor,
            "port_range": list(worker_port_range()),
        }
        if self.stage1 is not None:
            settings["stage1"] = self.stage1
        return settings

    def stage1_flags(self) -> tuple[str, ...]:
        return () if self.stage1 is None else (f"--stage1-path={self.stage1}",)

    def run(
        self, rkt_dir: Path, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run this rkt with `--dir=rkt_dir` (not through rktctl)."""
        return subprocess.run(
            [self.direct, f"--dir={rkt_dir}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.env(),
            stdin=subprocess.DEVNULL,
        )

    def pods(self, rkt_dir: Path) -> list[dict[str, Any]]:
        """`rkt list --format=json`, `null` read as no pods."""
        out = self.run(rkt_dir, "list", "--format=json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout or "null") or []

    def prepare(self, rkt_dir: Path, *app_flags: str, image: str | None = None) -> str:
        """`prepare --quiet` a pod of `image` (default: this backend's test image) by hand."""
        out = self.run(
            rkt_dir,
            "--insecure-options=image",
            "prepare",
            "--quiet",
            *self.stage1_flags(),
            image or self.image("foreign"),
            *app_flags,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        uuids = [ln.strip() for ln in out.stdout.splitlines() if fakerkt.is_uuid(ln.strip())]
        assert uuids, out.stdout
        return uuids[-1]

    def run_detached(self, rkt_dir: Path, uuid: str, log_path: Path) -> subprocess.Popen[bytes]:
        """`rkt run-prepared UUID` in its own session (as rktctl's detached launcher does)."""
        with log_path.open("ab") as log:
            return subprocess.Popen(
                [self.direct, f"--dir={rkt_dir}", "--insecure-options=image", "run-prepared", uuid],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=self.env(),
                start_new_session=True,
            )

    def cleanup(self, rkt_dir: Path) -> None:
        """Stop every pod in `rkt_dir`, collect them and undo their mounts.

        Only pods of this test's own `--dir` are touched; processes are ended by PID.
        """
        if not (rkt_dir / "pods").exists():
            return
        if self.is_fake:
            from tests.integration.conftest import cleanup_rkt_dir

            cleanup_rkt_dir(rkt_dir)
            return
        try:
            pods = self.pods(rkt_dir)
        except (AssertionError, OSError, ValueError, subprocess.SubprocessError):
            pods = []
        running = [p["name"] for p in pods if p.get("state") == "running"]
        # A pod in its boot window (running, no pid file yet) cannot be stopped: wait it out.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and any(_pod_pid(rkt_dir, u) is None for u in running):
            time.sleep(0.05)
        pids = [pid for pid in (_pod_pid(rkt_dir, uuid) for uuid in running) if pid]
        for uuid in running:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self.run(rkt_dir, "stop", "--force", uuid, timeout=STOP_TIMEOUT_S)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in pids:  # a host pod whose `rkt run` was killed leaves nspawn behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.run(rkt_dir, "gc", "--grace-period=0s", timeout=120)
        unmount_below(rkt_dir)


def _pod_pid(rkt_dir: Path, uuid: str) -> int | None:
    """The pid rkt recorded for a running pod (fly: the app; host: systemd-nspawn)."""
    for name in ("ppid", "pid"):
        with contextlib.suppress(OSError, ValueError):
            return int((rkt_dir / "pods" / "run" / uuid / name).read_text().strip())
    return None


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its parent to reap it counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def worker_port_range() -> tuple[int, int]:
    """The dynamic host ports this pytest-xdist worker's daemons hand out.

    Daemons of tests on other workers run at the same time, and on the host network
    (fake, fly) two of them giving out the same port is a test's server failing to
    bind. So each worker (PYTEST_XDIST_WORKER=gw0, gw1, ...) gets 1,000 ports of its own.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    low = 20000 + 1000 * (index % 12)
    return low, low + 999


def free_port() -> int:
    """A TCP port nothing on this host listens on right now (fly and fake apps bind host ports)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_answer(port: int, *, timeout: float = 2.0) -> str | None:
    """The status line an HTTP server reached at 127.0.0.1:`port` answers, None if none does.

    A probe from the host, bounded by `timeout`: a forwarded port that accepts but
    reaches no app gives None too.
    """
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.settimeout(timeout)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = s.recv(64)
        if data.startswith(b"HTTP/1."):
            return data.split(b"\r\n", 1)[0].decode()
    return None


def make_backend(name: str) -> Backend:
    """The Backend called `name`; fails with the reason when it cannot run here."""
    reason = unavailable(name)
    if reason is not None:
        raise RuntimeError(reason)
    if name == "fake":
        return Backend(name=name, rkt=str(FAKE_RKT), direct=str(FAKE_RKT))
    rkt = real_rkt()
    assert rkt is not None
    if name == "real-fly":
        return Backend(name=name, rkt=proxy_for(rkt), direct=rkt)
    shim = () if pid1_is_systemd() else (str(NSPAWN_SHIM_DIR),)
    return Backend(
        name=name, rkt=proxy_for(rkt), direct=rkt, stage1=str(HOST_STAGE1), path_prefix=shim
    )


def backend_or_skip(name: str) -> Backend:
    """make_backend, or skip the test with the reason (fail under RKTCTL_REQUIRE_REAL_RKT)."""
    reason = unavailable(name)
    if reason is not None:
        if os.environ.get("RKTCTL_REQUIRE_REAL_RKT") == "1":
            pytest.fail(f"{name}: {reason} (RKTCTL_REQUIRE_REAL_RKT=1)")
        pytest.skip(f"{name}: {reason}")
    return make_backend(name)
