"""The daemon: one loop that turns triggers into reconcile passes; actions run beside it.

SHELL. `Daemon.run()` is `rktctl run`. The loop runs on the main thread and passes
never wait for an action: the reconciler hands each task's actions to worker threads
(its ActionQueue, client-go's work queue keyed by task) and books their outcomes in
the pass after they finish, which the finishing worker triggers ("retry"). So one
task's slow action (a graceful stop waiting out its kill_timeout, a hung rkt command,
an image fetch) never delays another task's reconcile or the status/heartbeat write.
Triggers (file events from `watch`, SIGHUP, timers, finished work) only set flags;
the loop coalesces them: a trigger that arrives during a pass causes exactly one more
pass. File events are debounced on the leading edge (`debounce`): the first event
after a quiet period starts a pass at once, and the events that follow it (an editor's
dance, a git checkout) wait until quiet for `debounce_s` (at most `debounce_max_s`) and
become one more pass. A pod that exits is an event too: `podwatch` waits on its pid and
wakes the loop, so a pass follows within milliseconds. The next wake-up is the
earliest of: a pending trigger, the plan's `requeue_after`, a retry after a failed
pass (exponential backoff), the periodic resync, the periodic `rkt gc` (only with
`host_gc`: it is host-wide; run on a thread of its own) and the systemd watchdog. A
pass that raises is logged and retried; it never kills the daemon. SIGTERM/SIGINT
finish the current pass, wait for the rkt commands in flight (never for a graceful
stop or a gc) and exit 0, leaving every pod running.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import structlog

from controller import __version__, backoff, systemd
from controller.config import Config
from controller.debounce import Debounce
from controller.errors import ConfigError, RktctlError, StatusWriteError
from controller.model import PassReport, PassResult, PodState, PodUUID
from controller.podwatch import PodExitWatcher
from controller.reconcile import Reconciler
from controller.reloadwatch import ReloadFileWatch
from controller.runtime import RktCli, Runtime, make_runtime
from controller.statusfiles import StatusWriter, process_info
from controller.timefmt import iso
from controller.watch import DesiredWatcher

log = structlog.get_logger()

VERIFY_AFTER_ACTIONS_S = 0.5


class Daemon:
    """Runs reconcile passes until SIGTERM/SIGINT. Build it, then call `run()`."""

    def __init__(
        self,
        cfg: Config,
        *,
        config_path: str | None,
        load: Callable[[], Config],
        runtime_factory: Callable[[Config], Runtime] = make_runtime,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self._config_path = config_path
        self._load = load
        self._runtime_factory = runtime_factory
        self._clock = clock
        self._mono = monotonic
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._debounce = Debounce(quiet_s=cfg.debounce_s, max_s=cfg.debounce_max_s)
        self._pod_exited = False
        self._stop_signal: str | None = None
        self._reload = False
        self._started_at = clock()
        self._status = StatusWriter(cfg.status_dir)
        self._work_done = False
        self._reconciler = Reconciler(
            cfg,
            self._make_runtime(cfg),
            clock=clock,
            background=True,
            on_work_done=self.work_done,
            keep_documents=True,
        )
        self._watcher: DesiredWatcher | None = None
        self._pod_watch: PodExitWatcher | None = None
        self._reload_watch = ReloadFileWatch(
            lambda: self._reconciler.reload_paths, self.reload_file_changed
        )
        self._ready_sent = False
        self._config_error: dict[str, object] | None = None
        """The last failed reload, published in controller.json until one succeeds."""
        self._gc_thread: threading.Thread | None = None

    # --- triggers (any thread, or a signal handler) ---------------------------------

    def file_changed(self, path: str) -> None:
        log.debug("desired_changed", path=path)
        self._debounced_event()

    def reload_file_changed(self, path: str) -> None:
        """A `spec.reload` file changed (called from the reload watch's thread)."""
        log.debug("reload_file_changed", path=path)
        self._debounced_event()

    def _debounced_event(self) -> None:
        """A file event: a pass at once after a quiet period, else one coalesced pass."""
        now = self._mono()
        with self._lock:
            self._debounce = self._debounce.event(now)
        self._wake.set()

    def pod_exited(self, uuid: PodUUID) -> None:
        """A watched pod's process ended (called from the pod watcher's thread)."""
        log.debug("pod_exit_seen", pod_uuid=uuid)
        self._pod_exited = True
        self._wake.set()

    def work_done(self) -> None:
        """Some task's actions finished (called from a worker): book them in a pass."""
        self._work_done = True
        self._wake.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._reload = True
        else:
            self._stop_signal = signal.Signals(signum).name
        self._wake.set()

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        """Run until a stop signal; return the process exit code (0)."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        log.info(
            "daemon_started",
            version=__version__,
            config_path=self._config_path,
            desired_dir=self.cfg.desired_dir,
            rkt=self.cfg.rkt,
            pid=os.getpid(),
        )
        self._start_watcher()
        self._start_pod_watch()
        self._reload_watch.start()
        sched = _Schedule(now=self._mono(), cfg=self.cfg)
        trigger: str | None = "startup"
        try:
            while self._stop_signal is None:
                if self._reload:
                    self._reload = False
                    self._do_reload()
                    sched.reconfigure(self._mono(), self.cfg)
                    trigger = "signal"
                now = self._mono()
                file_due = self._file_due()
                if trigger is None:
                    trigger = sched.due_trigger(now, file_due)
                if trigger is None and self._pod_exited:
                    trigger = "pod_exit"
                if trigger is None and self._work_done:
                    trigger = "retry"
                if trigger is not None:
                    self._work_done = False  # this pass collects whatever has finished
                    self._pod_exited = False  # and observes every pod that has ended
                    if trigger == "resync":
                        self._ensure_watcher()
                    if trigger != "retry":
                        with self._lock:  # events arriving during the pass re-arm it
                            self._debounce = self._debounce.taken()
                    report = self._pass(trigger)
                    trigger = None
                    sched.after_pass(self._mono(), report, self._requeue_delay(report))
                    systemd.watchdog()
                    continue
                if sched.gc_due(now):
                    self._gc()
                timeout = max(0.0, sched.wake_at(file_due) - self._mono())
                interval = systemd.watchdog_interval()
                if interval:
                    timeout = min(timeout, interval / 2)
                self._wake.wait(timeout)
                self._wake.clear()
                systemd.watchdog()
        finally:
            systemd.stopping()
            log.info("daemon_stopping", signal=self._stop_signal)
            if self._watcher is not None:
                self._watcher.stop()
            if self._pod_watch is not None:
                self._pod_watch.stop()
            self._reload_watch.stop()
            self._reconciler.close()
            try:
                self._status.publish_stopped()
            except StatusWriteError as exc:
                log.error("status_write_failed", path=self.cfg.status_dir, error=str(exc))
        log.info("daemon_stopped", exit_code=0)
        return 0

    def _file_due(self) -> float | None:
        """When the debounced file trigger fires (see `controller.debounce`)."""
        with self._lock:
            return self._debounce.due()

    def _requeue_delay(self, report: PassReport | None) -> float | None:
        """Seconds until the plan wants another look (transitions, backoff expiry)."""
        if report is None:
            return None
        delays = [report.plan.requeue_after] if report.plan.requeue_after is not None else []
        if report.outcomes:
            # Level-triggered verification: observe what the actions did, and publish it.
            delays.append(VERIFY_AFTER_ACTIONS_S)
        now = self._clock()
        delays += [
            state.not_before - now
            for state in report.restarts.values()
            if state.not_before is not None and state.not_before > now
        ]
        return max(0.05, min(delays)) if delays else None

    def _pass(self, trigger: str) -> PassReport | None:
        try:
            report = self._reconciler.run_pass(trigger)
        except Exception:  # the per-pass guard: a bug in one pass must not kill the daemon
            log.exception("reconcile_crashed", trigger=trigger)
            return None
        if self._pod_watch is not None and report.observation is not None:
            # Before publishing (thousands of status files): a pod may end meanwhile.
            self._pod_watch.track(
                p.uuid for p in report.observation.owned() if p.state is PodState.RUNNING
            )
        self._publish(report)
        if report.observation is not None and report.observation.complete and not self._ready_sent:
            systemd.ready()  # READY=1 once: after the first complete observation
            self._ready_sent = True
            _freeze_startup_objects()
        return report

    def _publish(self, report: PassReport) -> None:
        info = process_info(
            self.cfg,
            config_path=self._config_path,
            started_at=self._started_at,
            node=self._reconciler.node_attributes,
            config_error=self._config_error,
        )
        try:
            self._status.publish(report, daemon=info, now=self._clock())
        except StatusWriteError as exc:
            log.error("status_write_failed", path=self.cfg.status_dir, error=str(exc))

    def _gc(self) -> None:
        """The operator's opt-in (`host_gc`): `rkt gc` collects every exited pod, ours or not.

        Started on a thread of its own: it can take minutes (or hang up to
        prepare_timeout_s) and must hold neither the loop nor a worker.
        """
        if self.cfg.mode == "report-only":  # rkt gc removes pods: not in a look-only mode
            log.info("gc_skipped", error="mode is report-only")
            return
        if self._gc_thread is not None and self._gc_thread.is_alive():
            log.warning("gc_skipped", error="the previous rkt gc is still running")
            return
        runtime, grace = self._reconciler.runtime, self.cfg.gc_grace_period_s
        # daemon=True: a hung gc must not hold up SIGTERM; its rkt process ends by itself.
        self._gc_thread = threading.Thread(
            target=_run_gc, args=(runtime, grace), name="rktctl-gc", daemon=True
        )
        self._gc_thread.start()

    def _do_reload(self) -> None:
        systemd.reloading()
        try:
            cfg = self._load()
        except ConfigError as exc:
            log.error("config_invalid", path=self._config_path, errors=list(exc.problems))
            self._config_error = {
                "at": iso(self._clock()),
                "path": self._config_path,
                "errors": list(exc.problems),
            }
            systemd.ready()
            return
        self._config_error = None
        old = self.cfg
        self.cfg = cfg
        with self._lock:
            self._debounce = self._debounce.reconfigure(
                quiet_s=cfg.debounce_s, max_s=cfg.debounce_max_s
            )
        self._reconciler.reload(cfg, self._make_runtime(cfg))
        if cfg.status_dir != old.status_dir:
            self._status = StatusWriter(cfg.status_dir)
        if cfg.desired_dir != old.desired_dir:
            if self._watcher is not None:
                self._watcher.stop()
            self._start_watcher()
        log.info("config_reloaded", path=self._config_path)
        systemd.ready()

    def _make_runtime(self, cfg: Config) -> Runtime:
        runtime = self._runtime_factory(cfg)
        if isinstance(runtime, RktCli):  # feeds rktctl_rkt_command_failures_total
            runtime.on_failure = self._status.record_rkt_failure
            runtime.images.on_fetch = self._status.record_fetch
        return runtime

    def _start_pod_watch(self) -> None:
        if not PodExitWatcher.supported():
            # No pidfds (kernel < 5.3): pod exits are seen by the resync and requeues only.
            log.warning("pod_exit_watch_unsupported")
            return
        self._pod_watch = PodExitWatcher(self.pod_exited, self._pod_pid)
        self._pod_watch.start()

    def _pod_pid(self, uuid: PodUUID) -> int | None:
        # Asked at call time: a reload may have replaced the runtime.
        return self._reconciler.runtime.pod_pid(uuid)

    def _ensure_watcher(self) -> None:
        """On resync: restart a watcher that failed to start; follow a missed symlink swap."""
        if self._watcher is None:
            self._start_watcher()
        else:
            self._watcher.ensure_current()

    def _start_watcher(self) -> None:
        self._watcher = DesiredWatcher(self.cfg.desired_dir, self.file_changed)
        try:
            self._watcher.start()
        except OSError as exc:
            # inotify limits or a missing parent: the periodic resync still converges.
            log.error("watch_failed", path=self.cfg.desired_dir, error=str(exc))
            self._watcher = None


def _freeze_startup_objects() -> None:
    """Move what the first pass built (specs, caches, status memos) out of the cyclic GC,
    and give the memory the start used only for a while back to the system.

    At 10k tasks these are ~200k long-lived objects that every full collection would
    walk again, a third of an idle pass's CPU (bench/bench_pass.py). They are freed by
    reference counting as before; only a reference cycle among them would be kept.
    """
    gc.collect()
    gc.freeze()
    _trim_heap()


def _trim_heap() -> None:
    """Return the C heap's free pages to the system (glibc's malloc_trim).

    A start reads every manifest and builds every status document once: freed, that
    memory stays in the process's heap and counts in its RSS (~9 MB at 10k tasks).
    Elsewhere (musl, no libc symbol) this does nothing.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def _run_gc(runtime: Runtime, grace_period_s: float) -> None:
    try:
        collected = runtime.gc(grace_period_s=grace_period_s)
    except RktctlError as exc:
        log.warning("gc_failed", error=str(exc), code=exc.code)
        return
    if collected:
        log.info("pods_collected", count=len(collected))


class _Schedule:
    """The loop's timers: resync, retry after a failed pass, plan requeue and rkt gc."""

    def __init__(self, *, now: float, cfg: Config) -> None:
        self.cfg = cfg
        self.failures = 0
        self.next_resync = now + cfg.resync_interval_s
        self.retry_at: float | None = None
        self.requeue_at: float | None = None
        self.next_gc = self._first_gc(now, cfg)

    def reconfigure(self, now: float, cfg: Config) -> None:
        """Adopt a reloaded config: host_gc may have been switched on or off."""
        if (cfg.host_gc, cfg.gc_interval_s) != (self.cfg.host_gc, self.cfg.gc_interval_s):
            self.next_gc = self._first_gc(now, cfg)
        self.cfg = cfg

    @staticmethod
    def _first_gc(now: float, cfg: Config) -> float | None:
        # A host-wide `rkt gc` also collects pods rktctl does not own: only on request.
        return now + cfg.gc_interval_s if cfg.host_gc else None

    def due_trigger(self, now: float, file_due: float | None) -> str | None:
        if file_due is not None and file_due <= now:
            return "file"
        if any(t is not None and t <= now for t in (self.retry_at, self.requeue_at)):
            return "retry"
        if self.next_resync <= now:
            return "resync"
        return None

    def after_pass(self, now: float, report: PassReport | None, requeue: float | None) -> None:
        self.next_resync = now + self.cfg.resync_interval_s
        if report is not None and report.result != PassResult.FAILED:
            self.failures = 0
            self.retry_at = None
            self.requeue_at = now + requeue if requeue is not None else None
            return
        self.failures += 1
        delay = backoff.delay(
            self.failures, base=self.cfg.backoff_base_s, cap=self.cfg.backoff_cap_s
        )
        self.retry_at = now + delay
        self.requeue_at = None
        log.warning(
            "reconcile_failed",
            attempt=self.failures,
            retry_in_s=round(delay, 3),
            error=report.error if report else "the pass raised (see reconcile_crashed)",
            code=report.error_code if report else "internal_error",
        )

    def gc_due(self, now: float) -> bool:
        if self.next_gc is None or self.next_gc > now:
            return False
        self.next_gc = now + self.cfg.gc_interval_s
        return True

    def wake_at(self, file_due: float | None) -> float:
        deadlines = [self.next_resync, self.retry_at, self.requeue_at, file_due, self.next_gc]
        return min(d for d in deadlines if d is not None)
