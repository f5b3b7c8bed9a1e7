"""Drive `rktctl run` as a subprocess against the fake rkt, in temp directories.

The harness never sleeps to "let things settle": every wait is `wait_for(predicate)`
with a deadline, and a timeout reports the last value seen. Teardown kills the
daemon by PID and force-stops every pod left in the test's rkt dir.
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

from tests.fakes import fakerkt
from tests.integration.conftest import cleanup_rkt_dir, fake_rkt_run

REPO = Path(__file__).resolve().parents[2]
FAKE_RKT = REPO / "tests" / "fakes" / "rkt"

T = TypeVar("T")


class WaitTimeout(AssertionError):
    pass


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


def list_pods(rkt_dir: Path) -> list[dict[str, Any]]:
    out = fake_rkt_run(rkt_dir, "list", "--format=json")
    assert out.returncode == 0, out.stderr
    pods = json.loads(out.stdout)
    return pods or []


def pod_task(pod: dict[str, Any]) -> str | None:
    apps = pod.get("apps") or [{}]
    return (apps[0].get("user_annotations") or {}).get("rktctl.io/task")


def pods_of(rkt_dir: Path, task: str, *states: str) -> list[dict[str, Any]]:
    wanted = set(states) or {"running"}
    return [p for p in list_pods(rkt_dir) if pod_task(p) == task and p["state"] in wanted]


def manifest_yaml(
    name: str,
    *,
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
        f"    image: example.com/{name}:1.0\n"
        f"    command: {command}\n"
        f"    args: [{arg_list}]\n"
        f"  kill_timeout: 5s{env_block}\n{extra_spec}"
    )


@dataclass
class Harness:
    root: Path
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
            "rkt": str(FAKE_RKT),
            "rkt_dir": str(self.rkt_dir),
            "launcher": "detached",
            "resync_interval_s": 2.0,
            "debounce_s": 0.1,
            "backoff_base_s": 0.2,
            "backoff_cap_s": 2.0,
            "command_timeout_s": 20.0,
            "gc_interval_s": 0.0,
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
        env = {k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")}
        # The fake rkt is `#!/usr/bin/env python3`: this interpreter's directory first on PATH
        # (absolute: the daemon runs in another cwd) spares every rkt call a pyenv-style shim.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
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

    def calls(self, subcommand: str | None = None) -> list[list[str]]:
        """argv (after the program) of every finished fake rkt call, or of one subcommand."""
        return [call["argv"] for call in fakerkt.calls(self.rkt_dir, subcommand)]

    def prepare_times(self, task: str) -> list[float]:
        """When the fake rkt was asked to prepare a pod of `task`, oldest first."""
        stamp = f"--user-annotation=rktctl.io/task={task}"
        return [float(c["t"]) for c in fakerkt.calls(self.rkt_dir, "prepare") if stamp in c["argv"]]

    def add_fault(self, **rule: Any) -> None:
        fakerkt.add_fault(self.rkt_dir, **rule)

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
        return pods_of(self.rkt_dir, task, "running")

    def cleanup(self) -> None:
        self.kill()
        cleanup_rkt_dir(self.rkt_dir)


@contextlib.contextmanager
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        h.cleanup()
