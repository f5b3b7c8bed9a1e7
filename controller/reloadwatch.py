"""Notice within about a second that a `spec.reload` file changed, and trigger a pass.

SHELL: a thread that stats each watched file once a second. Polling rather than
inotify: config files get replaced by rename, swapped behind symlinks (the
`..data` layout of Kubernetes ConfigMaps) or bind-mounted from elsewhere, which
directory watches miss, while a stat per file per second costs next to nothing. The
pass that follows digests the files and signals the apps (`reloadbook`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from controller.reloadfiles import StatKey, stat_key

POLL_INTERVAL_S = 1.0


class ReloadFileWatch:
    def __init__(
        self,
        paths: Callable[[], frozenset[str]],
        on_change: Callable[[str], None],
        *,
        interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self._paths = paths
        self._on_change = on_change
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._seen: dict[str, StatKey | str] = {}
        self._thread = threading.Thread(target=self._run, name="rktctl-reload-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def poll(self) -> list[str]:
        """Stat every watched path once; return (and report) those that changed."""
        changed = []
        current = self._paths()
        for path in current:
            key = stat_key(path)
            if path in self._seen and self._seen[path] != key:
                changed.append(path)
            self._seen[path] = key
        for path in [p for p in self._seen if p not in current]:
            del self._seen[path]
        for path in changed:
            self._on_change(path)
        return changed

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            self.poll()
