"""Fixtures for tests that run real rkt commands against the fake rkt in a tmp `--dir`.

- `fake_rkt`: path of `tests/fakes/rkt` (the test is skipped while it does not exist).
- `rkt_dir`: a fresh rkt data dir; on teardown every pod still running in it is
  force-stopped and its processes are killed by PID (never by name).
- `make_config(**overrides)` / `fake_config`: a Config pointing rktctl at the fake
  and at tmp desired/status/state dirs, with short timeouts.
- `rkt_cli` / `make_rkt_cli(cfg=None, **kwargs)`: RktCli instances on the fake whose
  detached rkt processes are killed and reaped on teardown.
Reusable by the reconciler and e2e tests: nothing here is specific to runtime tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.config import Config
from controller.launchers import DetachedLauncher
from controller.runtime import RktCli
from tests.backends import worker_port_range
from tests.fakes import fakerkt

FAKE_RKT = Path(fakerkt.FAKE_RKT)


@pytest.fixture
def fake_rkt() -> Path:
    """The fake rkt executable."""
    if not FAKE_RKT.exists():
        pytest.skip("tests/fakes/rkt is not in the tree yet")
    return FAKE_RKT


@pytest.fixture
def rkt_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty rkt data dir (`--dir`); pods left running in it are killed afterwards."""
    path = tmp_path / "rkt"
    path.mkdir()
    yield path
    cleanup_rkt_dir(path)


@pytest.fixture
def make_config(tmp_path: Path, rkt_dir: Path, fake_rkt: Path) -> Callable[..., Config]:
    """Return a factory of Configs for the fake rkt; keyword arguments override fields."""

    def make(**overrides: Any) -> Config:
        values: dict[str, Any] = {
            "rkt": str(fake_rkt),
            "default_stage1_flavor": "coreos",  # the fake's compiled-in stage1
            "rkt_dir": str(rkt_dir),
            # `rkt trust` writes keys under --local-config (default /etc/rkt): keep them here.
            "rkt_local_config": str(tmp_path / "rkt-local-config"),
            "desired_dir": str(tmp_path / "desired"),
            "status_dir": str(tmp_path / "status"),
            "state_dir": str(tmp_path / "state"),
            "launcher": "detached",
            "port_range": worker_port_range(),
            "command_timeout_s": 20.0,
            "prepare_timeout_s": 20.0,
            # These tests are about removing a finished pod; retention (keeping the last
            # exited pods, the default) has tests of its own that set it.
            "exited_pods_keep": 0,
        }
        values.update(overrides)
        return Config(**values)

    return make


@pytest.fixture
def fake_config(make_config: Callable[..., Config]) -> Config:
    """The default Config for the fake rkt."""
    return make_config()


@pytest.fixture
def make_rkt_cli(fake_config: Config) -> Iterator[Callable[..., RktCli]]:
    """Return a factory of RktCli (default config: `fake_config`; keywords go to RktCli).

    The detached `rkt run-prepared` children of every RktCli it made die with the test.
    """
    made: list[RktCli] = []

    def make(cfg: Config | None = None, **kwargs: Any) -> RktCli:
        cli = RktCli(cfg or fake_config, **kwargs)
        made.append(cli)
        return cli

    yield make
    for cli in made:
        if isinstance(cli.launcher, DetachedLauncher):
            kill_launched(cli.launcher)


@pytest.fixture
def rkt_cli(make_rkt_cli: Callable[..., RktCli]) -> RktCli:
    """An RktCli on the fake; its detached `rkt run-prepared` children die with the test."""
    return make_rkt_cli()


def kill_launched(launcher: DetachedLauncher, *, timeout: float = 10.0) -> None:
    """SIGKILL every rkt process `launcher` started that still runs, and reap them all."""
    for pid in launcher.pids().values():
        _kill_pid(pid)
    deadline = time.monotonic() + timeout
    while launcher.pids() and time.monotonic() < deadline:
        time.sleep(0.02)


def fake_rkt_run(
    rkt_dir: Path, *args: str, timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    """Run the fake rkt directly (not through rktctl) with `--dir=rkt_dir`."""
    return subprocess.run(
        [str(FAKE_RKT), f"--dir={rkt_dir}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def wait_for_an_exited_pod(rkt_dir: Path, attempts: int = 50) -> None:
    """Ask the fake rkt until it lists an exited pod (at most `attempts` lists)."""
    for _ in range(attempts):
        out = fake_rkt_run(rkt_dir, "list", "--format=json")
        if any(p["state"] == "exited" for p in json.loads(out.stdout) or []):
            return


def cleanup_rkt_dir(rkt_dir: Path) -> None:
    """Force-stop every running pod in `rkt_dir` and kill its processes by PID.

    Only pods the fake still reports as running are touched, so a recycled PID of a
    long-gone pod is never signalled. Safe to call on a dir the fake never used.
    """
    if not FAKE_RKT.exists() or not (rkt_dir / "pods").exists():
        return
    try:
        listed = fake_rkt_run(rkt_dir, "list", "--format=json")
        pods = json.loads(listed.stdout or "null") or []
    except (OSError, ValueError, subprocess.SubprocessError):
        pods = []
    for pod in pods:
        if not isinstance(pod, dict) or pod.get("state") != "running":
            continue
        uuid = str(pod.get("name"))
        pid = fakerkt.supervisor_pid(rkt_dir, uuid)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            fake_rkt_run(rkt_dir, "stop", "--force", uuid, timeout=10)
        if pid is not None:
            _kill_pid(pid)


def _kill_pid(pid: int) -> None:
    """SIGKILL `pid` and, if it leads its own process group, the whole group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid and pid != os.getpgrp():
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
