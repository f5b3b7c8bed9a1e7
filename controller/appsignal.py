"""Find the app of a running pod from the host, and send it a signal (`spec.reload`).

SHELL: reads /proc and sends signals. rkt has no verb for this, and `rkt enter ... kill
-HUP 1` is wrong on both stage1s tried: with fly, PID 1 in `enter` is the host's init;
with host, it is the pod's systemd. What works, seen on rkt 1.30 by hand:

- fly: the pod's pid (`rkt status`) is the app itself (FINDINGS 3). The fake's fly pid
  is its supervisor, which passes the signal on to the app, as good as the same.
- nspawn stage1s (host, coreos, src): the pod's pid is systemd-nspawn; below it run the
  pod's systemd, journald and the app, and only the app's processes carry AC_APP_NAME
  in their environment. The app's main process is the topmost of them.
- kvm: the apps run inside a virtual machine; the host has nothing to signal (the
  manifest rules refuse `reload` with it).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

PROC = Path("/proc")
_APP_MARKER = b"AC_APP_NAME="


def signal_number(name: str) -> int:
    """The number of signal `name` ("HUP"); KeyError for a name that is not a signal."""
    return int(signal.Signals[f"SIG{name}"])


def app_pids(pod_pid: int, *, fly: bool, proc: Path = PROC) -> list[int]:
    """Return the pids of the main processes of the apps of the pod whose process is
    `pod_pid`: [pod_pid] for fly, else the topmost AC_APP_NAME processes below it
    (empty while the pod's systemd has not started the app yet)."""
    if fly:
        return [pod_pid] if (proc / str(pod_pid)).exists() else []
    children = _children(proc)
    found: list[int] = []
    below = list(children.get(pod_pid, ()))
    while below:
        pid = below.pop()
        if _is_app(proc, pid):
            found.append(pid)  # its own children are the app's: not searched
        else:
            below.extend(children.get(pid, ()))
    return sorted(found)


def send(pids: list[int], signum: int) -> None:
    """Send `signum` to each of `pids`; one that has just ended is skipped."""
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            continue


def _children(proc: Path) -> dict[int, list[int]]:
    by_parent: dict[int, list[int]] = {}
    for pid, ppid in _parents(proc):
        by_parent.setdefault(ppid, []).append(pid)
    return by_parent


def _parents(proc: Path) -> Iterator[tuple[int, int]]:
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:  # ended meanwhile
            continue
        # `pid (comm) state ppid ...`: comm may hold spaces and ')', so split at the last.
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) > 1 and fields[1].isdigit():
            yield int(entry.name), int(fields[1])


def _is_app(proc: Path, pid: int) -> bool:
    try:
        environ = (proc / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return any(item.startswith(_APP_MARKER) for item in environ.split(b"\0"))
