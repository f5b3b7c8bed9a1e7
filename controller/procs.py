"""Run one command safely and translate what happens into typed results.

SHELL. The only module that imports `subprocess`. Every command (rkt, systemd-run,
journalctl) is an argv tuple (never a shell string) run with stdin closed, a
timeout, a caller-given environment (`clean_env`) and its own process group,
through one translation point (`execute`) that turns failures into RktNotFound /
RktTimeout / RktCommandFailed. Nothing from `subprocess` escapes this module; what to
run is `rktargs`'s business and what it means is `runtime`'s.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from controller import rktargs
from controller.errors import RktCommandFailed, RktError, RktNotFound, RktTimeout

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Variables rkt and stage1 legitimately need from the controller's environment: PATH so
# stage1 finds iptables (hashicorp/nomad#1291), locale and time zone, proxies and CA
# paths for image fetches. Everything else stays behind, notably NOTIFY_SOCKET,
# WATCHDOG_USEC/WATCHDOG_PID (a child must never talk to systemd as rktctl) and RKTCTL_*.
_ENV_KEEP = frozenset(
    {
        "PATH", "HOME", "TMPDIR", "LANG", "LANGUAGE", "TZ",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "SSL_CERT_FILE", "SSL_CERT_DIR",
    }
)  # fmt: skip


def clean_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the environment rkt runs with: an allow-list copy of `environ`.

    Keeps PATH (a sane default when missing), HOME, TMPDIR, LANG/LC_*, TZ, proxy and
    CA variables; drops everything else (NOTIFY_SOCKET, WATCHDOG_*, RKTCTL_*, ...).
    A task's env never travels this way: it reaches the pod only as `--set-env`.
    """
    env = {k: v for k, v in environ.items() if k in _ENV_KEEP or k.startswith("LC_")}
    env.setdefault("PATH", DEFAULT_PATH)
    return env


@dataclass(frozen=True, slots=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    def says(self, text: str) -> bool:
        return text.encode() in self.stdout or text.encode() in self.stderr


Tolerate = Callable[[Completed], bool]


def execute(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str], tolerate: Tolerate | None = None
) -> Completed:
    """Run `argv` and return its result; the one place that translates failures.

    Raise RktNotFound if the binary cannot be executed, RktTimeout (after killing the
    child's whole process group) if it runs past `timeout`, RktCommandFailed on a
    non-zero exit unless `tolerate(result)` says the failure means success.
    `subprocess.run` is not used because on timeout it kills only the direct child;
    rkt (and the fake) may have children of their own that must not be leaked.
    """
    argv = tuple(argv)
    shown = rktargs.redact_argv(argv)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            close_fds=True,
            process_group=0,
        )
    except OSError as exc:
        raise spawn_error(argv[0], exc) from exc
    with proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            kill_group(proc)
            raise RktTimeout(shown, timeout) from exc
    result = Completed(argv, proc.returncode, stdout, stderr)
    if result.returncode != 0 and not (tolerate is not None and tolerate(result)):
        raise RktCommandFailed(shown, result.returncode, stderr.decode("utf-8", errors="replace"))
    return result


def spawn_error(binary: str, exc: OSError) -> RktError:
    if isinstance(exc, (FileNotFoundError, PermissionError, NotADirectoryError)) or exc.errno in (
        errno.ENOEXEC,
        errno.ELOOP,
    ):
        return RktNotFound(binary, str(exc))
    return RktError(f"cannot start {binary!r}: {exc}")


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The child leads its own process group (process_group=0): kill all of it, then reap.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()
