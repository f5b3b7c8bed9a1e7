"""The shell pieces of `spec.reload`: finding the app in /proc, digests, the file watch."""

from __future__ import annotations

import os
from pathlib import Path

from controller import appsignal
from controller.reloadfiles import FileDigests
from controller.reloadwatch import ReloadFileWatch


def _proc(root: Path, pid: int, ppid: int, comm: str, *, app: bool) -> None:
    entry = root / str(pid)
    entry.mkdir()
    (entry / "stat").write_bytes(f"{pid} ({comm}) S {ppid} {pid} {pid} 0".encode())
    env = [b"PATH=/bin", *([b"AC_APP_NAME=web"] if app else [])]
    (entry / "environ").write_bytes(b"\0".join(env) + b"\0")


def test_the_app_is_the_topmost_ac_app_name_process_below_the_pod(tmp_path: Path) -> None:
    # nspawn (10) -> systemd (11) -> journald (12), app sh (13) -> its sleep (14)
    _proc(tmp_path, 10, 1, "systemd-nspawn", app=False)
    _proc(tmp_path, 11, 10, "systemd", app=False)
    _proc(tmp_path, 12, 11, "systemd-journal", app=False)
    _proc(tmp_path, 13, 11, "sh", app=True)
    _proc(tmp_path, 14, 13, "sleep", app=True)
    _proc(tmp_path, 20, 1, "other) app", app=True)  # another pod's app; ')' in comm
    assert appsignal.app_pids(10, fly=False, proc=tmp_path) == [13]
    assert appsignal.app_pids(11, fly=False, proc=tmp_path) == [13]
    assert appsignal.app_pids(12, fly=False, proc=tmp_path) == []  # not started yet
    # fly: the pod's own process is the app; a gone pod has none.
    assert appsignal.app_pids(10, fly=True, proc=tmp_path) == [10]
    assert appsignal.app_pids(99, fly=True, proc=tmp_path) == []


def test_signal_names_map_to_numbers() -> None:
    import signal

    assert appsignal.signal_number("HUP") == signal.SIGHUP
    assert appsignal.signal_number("USR2") == signal.SIGUSR2


def test_digests_change_with_content_and_are_reused_while_stat_is_unchanged(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "app.conf"
    conf.write_text("v1")
    digests = FileDigests()
    first = digests.digest(str(conf))
    os.utime(conf, ns=(1, 1))  # touched: read again, and the same content digests alike
    assert digests.digest(str(conf)) == first
    conf.write_text("v2")
    assert digests.digest(str(conf)) != first
    conf.unlink()
    assert digests.digest(str(conf)) == "missing"
    assert digests.digest(str(tmp_path)).startswith("dir:")


def test_the_watch_reports_a_changed_file_once_and_nothing_for_a_quiet_one(
    tmp_path: Path,
) -> None:
    conf, other = tmp_path / "app.conf", tmp_path / "other.conf"
    conf.write_text("v1")
    other.write_text("x")
    seen: list[str] = []
    watch = ReloadFileWatch(lambda: frozenset({str(conf), str(other)}), seen.append)
    assert watch.poll() == []  # the first look only learns the files
    tmp = tmp_path / ".app.conf.tmp"
    tmp.write_text("v2")
    tmp.rename(conf)
    assert watch.poll() == [str(conf)] and seen == [str(conf)]
    assert watch.poll() == []
