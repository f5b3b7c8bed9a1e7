"""Learn that a pod has ended within milliseconds, without polling rkt: wait on its pid.

SHELL. `PodExitWatcher` keeps a pidfd (`os.pidfd_open`, Linux 5.3+) for each running
pod rktctl owns and waits on all of them with a selector on a thread of its own; when
one becomes readable (the process ended) it calls `on_exit(uuid)`, which wakes the
daemon for a pass. The pid is the pod's `rkt run-prepared` process, which stage1 execs
into (fly: the app itself; nspawn flavors: systemd-nspawn), so it ends with the pod.
It comes from `resolve(uuid)`: the detached launcher's own child when rktctl started
the pod, else the `pid=` line of text `rkt status` (pods found running at startup,
the systemd-run launcher). Resolving runs on the watcher's thread, never the loop's.

The daemon calls `track(uuids)` after every pass with the running pods it owns. A pod
in its boot window has no pid yet: it is asked again a few times with a growing delay,
then left to the periodic resync, which stays the safety net for anything missed here
(no pidfd support, a pid that cannot be read). Each pod's exit is reported once.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from controller.errors import RktctlError
from controller.model import PodUUID

log = structlog.get_logger()

Resolve = Callable[[PodUUID], "int | None"]
RETRY_FIRST_S = 0.1
RETRY_TRIES = 7
"""A pod without a pid is asked again after 0.1, 0.2, ... 6.4 s (its boot window), then
left to the resync."""


@dataclass(slots=True)
class _Pod:
    fd: int | None = None
    tries: int = 0
    next_try: float = 0.0
    done: bool = False
    """Its exit was reported, or its pid could not be had: nothing more to do for it."""


class PodExitWatcher:
    """Calls `on_exit(uuid)` from its thread when a tracked pod's process ends."""

    def __init__(
        self,
        on_exit: Callable[[PodUUID], None],
        resolve: Resolve,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_exit = on_exit
        self._resolve = resolve
        self._clock = clock
        self._lock = threading.Lock()
        self._wanted: frozenset[PodUUID] = frozenset()
        self._pods: dict[PodUUID, _Pod] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None

    @staticmethod
    def supported() -> bool:
        """Return True if this kernel and Python offer pidfds."""
        if not hasattr(os, "pidfd_open"):
            return False
        try:
            os.close(os.pidfd_open(os.getpid()))
        except OSError:
            return False
        return True

    def start(self) -> None:
        # daemon=True: a resolve stuck in rkt (bounded by its timeout) must not hold up exit.
        self._thread = threading.Thread(target=self._run, name="rktctl-podwatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
        self._poke()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def track(self, uuids: Iterable[PodUUID]) -> None:
        """Watch exactly these pods from now on (the running pods rktctl owns)."""
        with self._lock:
            self._wanted = frozenset(uuids)
        self._poke()

    def _poke(self) -> None:
        with self._lock:  # never write to the pipe once the thread has closed it
            if self._closed:
                return
            # A full pipe means the thread is awake already.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"\0")

    # --- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    if self._stopping:
                        return
                    wanted = self._wanted
                timeout = self._sync(wanted)
                for key, _mask in self._selector.select(timeout):
                    if key.data is None:
                        self._drain()
                    else:
                        self._exited(key.data)
        finally:
            self._close_all()

    def _sync(self, wanted: frozenset[PodUUID]) -> float | None:
        """Open pidfds for new pods, close those of pods no longer wanted; return the
        selector timeout (the next retry of a pod without a pid yet)."""
        for uuid in [u for u in self._pods if u not in wanted]:
            self._close(uuid)
            del self._pods[uuid]
        now = self._clock()
        retry_at: float | None = None
        for uuid in wanted:
            pod = self._pods.setdefault(uuid, _Pod())
            if pod.done or pod.fd is not None:
                continue
            if pod.next_try > now:
                retry_at = pod.next_try if retry_at is None else min(retry_at, pod.next_try)
                continue
            self._open(uuid, pod)
            if not pod.done and pod.fd is None:
                retry_at = pod.next_try if retry_at is None else min(retry_at, pod.next_try)
        return None if retry_at is None else max(0.0, retry_at - self._clock())

    def _open(self, uuid: PodUUID, pod: _Pod) -> None:
        try:
            pid = self._resolve(uuid)
        except RktctlError as exc:
            log.debug("pod_pid_unknown", pod_uuid=uuid, error=str(exc))
            pid = None
        if pid is None:
            pod.tries += 1
            if pod.tries >= RETRY_TRIES:
                pod.done = True  # the resync will notice this pod's end
                log.debug("pod_exit_unwatched", pod_uuid=uuid)
            else:
                pod.next_try = self._clock() + RETRY_FIRST_S * 2 ** (pod.tries - 1)
            return
        try:
            pod.fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._report(uuid, pod)  # it ended between rkt's answer and now
            return
        except OSError as exc:
            log.debug("pod_exit_unwatched", pod_uuid=uuid, pid=pid, error=str(exc))
            pod.done = True
            return
        self._selector.register(pod.fd, selectors.EVENT_READ, uuid)

    def _exited(self, uuid: PodUUID) -> None:
        pod = self._pods.get(uuid)
        if pod is None:
            return
        self._close(uuid)
        with self._lock:
            wanted = uuid in self._wanted
        if wanted:  # a pod no longer tracked (track() since) is nobody's news
            self._report(uuid, pod)
        else:
            pod.done = True

    def _report(self, uuid: PodUUID, pod: _Pod) -> None:
        pod.done = True
        self._on_exit(uuid)

    def _close(self, uuid: PodUUID) -> None:
        pod = self._pods.get(uuid)
        if pod is None or pod.fd is None:
            return
        self._selector.unregister(pod.fd)
        os.close(pod.fd)
        pod.fd = None

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass

    def _close_all(self) -> None:
        for uuid in list(self._pods):
            self._close(uuid)
        self._pods.clear()
        self._selector.close()
        with self._lock:
            self._closed = True
            os.close(self._wake_r)
            os.close(self._wake_w)
