"""The watcher: real inotify events in a temp directory, no parsing, only triggers."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.watch import DesiredWatcher, is_relevant


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.event = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, path: str) -> None:
        with self.lock:
            self.paths.append(path)
        self.event.set()

    def wait(self, timeout: float = 5.0) -> bool:
        ok = self.event.wait(timeout)
        self.event.clear()
        return ok

    def drain(self) -> list[str]:
        with self.lock:
            paths, self.paths = self.paths, []
        self.event.clear()
        return paths


def _quiet(recorder: Recorder, seconds: float = 0.3) -> list[str]:
    """Collect what arrives within `seconds` (used to prove that nothing arrives)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        recorder.event.wait(deadline - time.monotonic())
    return recorder.drain()


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, Recorder, DesiredWatcher]]:
    desired = tmp_path / "desired"
    desired.mkdir()
    recorder = Recorder()
    watcher = DesiredWatcher(str(desired), recorder)
    watcher.start()
    try:
        yield desired, recorder, watcher
    finally:
        watcher.stop()


@pytest.mark.parametrize(
    ("path", "is_dir", "relevant"),
    [
        ("/d/web.yaml", False, True),
        ("/d/web.yml", False, True),
        ("/d/sub/web.yaml", False, True),
        ("/d/.web.yaml.swp", False, False),
        ("/d/web.yaml~", False, False),
        ("/d/4913", False, False),
        ("/d/#web.yaml#", False, False),
        ("/d/web.yaml.dpkg-new", False, False),
        ("/d/README.md", False, False),
        ("/d/.git/index", False, False),
        ("/d/sub", True, True),
        ("/d/.hidden", True, False),
    ],
    ids=str,
)
def test_is_relevant_selects_manifests_and_directories(
    path: str, is_dir: bool, relevant: bool
) -> None:
    assert is_relevant(path, is_directory=is_dir) is relevant


def test_manifest_write_triggers(watched: tuple[Path, Recorder, DesiredWatcher]) -> None:
    desired, recorder, _ = watched
    (desired / "web.yaml").write_text("x")
    assert recorder.wait()
    assert any(p.endswith("web.yaml") for p in recorder.drain())


def test_editor_temp_files_do_not_trigger(watched: tuple[Path, Recorder, DesiredWatcher]) -> None:
    desired, recorder, _ = watched
    (desired / ".web.yaml.swp").write_text("x")
    (desired / "web.yaml~").write_text("x")
    (desired / "4913").write_text("x")
    (desired / "notes.txt").write_text("x")
    assert _quiet(recorder) == []


def test_atomic_rename_into_place_triggers(watched: tuple[Path, Recorder, DesiredWatcher]) -> None:
    desired, recorder, _ = watched
    tmp = desired / ".web.yaml.tmp"
    tmp.write_text("x")
    os.rename(tmp, desired / "web.yaml")
    assert recorder.wait()
    assert any(p.endswith("web.yaml") for p in recorder.drain())


def test_subdirectory_changes_trigger(watched: tuple[Path, Recorder, DesiredWatcher]) -> None:
    desired, recorder, _ = watched
    sub = desired / "team-a"
    sub.mkdir()
    assert recorder.wait()
    recorder.drain()
    (sub / "db.yaml").write_text("x")
    assert recorder.wait()
    assert any(p.endswith("db.yaml") for p in recorder.drain())


def test_symlink_swap_is_seen_and_the_new_target_is_watched(tmp_path: Path) -> None:
    rev_a = tmp_path / "rev-a"
    rev_b = tmp_path / "rev-b"
    rev_a.mkdir()
    rev_b.mkdir()
    link = tmp_path / "desired"
    link.symlink_to(rev_a)
    recorder = Recorder()
    watcher = DesiredWatcher(str(link), recorder)
    watcher.start()
    try:
        tmp_link = tmp_path / ".desired.new"
        tmp_link.symlink_to(rev_b)
        os.rename(tmp_link, link)
        assert recorder.wait()
        assert str(link) in recorder.drain()
        (rev_b / "web.yaml").write_text("x")
        assert recorder.wait()
        assert any(p.endswith("web.yaml") for p in recorder.drain())
        (rev_a / "old.yaml").write_text("x")  # the old revision no longer matters
        assert not any(p.endswith("old.yaml") for p in _quiet(recorder))
    finally:
        watcher.stop()


def test_missing_desired_dir_does_not_crash_and_is_picked_up_on_swap(tmp_path: Path) -> None:
    recorder = Recorder()
    watcher = DesiredWatcher(str(tmp_path / "desired"), recorder)
    watcher.start()
    try:
        (tmp_path / "desired").mkdir()
        assert recorder.wait()
        recorder.drain()
        (tmp_path / "desired" / "web.yaml").write_text("x")
        assert recorder.wait()
    finally:
        watcher.stop()
