"""sd_notify: tell systemd (Type=notify) about readiness, reloads, shutdown and liveness.

SHELL. The protocol is one AF_UNIX datagram of `KEY=VALUE` lines to the socket
named by $NOTIFY_SOCKET (a path, or an abstract socket when it starts with `@`).
Called by the daemon: `ready()` after the first complete observation,
`watchdog()` from the loop itself (never from a side thread, so a stuck loop
gets restarted), `reloading()`/`ready()` around SIGHUP, `stopping()` on SIGTERM.
Outside systemd every call is a no-op returning False. Never raises: a monitor
that is gone must not take the controller down. Removing NOTIFY_SOCKET and
WATCHDOG_* from children's environment is `runtime`'s job, not this module's.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


def notify(state: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1", or several lines) to $NOTIFY_SOCKET.

    Return True if the datagram was sent, False when not under systemd or on error.
    """
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    # Abstract socket: a leading NUL byte instead of the `@` systemd writes.
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(target)
            sock.sendall(state.encode("utf-8"))
    except OSError:
        return False
    return True


def ready() -> bool:
    """Tell systemd start-up (or a reload) is complete: `READY=1`."""
    return notify("READY=1")


def reloading() -> bool:
    """Tell systemd a reload began: `RELOADING=1` with the CLOCK_MONOTONIC time in µs.

    systemd >= 253 (Type=notify-reload) requires MONOTONIC_USEC; older ones ignore it.
    """
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")


def stopping() -> bool:
    """Tell systemd the daemon is shutting down: `STOPPING=1`."""
    return notify("STOPPING=1")


def watchdog() -> bool:
    """Ping the service watchdog: `WATCHDOG=1`."""
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    """Set the one-line status `systemctl status` shows: `STATUS=<text>` (newlines removed)."""
    return notify("STATUS=" + " ".join(text.split()))


def watchdog_interval(*, environ: Mapping[str, str] | None = None) -> float | None:
    """Return how often to call `watchdog()` in seconds (half of WatchdogSec), or None.

    None when $WATCHDOG_USEC is unset or invalid, or $WATCHDOG_PID names another process.
    """
    env = os.environ if environ is None else environ
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    # sd_watchdog_enabled(3) advises pinging at half the timeout.
    return usec / 2_000_000 if usec > 0 else None
