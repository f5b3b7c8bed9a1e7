"""Launchers: start `rkt run-prepared`, which stays in the foreground for the pod's life.

SHELL. `DetachedLauncher` starts it in a new session with its output in a per-pod log
file and reaps its children by polling; `SystemdRunLauncher` starts it as a transient
unit in `machine.slice` (the rktlet pattern) with its output in the journal. Either
way a restart of rktctl never restarts a pod. `RktCli` (runtime) picks one by
`cfg.launcher` and asks it for a pod's output and, for its own children, exit status
and pid.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from controller.config import Config
from controller.errors import LaunchError, RktError
from controller.model import PodOutput, PodUUID, TaskName
from controller.procs import execute, spawn_error

_MAX_REMEMBERED_EXITS = 256
_LOG_TAIL_BYTES = 2048
_JOURNAL_LINES = 20


class Launcher(Protocol):
    """Starts `rkt run-prepared` so that it outlives nothing but the pod itself."""

    def launch(
        self, argv: tuple[str, ...], *, uuid: PodUUID, task: TaskName, log_path: Path
    ) -> None: ...
    def output(self, *, uuid: PodUUID, task: TaskName, log_path: Path) -> PodOutput: ...


@runtime_checkable
class ReapingLauncher(Protocol):
    """A launcher whose children are rktctl's own processes (they must be reaped)."""

    def reap(self) -> None: ...
    def exit_status(self, uuid: PodUUID) -> int | None: ...
    def pid_of(self, uuid: PodUUID) -> int | None: ...


def read_log_tail(path: Path, limit: int = _LOG_TAIL_BYTES) -> tuple[bytes, bool]:
    """Return the last `limit` bytes of `path` and whether anything comes before them.

    Raise OSError if the file cannot be read.
    """
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        start = max(0, size - limit)
        handle.seek(start)
        return handle.read(limit), start > 0


class DetachedLauncher:
    """Start `rkt run-prepared` in a new session with its output in a per-pod log file.

    For hosts where systemd is not PID 1 (containers, CI, the tests). The child gets
    its own session (no signal from rktctl's terminal or process group reaches it),
    stdin from /dev/null, no inherited fds, the scrubbed env. The unit file must use
    `KillMode=process` so that restarting rktctl leaves the pods alone.

    Reaping: rktctl is the parent, so a pod whose rkt process exits stays a zombie
    until someone waits for it. No SIGCHLD handler is installed (it would race with
    `subprocess`'s own waitpid calls); instead the child pids are kept and polled
    (waitpid WNOHANG) on every launch and by `RktCli` on each list/stop, so at most the
    pods that exited since the previous reconcile pass are zombies, briefly. Exit
    statuses are remembered (bounded) so a launch that dies at once is reported.
    """

    def __init__(self, *, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._lock = threading.Lock()
        self._children: dict[PodUUID, int] = {}
        self._exited: dict[PodUUID, int] = {}

    def launch(
        self, argv: tuple[str, ...], *, uuid: PodUUID, task: TaskName, log_path: Path
    ) -> None:
        """Start `argv` detached; return at once. Raise LaunchError or RktNotFound."""
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise LaunchError(f"cannot open the log file of task {task}: {exc}") from exc
        try:
            # posix_spawn rather than Popen: the pod outlives this object by design, and a
            # Popen collected while its child runs warns (ResourceWarning) and owns the pid.
            pid = os.posix_spawnp(
                argv[0],
                list(argv),
                self._env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, fd, 1),
                    (os.POSIX_SPAWN_DUP2, fd, 2),
                ],
                setsid=True,
            )
        except OSError as exc:
            raise spawn_error(argv[0], exc) from exc
        finally:
            os.close(fd)
        with self._lock:
            self._reap_locked()
            self._children[uuid] = pid

    def output(self, *, uuid: PodUUID, task: TaskName, log_path: Path) -> PodOutput:
        """Return the tail of the pod's log file (`error` set when it cannot be read)."""
        try:
            tail, truncated = read_log_tail(log_path)
        except OSError as exc:
            return PodOutput(location=str(log_path), error=f"cannot read {log_path}: {exc}")
        return PodOutput(tail=tail, truncated=truncated, location=str(log_path))

    def reap(self) -> None:
        """Collect the exit status of every child that has exited (no zombies left)."""
        with self._lock:
            self._reap_locked()

    def exit_status(self, uuid: PodUUID) -> int | None:
        """Return the exit code of the rkt process of pod `uuid`, None while it runs."""
        with self._lock:
            self._reap_locked()
            return self._exited.get(uuid)

    def pid_of(self, uuid: PodUUID) -> int | None:
        """Return the pid of pod `uuid`'s rkt process while it is rktctl's live child.

        Not yet reaped means the pid cannot have been reused (a zombie keeps it).
        """
        with self._lock:
            return self._children.get(uuid)

    def pids(self) -> dict[PodUUID, int]:
        """Return the PIDs of the rkt processes still running, by pod (for tests/ops)."""
        with self._lock:
            self._reap_locked()
            return dict(self._children)

    def _reap_locked(self) -> None:
        for uuid, pid in list(self._children.items()):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its status is lost
                done, status = pid, 255 << 8
            if done:
                del self._children[uuid]
                self._exited[uuid] = os.waitstatus_to_exitcode(status)
        while len(self._exited) > _MAX_REMEMBERED_EXITS:
            del self._exited[next(iter(self._exited))]


class SystemdRunLauncher:
    """Start `rkt run-prepared` as a transient systemd unit in `machine.slice`.

    `systemd-run --unit=rktctl-<task>-<uuid8> --slice=machine.slice --collect --quiet
    -- <argv>` returns once the unit has started; systemd owns the process, so pods
    survive any restart of rktctl, and their output goes to the journal (`log_path`
    is unused; `output` asks journalctl). systemd starts the unit with its own
    environment, not ours.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        systemd_run: str = "systemd-run",
        journalctl: str = "journalctl",
        timeout_s: float = 30.0,
    ) -> None:
        self._env = dict(env)
        self._systemd_run = systemd_run
        self._journalctl = journalctl
        self._timeout_s = timeout_s

    def argv(self, argv: tuple[str, ...], *, uuid: PodUUID, task: TaskName) -> tuple[str, ...]:
        """Return the systemd-run argv that starts `argv` as the pod's unit."""
        binary = argv[0]
        if "/" not in binary:
            # A transient unit's ExecStart needs a path; resolve with the env rkt gets.
            binary = shutil.which(binary, path=self._env.get("PATH")) or binary
        return (
            self._systemd_run,
            f"--unit={unit_name(task, uuid)}",
            "--slice=machine.slice",
            "--collect",
            "--quiet",
            "--",
            binary,
            *argv[1:],
        )

    def launch(
        self, argv: tuple[str, ...], *, uuid: PodUUID, task: TaskName, log_path: Path
    ) -> None:
        """Start the unit; raise LaunchError if systemd-run fails or times out."""
        try:
            execute(self.argv(argv, uuid=uuid, task=task), timeout=self._timeout_s, env=self._env)
        except RktError as exc:
            raise LaunchError(f"systemd-run could not start the pod of task {task}: {exc}") from exc

    def output_argv(self, *, uuid: PodUUID, task: TaskName) -> tuple[str, ...]:
        """Return the journalctl argv that prints the end of the pod unit's output."""
        return (
            self._journalctl,
            f"--unit={unit_name(task, uuid)}.service",
            f"--lines={_JOURNAL_LINES}",
            "--output=cat",
            "--no-pager",
            "--quiet",
        )

    def output(self, *, uuid: PodUUID, task: TaskName, log_path: Path) -> PodOutput:
        """Return the last lines the pod's unit wrote to the journal (`error` on failure)."""
        argv = self.output_argv(uuid=uuid, task=task)
        location = " ".join(argv[:2])
        try:
            result = execute(argv, timeout=self._timeout_s, env=self._env)
        except RktError as exc:
            return PodOutput(location=location, error=f"cannot read the journal: {exc}")
        tail = result.stdout[-_LOG_TAIL_BYTES:]
        return PodOutput(tail=tail, truncated=len(tail) < len(result.stdout), location=location)


def unit_name(task: str, uuid: PodUUID) -> str:
    """Return the transient unit name of a pod: `rktctl-<task>-<uuid8>.service`-safe."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", task)
    return f"rktctl-{safe}-{uuid[:8]}"


def launcher_for(cfg: Config, env: Mapping[str, str]) -> Launcher:
    if cfg.launcher == "systemd-run":
        return SystemdRunLauncher(env=env)
    return DetachedLauncher(env=env)
