"""The exception hierarchy of rktctl.

    RktctlError                 code, exit_code (class attributes)
    ├── ConfigError             bad config file / env / flags (exit 78, EX_CONFIG)
    ├── ManifestError           a manifest is invalid: source + every message
    ├── RktError                anything about talking to rkt (retryable)
    │   ├── RktNotFound         the rkt binary is missing or not executable
    │   ├── RktTimeout          an rkt command did not finish in time
    │   ├── RktCommandFailed    rkt exited non-zero (argv, returncode, stderr tail)
    │   ├── RktOutputError      rkt's output is not what its contract documents
    │   ├── RktUnsupported      rkt is older than 1.27.0 or its version is unreadable
    │   ├── PodStarting         a pod is still in its boot window (transitional)
    │   └── AppNotFound         a pod's app is not running yet, to be signalled (transitional)
    ├── LaunchError             the launcher could not start a prepared pod
    ├── VolumeError             a volume's host directory is missing or cannot be made
    ├── StatusWriteError        a status/state file could not be written
    └── StateLocked             another rktctl holds the state dir's lock (exit 78)

Retryable vs terminal is a property of the class: `RktError`s are retried with
backoff; a `ManifestError` is terminal for that manifest's content and is only
looked at again when the file changes. A `transitional` error is no failure at all:
the action is deferred and retried on the next pass, without backoff.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

STDERR_TAIL_BYTES = 2048

# rkt ends a failed multi-pod command with a count, and stop adds a line per pod with the
# stage1 entrypoint's exit status: neither says why. The line before them does (CONTRACT
# §4.7: `error reading pid: ...`, `error sending terminated: ...`).
_SUMMARY_LINE = re.compile(
    r"failed to (?:stop|remove) \d+ pod|error stopping \S+: exit status \d+$"
)


def cause_line(stderr_tail: str) -> str:
    """Return the line of rkt's stderr that says why it failed (its last line that is
    not a per-pod or per-command summary), or "no output"."""
    lines = [line for line in stderr_tail.splitlines() if line.strip()]
    causes = [line for line in lines if not _SUMMARY_LINE.search(line)]
    return (causes or lines or ["no output"])[-1].strip()


class RktctlError(Exception):
    """Base class: every error rktctl raises on purpose."""

    code: ClassVar[str] = "rktctl_error"
    exit_code: ClassVar[int] = 1
    retryable: ClassVar[bool] = False
    transitional: ClassVar[bool] = False
    """The target is on its way to a state where the action works: retry soon, no backoff."""


class ConfigError(RktctlError):
    """Raised when the controller's own configuration is invalid."""

    code = "config_invalid"
    exit_code = 78

    def __init__(self, problems: Sequence[str], *, source: str = "config") -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


class ManifestError(RktctlError):
    """Raised when a manifest cannot be loaded; carries every problem found."""

    code = "manifest_invalid"

    def __init__(self, source: str, messages: Sequence[str]) -> None:
        self.source = source
        self.messages = tuple(messages)
        super().__init__("\n".join(self.messages) if self.messages else source)


class RktError(RktctlError):
    """Raised for any failure talking to rkt."""

    code = "rkt_error"
    retryable = True


class RktNotFound(RktError):
    """Raised when the rkt binary does not exist or cannot be executed."""

    code = "rkt_not_found"

    def __init__(self, binary: str, detail: str = "") -> None:
        self.binary = binary
        msg = f"rkt binary {binary!r} not found or not executable"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class RktTimeout(RktError):
    """Raised when an rkt command runs longer than its timeout."""

    code = "rkt_timeout"

    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        self.argv = tuple(argv)
        self.timeout = timeout
        super().__init__(f"rkt did not finish within {timeout:g}s: {' '.join(self.argv)}")


class RktCommandFailed(RktError):
    """Raised when rkt exits non-zero; keeps the last ~2 KiB of its stderr."""

    code = "rkt_command_failed"

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr_tail = stderr[-STDERR_TAIL_BYTES:].strip()
        sub = subcommand_of(self.argv)
        super().__init__(f"rkt {sub} exited {returncode}: {cause_line(self.stderr_tail)}")

    @property
    def subcommand(self) -> str:
        return subcommand_of(self.argv)


class RktOutputError(RktError):
    """Raised when rkt's output cannot be parsed as its contract documents."""

    code = "rkt_output_invalid"


class RktUnsupported(RktError):
    """Raised when `rkt version` is unreadable or older than the minimum (1.27.0)."""

    code = "rkt_unsupported"


class PodStarting(RktError):
    """Raised when stage1 has not written a running pod's pid yet, so rkt cannot stop it.

    Real rkt lists a pod as `running` before its pid file exists (host stage1: while
    systemd boots inside nspawn, up to ~1 s; fly: ~40 ms); `rkt stop` then exits 254
    with `error reading pid: open ppid: no such file or directory`.
    """

    code = "pod_starting"
    transitional = True

    def __init__(self, uuid: str, stderr: str) -> None:
        self.uuid = uuid
        self.stderr_tail = stderr[-STDERR_TAIL_BYTES:].strip()
        super().__init__(
            f"pod {uuid} is still starting (stage1 has written no pid yet), so rkt stop "
            "cannot reach it; retrying on the next pass"
        )


class AppNotFound(RktError):
    """Raised when a running pod's app process cannot be found to be signalled yet."""

    code = "app_not_found"
    transitional = True

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        super().__init__(
            f"pod {uuid} runs no app process rktctl can see yet (its stage1 is still "
            "starting it); the signal is sent on a later pass"
        )


class LaunchError(RktctlError):
    """Raised when a launcher cannot start `rkt run-prepared` for a pod."""

    code = "launch_failed"
    retryable = True


class VolumeError(RktctlError):
    """Raised when a volume's host path is missing or its directory cannot be created."""

    code = "volume_unavailable"
    retryable = True


class StatusWriteError(RktctlError):
    """Raised when a status or state file cannot be written atomically."""

    code = "status_write_failed"
    retryable = True


class StateLocked(RktctlError):
    """Raised when another process holds the state dir's single-instance lock.

    Exit 78 like a config error: two controllers on one state dir is a deployment
    mistake, and systemd must not restart into it (RestartPreventExitStatus=78).
    """

    code = "state_locked"
    exit_code = 78


def subcommand_of(argv: Sequence[str]) -> str:
    """Return the rkt subcommand of an argv: the first word after the global flags."""
    for word in argv[1:]:
        if not word.startswith("-"):
            return word
    return "?"
