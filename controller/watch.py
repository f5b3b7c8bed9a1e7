"""Watch the desired directory and turn file-system events into triggers.

SHELL. The only module that imports watchdog. It never parses anything; it only
calls `on_change(path)` so the daemon schedules a (debounced) pass. Two watches:
the desired directory itself (recursive; inotify follows a symlinked root to its
current target) and its parent, non-recursive, so that a git-sync style
`desired -> rev-abc` symlink swap is seen; after a swap the directory watch is
moved to the new target. Dropped or missed events are healed by the daemon's
periodic resync, and a content-hash cache makes spurious triggers cheap.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from controller.fsio import IGNORED_DIRS, is_manifest_name

log = structlog.get_logger()

OnChange = Callable[[str], None]
# Read-only access events carry no change.
_NOISE = frozenset({"opened", "closed_no_write"})


def is_relevant(path: str, *, is_directory: bool) -> bool:
    """Return True if an event on `path` can change the desired state.

    Directory events count (a directory of manifests may appear or vanish); file events
    count only for manifest names, so editor swap files and temp files never trigger.
    """
    parts = Path(path).parts
    if any(part in IGNORED_DIRS for part in parts):
        return False
    if is_directory:
        return not Path(path).name.startswith(".")
    return is_manifest_name(Path(path).name)


class _Handler(FileSystemEventHandler):
    def __init__(self, on_change: OnChange) -> None:
        self._on_change = on_change

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _NOISE:
            return
        if event.is_directory and event.event_type == "modified":
            return  # a directory's mtime changes with every file event inside it
        paths = [os.fsdecode(event.src_path)]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(os.fsdecode(dest))
        for path in paths:
            if is_relevant(path, is_directory=event.is_directory):
                self._on_change(path)
                return


class _ParentHandler(FileSystemEventHandler):
    """Watches the parent of the desired dir for a swap of the desired path itself."""

    def __init__(self, desired: Path, on_swap: Callable[[str], None]) -> None:
        self._desired = desired
        self._on_swap = on_swap

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _NOISE or event.event_type == "modified":
            return  # a swap is a create, move or delete of the desired path itself
        names = {Path(os.fsdecode(event.src_path)).name}
        dest = getattr(event, "dest_path", "")
        if dest:
            names.add(Path(os.fsdecode(dest)).name)
        if self._desired.name in names:
            self._on_swap(str(self._desired))


class DesiredWatcher:
    """Calls `on_change(path)` from a watchdog thread whenever the desired state may differ."""

    def __init__(self, desired_dir: str, on_change: OnChange) -> None:
        self._desired = Path(desired_dir).absolute()
        self._on_change = on_change
        self._observer = Observer()
        self._lock = threading.Lock()
        self._dir_watch: ObservedWatch | None = None
        self._target: str | None = None

    def start(self) -> None:
        parent = self._desired.parent
        if parent.is_dir():
            self._observer.schedule(_ParentHandler(self._desired, self._swapped), str(parent))
        self._rewatch()
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)

    def _swapped(self, path: str) -> None:
        self._rewatch()
        self._on_change(path)

    def _rewatch(self) -> None:
        """Point the recursive watch at the directory `desired` resolves to now."""
        with self._lock:
            target = os.path.realpath(self._desired)
            if target == self._target and self._dir_watch is not None:
                return
            if self._dir_watch is not None:
                self._observer.unschedule(self._dir_watch)
                self._dir_watch = None
            self._target = target
            if not Path(target).is_dir():
                log.warning("desired_dir_missing", path=str(self._desired))
                return
            self._dir_watch = self._observer.schedule(
                _Handler(self._on_change), target, recursive=True
            )

    def ensure_current(self) -> None:
        """Re-point the watch if the desired path now resolves elsewhere (called on resync)."""
        self._rewatch()
