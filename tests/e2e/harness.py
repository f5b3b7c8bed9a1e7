"""Drive `rktctl run` as a subprocess against one backend's rkt, in temp directories.

The backend (tests/backends.py) is the fake or a real rkt with the fly or host stage1;
scenarios are written once and run on each. The harness never sleeps to "let things
settle": every wait is `wait_for(predicate)` with a deadline, and a timeout reports the
last value seen. Teardown kills the daemon by PID and stops, collects and unmounts
every pod left in the test's rkt dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.backends import Backend, make_backend
from tests.fakes import fakerkt

REPO = Path(__file__).resolve().parents[2]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    pass


def rkt_pids(rkt_dir: Path, subcommand: str) -> list[int]:
    """PIDs of rkt processes running `subcommand` on this test's rkt dir (the call log only
    has finished ones)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError, ValueError):
            argv = [a.decode() for a in cmdline.read_bytes().split(b"\0") if a]
            if subcommand in argv and f"--dir={rkt_dir}" in argv:
                found.append(int(cmdline.parent.name))
    return found


def wait_for(
    predicate: Callable[[], T],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `predicate` until it returns a truthy value; return it. Fail with the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except (OSError, ValueError) as exc:  # files mid-write, pods mid-transition
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"timed out after {timeout}s waiting for {what}; last value: {last!r}"
            )
        time.sleep(interval)


def pod_task(pod: dict[str, Any]) -> str | None:
    apps = pod.get("apps") or [{}]
    return (apps[0].get("user_annotations") or {}).get("rktctl.io/task")


def manifest_yaml(
    name: str,
    *,
    image: str | None = None,
    command: str = "/bin/sleep",
    args: tuple[str, ...] = ("3600",),
    env: dict[str, str] | None = None,
    extra_spec: str = "",
) -> str:
    env_lines = "".join(f'\n    {k}: "{v}"' for k, v in (env or {}).items())
    env_block = f"\n  env:{env_lines}" if env else ""
    arg_list = ", ".join(json.dumps(a) for a in args)
    return (
        "apiVersion: rktctl.io/v1\nkind: Task\n"
        f"metadata:\n  name: {name}\n"
        "spec:\n  config:\n"
        f"    image: {image or f'example.com/{name}:1.0'}\n"
        f"    command: {command}\n"
        f"    args: [{arg_list}]\n"
        f"  kill_timeout: 5s{env_block}\n{extra_spec}"
    )


@dataclass
class Harness:
    root: Path
    backend: Backend = field(default_factory=lambda: make_backend("fake"))
    desired: Path = field(init=False)
    rkt_dir: Path = field(init=False)
    status_dir: Path = field(init=False)
    state_dir: Path = field(init=False)
    config_path: Path = field(init=False)
    log_path: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.desired = self.root / "desired"
        self.rkt_dir = self.root / "rkt"
        self.status_dir = self.root / "status"
        self.state_dir = self.root / "state"
        self.config_path = self.root / "config.toml"
        self.log_path = self.root / "daemon.log"
        for d in (self.desired, self.rkt_dir):
            d.mkdir(parents=True, exist_ok=True)

    # --- config and process ------------------------------------------------------------

    def write_config(self, **settings: Any) -> None:
        base: dict[str, Any] = {
            "desired_dir": str(self.desired),
            "status_dir": str(self.status_dir),
            "state_dir": str(self.state_dir),
            **self.backend.config(),
            "rkt_dir": str(self.rkt_dir),
            "launcher": "detached",
            "resync_interval_s": 2.0,
            "debounce_s": 0.1,
            "backoff_base_s": 0.2,
            "backoff_cap_s": 2.0,
            "command_timeout_s": 20.0,
            "gc_interval_s": 0.0,
            # The scenarios assert that a finished pod is removed; retention's own tests
            # (test_exited_pod_retention.py) set the default of 2 back.
            "exited_pods_keep": 0,
            "log_level": "debug",
            "log_format": "json",
        }
        base.update(self.settings)
        base.update(settings)
        self.settings.update(settings)
        lines = []
        for key, value in base.items():
            if isinstance(value, dict):
                continue
            lines.append(f"{key} = {json.dumps(value)}")
        for key, value in base.items():
            if isinstance(value, dict):
                lines.append(f"[{key}]")
                lines.extend(f"{k} = {json.dumps(v)}" for k, v in value.items())
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, *, extra_env: dict[str, str] | None = None, **settings: Any) -> None:
        if not self.config_path.exists() or settings:
            self.write_config(**settings)
        env = self.backend.env({k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")})
        env.update(extra_env or {})
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controller", "run", "--config", str(self.config_path)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.root,
        )
        log.close()

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signum)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM the daemon and return its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    # --- observing ------------------------------------------------------------------

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        if not self.log_path.exists():
            return found
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                found.append(event)
        return found

    def log_digest(self, limit: int = 80) -> str:
        """The daemon log's last `limit` events, one short line each (rkt calls, pods,
        tasks, warnings), for a failed test's report."""
        lines = []
        for event in self.events():
            argv = event.get("argv")
            what = (
                " ".join(a for a in argv[1:] if not a.startswith("--dir="))[:160]
                if isinstance(argv, list)
                else ""
            )
            fields = (
                str(event.get("timestamp", ""))[11:23],
                str(event.get("level", "")),
                str(event.get("event", "")),
                str(event.get("task", "")),
                str(event.get("pod_uuid", ""))[:8],
                what,
                f"exit={event['returncode']}" if "returncode" in event else "",
                str(event.get("error") or event.get("reason") or "")[:200],
            )
            lines.append(" ".join(f for f in fields if f))
        return "\n".join(lines[-limit:])

    def calls(self, subcommand: str | None = None) -> list[list[str]]:
        """argv (after the program) of every finished rkt call, or of one subcommand.

        From the fake's call log; a real rkt is reached through tests/fakes/rktproxy.py,
        which keeps the same log.
        """
        return [call["argv"] for call in fakerkt.calls(self.rkt_dir, subcommand)]

    def prepare_times(self, task: str) -> list[float]:
        """When rkt was asked to prepare a pod of `task`, oldest first (epoch seconds)."""
        stamp = f"--user-annotation=rktctl.io/task={task}"
        return [float(c["t"]) for c in fakerkt.calls(self.rkt_dir, "prepare") if stamp in c["argv"]]

    def add_fault(self, **rule: Any) -> None:
        fakerkt.add_fault(self.rkt_dir, **rule)

    def manifest(self, name: str, **kw: Any) -> str:
        """manifest_yaml() with this backend's image."""
        return manifest_yaml(name, image=self.backend.image(name), **kw)

    def list_pods(self) -> list[dict[str, Any]]:
        return self.backend.pods(self.rkt_dir)

    def pods_of(self, task: str, *states: str) -> list[dict[str, Any]]:
        wanted = set(states) or {"running"}
        return [p for p in self.list_pods() if pod_task(p) == task and p["state"] in wanted]

    def task_status(self, name: str) -> dict[str, Any] | None:
        path = self.status_dir / "tasks" / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def write_manifest(self, filename: str, text: str) -> Path:
        """Write atomically (temp file + rename), as editors and GitOps tools do."""
        path = self.desired / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp"
        tmp.write_text(text)
        tmp.rename(path)
        return path

    def running(self, task: str) -> list[dict[str, Any]]:
        return self.pods_of(task, "running")

    def cleanup(self) -> None:
        self.kill()
        self.backend.cleanup(self.rkt_dir)


@contextlib.contextmanager
def harness(tmp_path: Path, backend: Backend | None = None) -> Iterator[Harness]:
    h = Harness(tmp_path, backend or make_backend("fake"))
    try:
        yield h
    finally:
        h.cleanup()
