"""The fetch phase of a start: `rkt fetch` before `rkt prepare --pull-policy=never`.

SHELL (a little state around an injected command runner). A pull can take minutes; as
its own rkt command it gets its own timeout (`fetch_timeout_s`), shows in status while
it runs (`fetching()`: the reconciler turns it into phase Starting, reason
FetchingImage), and prepare then only reads the store. It runs inside the task's
start, on an ActionQueue worker, so a slow pull holds no pass and no other task.

Which images are in rkt's store is remembered per process (image reference -> the
image ID `rkt fetch` printed): with `pull_policy: new` an image is fetched once per
daemon run, and a later start prepares straight from the ID. A failed prepare forgets
the entry (someone may have run `rkt image rm`), so the next start fetches again.
`pull_policy: update` fetches at every start, as rkt's own `update` means.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from controller.errors import RktOutputError
from controller.model import TaskName
from controller.procs import Completed

log = structlog.get_logger()

# `rkt fetch` prints one image ID per image: `sha512-` + 32 hex (`--full`: 64).
_IMAGE_ID_LINE = re.compile(r"^sha512-[0-9a-f]{32,128}$")

FETCHED = "fetched"
CACHED = "cached"
FAILED = "failed"
FETCH_RESULTS = (FETCHED, CACHED, FAILED)
"""`on_fetch` results: a `rkt fetch` that worked or failed, or none needed (remembered)."""


def parse_image_id(stdout: bytes) -> str:
    """Return the image ID `rkt fetch` printed (its last ID line); RktOutputError if none."""
    lines = stdout.decode("utf-8", errors="replace").splitlines()
    ids = [line.strip() for line in lines if _IMAGE_ID_LINE.match(line.strip())]
    if not ids:
        raise RktOutputError(f"rkt fetch exited 0 but printed no image ID: {stdout[:200]!r}")
    return ids[-1]


@dataclass(frozen=True, slots=True)
class Fetching:
    """A fetch in flight, for status."""

    image: str
    since: float
    """Unix time the fetch began."""


class ImageFetcher:
    """Remembers fetched images and the fetches in flight. Thread-safe."""

    def __init__(
        self,
        *,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, str] = {}
        self._fetching: dict[TaskName, Fetching] = {}
        self._wall_clock = wall_clock
        self._clock = clock
        self.on_fetch: Callable[[str, float], None] | None = None
        """Called with a FETCH_RESULTS value and the seconds it took (metrics)."""

    def image_id(
        self,
        task: TaskName,
        image: str,
        policy: str,
        run: Callable[[], Completed],
    ) -> str:
        """Return the store ID of `image`, running `run` (the `rkt fetch`) when needed.

        Raise what `run` raises (RktError subclasses), RktOutputError if it prints no ID.
        """
        with self._lock:
            known = self._ids.get(image)
        if known is not None and policy != "update":
            self._report(CACHED, 0.0)
            return known
        started = self._clock()
        with self._lock:
            self._fetching[task] = Fetching(image=image, since=self._wall_clock())
        log.info("image_fetch_started", task=task, image=image, pull_policy=policy)
        try:
            image_id = parse_image_id(run().stdout)
        except Exception:
            self._report(FAILED, self._clock() - started)
            raise
        finally:
            with self._lock:
                self._fetching.pop(task, None)
        seconds = self._clock() - started
        with self._lock:
            self._ids[image] = image_id
        log.info("image_fetched", task=task, image=image, image_id=image_id,
                 duration_ms=round(seconds * 1000, 1))  # fmt: skip
        self._report(FETCHED, seconds)
        return image_id

    def forget(self, image: str) -> None:
        """Drop what is known about `image` (its prepare failed: fetch again next time)."""
        with self._lock:
            self._ids.pop(image, None)

    def fetching(self) -> dict[TaskName, Fetching]:
        """The tasks whose start is in its fetch phase now."""
        with self._lock:
            return dict(self._fetching)

    def _report(self, result: str, seconds: float) -> None:
        if self.on_fetch is not None:
            self.on_fetch(result, seconds)
