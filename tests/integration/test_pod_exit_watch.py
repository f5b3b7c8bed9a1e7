"""Pod exits as events: the pidfd watcher, and the pid rkt gives for a pod on every backend.

`PodExitWatcher` is driven with real processes (a `sleep` child stands in for a pod's
rkt process); `RktCli.pod_pid` runs against the fake and real rkt (fly, host), from the
launcher that started the pod and, as after a controller restart, from `rkt status`.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controller import podwatch
from controller.config import Config
from controller.launchers import DetachedLauncher
from controller.model import PodUUID, SpecHash, TaskName, TaskSpec
from controller.podwatch import PodExitWatcher
from controller.runtime import RktCli, parse_status_pid
from tests.backends import Backend
from tests.integration.conftest import kill_launched

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "transcripts"
A, B = (
    PodUUID("aaaaaaaa-0000-4000-8000-000000000000"),
    PodUUID("bbbbbbbb-0000-4000-8000-000000000000"),
)

pytestmark = pytest.mark.skipif(not PodExitWatcher.supported(), reason="no pidfd on this kernel")


def _stdout(transcript: str) -> bytes:
    text = (TRANSCRIPTS / transcript).read_text()
    return text.split("--- stdout:\n", 1)[1].split("--- stderr:", 1)[0].encode()


@pytest.mark.parametrize(
    ("transcript", "pid"),
    [
        ("24-status-running.txt", True),
        ("120-status-after-kill9-of-rkt-run-fly.txt", True),
        ("142-status-host-after-kill9-of-rkt-run.txt", True),
        ("55-status-prepared.txt", False),
    ],
)
def test_pid_is_read_from_text_rkt_status(transcript: str, pid: bool) -> None:
    found = parse_status_pid(_stdout(transcript))
    assert (found is not None and found > 0) if pid else found is None


def test_pid_line_must_be_a_number() -> None:
    assert parse_status_pid(b"state=running\npid=\nexited=false\n") is None
    assert parse_status_pid(b"state=running\npid=12x\n") is None
    assert parse_status_pid(b"state=running\npid=4321\nexited=false\n") == 4321


class _Seen:
    def __init__(self) -> None:
        self.uuids: list[PodUUID] = []
        self.event = threading.Event()

    def __call__(self, uuid: PodUUID) -> None:
        self.uuids.append(uuid)
        self.event.set()

    def wait(self, uuid: PodUUID, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while uuid not in self.uuids:
            assert time.monotonic() < deadline, f"{uuid} not reported; saw {self.uuids}"
            self.event.wait(0.05)
            self.event.clear()


@pytest.fixture
def sleepers() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _watcher(seen: _Seen, pids: dict[PodUUID, int | None]) -> Iterator[PodExitWatcher]:
    watcher = PodExitWatcher(seen, pids.get)
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop()


def test_exit_of_a_tracked_pod_is_reported_once(
    sleepers: Callable[[], subprocess.Popen[bytes]],
) -> None:
    a, b = sleepers(), sleepers()
    seen = _Seen()
    for watcher in _watcher(seen, {A: a.pid, B: b.pid}):
        watcher.track([A, B])
        a.kill()
        seen.wait(A)
        watcher.track([A, B])  # the next pass still lists A running: no second report
        b.kill()
        seen.wait(B)
    assert seen.uuids == [A, B]


def test_pod_gone_before_its_pidfd_is_reported_at_once(
    sleepers: Callable[[], subprocess.Popen[bytes]],
) -> None:
    proc = sleepers()
    proc.kill()
    proc.wait()
    seen = _Seen()
    for watcher in _watcher(seen, {A: proc.pid}):
        watcher.track([A])
        seen.wait(A)


def test_untracked_pod_is_not_reported(sleepers: Callable[[], subprocess.Popen[bytes]]) -> None:
    a, b = sleepers(), sleepers()
    seen = _Seen()
    for watcher in _watcher(seen, {A: a.pid, B: b.pid}):
        watcher.track([A])
        watcher.track([B])  # A stopped being a running pod of ours
        a.kill()
        b.kill()
        seen.wait(B)
    assert seen.uuids == [B]


def test_pod_without_a_pid_is_asked_again_then_left_to_the_resync(
    sleepers: Callable[[], subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(podwatch, "RETRY_FIRST_S", 0.01)
    asked: list[PodUUID] = []
    booted = threading.Event()
    proc = sleepers()

    def resolve(uuid: PodUUID) -> int | None:
        asked.append(uuid)
        if len(asked) == 3:
            booted.set()
            return proc.pid  # the pid file appeared on the third look
        return None

    seen = _Seen()
    watcher = PodExitWatcher(seen, resolve)
    watcher.start()
    try:
        watcher.track([A])
        assert booted.wait(20)
        proc.kill()
        seen.wait(A)
        never = []

        def resolve_never(uuid: PodUUID) -> int | None:
            never.append(uuid)
            return None

        watcher._resolve = resolve_never
        watcher.track([A, B])
        deadline = time.monotonic() + 20
        while len(never) < podwatch.RETRY_TRIES and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert never == [B] * podwatch.RETRY_TRIES
    assert seen.uuids == [A]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- the pid of a real pod, on every backend --------------------------------------------


@pytest.fixture
def cfg(tmp_path: Path, backend: Backend) -> Iterator[Config]:
    rkt_dir = tmp_path / "rkt"
    rkt_dir.mkdir()
    yield Config(
        **backend.config(),
        rkt_dir=str(rkt_dir),
        rkt_local_config=str(tmp_path / "rkt-local-config"),
        desired_dir=str(tmp_path / "desired"),
        status_dir=str(tmp_path / "status"),
        state_dir=str(tmp_path / "state"),
        launcher="detached",
        command_timeout_s=30.0,
        prepare_timeout_s=60.0,
    )
    backend.cleanup(rkt_dir)


def test_pod_pid_ends_with_the_pod_also_after_a_restart(cfg: Config, backend: Backend) -> None:
    cli = RktCli(cfg, environ=backend.env())
    other = RktCli(cfg, environ=backend.env())  # a restarted rktctl: not the launcher's parent
    spec = TaskSpec(
        name=TaskName("web"),
        image=backend.image("web"),
        spec_hash=SpecHash("sha256-web"),
        command="/bin/sleep",
        args=("600",),
    )
    try:
        uuid = cli.prepare(spec)
        cli.run_prepared(spec, uuid, just_prepared=True)
        assert cli.pod_pid(uuid) is not None  # the launcher's own child
        deadline = time.monotonic() + 60
        while (pid := other.pod_pid(uuid)) is None:  # rkt status: after the boot window
            assert time.monotonic() < deadline, "rkt status never gave the pod's pid"
            time.sleep(0.1)
        seen = _Seen()
        watcher = PodExitWatcher(seen, other.pod_pid)
        watcher.start()
        try:
            watcher.track([uuid])
            assert other.request_stop(uuid)  # `rkt stop`: the pod's pid ends
            seen.wait(uuid, timeout=60)
            assert not _alive(pid)
        finally:
            watcher.stop()
    finally:
        if isinstance(cli.launcher, DetachedLauncher):
            kill_launched(cli.launcher)
