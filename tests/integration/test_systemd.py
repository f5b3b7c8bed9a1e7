"""sd_notify against a real AF_UNIX datagram socket, as systemd listens for it."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller import systemd


@pytest.fixture
def notify_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A bound datagram socket in a short tmp dir (sun_path is limited to 108 bytes)."""
    directory = tempfile.mkdtemp(prefix="sdn")
    path = str(Path(directory) / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    try:
        yield sock
    finally:
        sock.close()
        shutil.rmtree(directory)


@pytest.mark.parametrize(
    ("call", "datagram"),
    [
        pytest.param(systemd.ready, b"READY=1", id="ready"),
        pytest.param(systemd.stopping, b"STOPPING=1", id="stopping"),
        pytest.param(systemd.watchdog, b"WATCHDOG=1", id="watchdog"),
        pytest.param(lambda: systemd.status("3 tasks,\n1 invalid"), b"STATUS=3 tasks, 1 invalid",
                     id="status-one-line"),
        pytest.param(lambda: systemd.notify("READY=1\nSTATUS=up"), b"READY=1\nSTATUS=up",
                     id="several-lines"),
    ],
)  # fmt: skip
def test_sends_exact_datagram(notify_socket: socket.socket, call: object, datagram: bytes) -> None:
    assert callable(call)
    assert call() is True
    assert notify_socket.recv(4096) == datagram


def test_reloading_carries_monotonic_usec(notify_socket: socket.socket) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert systemd.reloading() is True
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    match = re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=(\d+)", notify_socket.recv(4096))
    assert match is not None
    assert before <= int(match.group(1)) <= after


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"rktctl-test-{os.getpid()}-{secrets.token_hex(4)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.ready() is True
        assert sock.recv(4096) == b"READY=1"


@pytest.mark.parametrize(
    "value", [pytest.param(None, id="unset"), pytest.param("", id="empty"),
              pytest.param("relative/sock", id="relative")],
)  # fmt: skip
def test_no_op_without_a_usable_socket(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    else:
        monkeypatch.setenv("NOTIFY_SOCKET", value)
    assert systemd.ready() is False


def test_gone_socket_is_not_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert systemd.watchdog() is False


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        pytest.param({}, None, id="unset"),
        pytest.param({"WATCHDOG_USEC": "60000000"}, 30.0, id="half-of-watchdogsec"),
        pytest.param({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "<self>"}, 30.0, id="our-pid"),
        pytest.param({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, None, id="other-pid"),
        pytest.param({"WATCHDOG_USEC": "soon"}, None, id="garbage"),
        pytest.param({"WATCHDOG_USEC": "0"}, None, id="zero"),
    ],
)  # fmt: skip
def test_watchdog_interval(env: dict[str, str], interval: float | None) -> None:
    env = {k: str(os.getpid()) if v == "<self>" else v for k, v in env.items()}
    assert systemd.watchdog_interval(environ=env) == interval
