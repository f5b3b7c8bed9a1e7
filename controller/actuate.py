"""Execute a Plan through a Runtime and report one Outcome per action.

SHELL. Called by `reconcile`, never in dry-run. Actions of one task run strictly in
plan order; different tasks run concurrently, at most `max_parallel` at a time. A
failure of one task's action skips that task's later actions (a failed prepare must
not be followed by stopping nothing, a failed stop by starting a second pod) but
never another task's. Nothing here raises for an action failure: it becomes
`Outcome(ok=False, error_code=...)`, and the reconciler turns it into per-task
backoff. A transitional error (a pod still in its boot window) is no failure: the
outcome is `deferred`, the task's later actions are skipped, and the next pass (soon:
the daemon re-checks after any action) tries again. As defence in depth, a Stop,
Remove or RunPrepared whose pod is not in `owned` is refused.

Two ways to run: `apply()` runs a whole plan and returns when every action is done
(`rktctl reconcile --once`). The daemon uses an `ActionQueue`: each task's actions
are one work item that runs while later passes go on, and with `observe_stops` a
Stop only sends the graceful signal (`Outcome.stopping`); the reconciler watches
the pod in later passes and asks for `rkt stop --force` once its kill_timeout is
over, so no thread ever waits out a kill_timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import groupby
from typing import Protocol

import structlog

from controller.errors import RktctlError
from controller.model import (
    Action,
    DesiredState,
    Outcome,
    Plan,
    PodUUID,
    Remove,
    RunPrepared,
    Signal,
    Start,
    Stop,
    TaskName,
    TaskSpec,
)

log = structlog.get_logger()

DEFAULT_KILL_TIMEOUT_S = 30.0


class ActionRuntime(Protocol):
    """The part of `runtime.Runtime` that executing a plan needs."""

    def prepare(
        self,
        spec: TaskSpec,
        *,
        extra_env: Mapping[str, str] = ...,
        host_ports: Mapping[str, int] = ...,
    ) -> PodUUID: ...
    def run_prepared(self, spec: TaskSpec, uuid: PodUUID, *, just_prepared: bool = ...) -> None: ...
    def stop(self, uuid: PodUUID, *, kill_timeout_s: float) -> None: ...
    def request_stop(self, uuid: PodUUID) -> bool: ...
    def force_stop(self, uuid: PodUUID) -> None: ...
    def remove(self, uuid: PodUUID) -> None: ...
    def signal_app(self, uuid: PodUUID, signal: str, *, stage1: str | None) -> list[int]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskExtras:
    """Per-task inputs the runtime needs beyond the spec (from placement)."""

    env: Mapping[str, str] = field(default_factory=dict)
    host_ports: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActContext:
    """What running a task's actions needs besides the actions and the runtime."""

    specs: Mapping[TaskName, TaskSpec]
    owned: frozenset[PodUUID]
    extras: Mapping[TaskName, TaskExtras] = field(default_factory=dict)
    kill_timeouts: Mapping[TaskName, float] = field(default_factory=dict)
    """The last known kill_timeout per task (see `kill_timeout_of`)."""
    observe_stops: bool = False
    """A Stop sends the graceful signal and returns (`Outcome.stopping`): the caller
    watches the pod instead of a thread waiting out its kill_timeout."""
    force_stops: frozenset[PodUUID] = frozenset()
    """Pods whose graceful stop outlived its kill_timeout: `rkt stop --force` at once."""


def apply(
    plan: Plan,
    runtime: ActionRuntime,
    *,
    specs: Mapping[TaskName, TaskSpec],
    owned: frozenset[PodUUID],
    extras: Mapping[TaskName, TaskExtras] | None = None,
    max_parallel: int = 4,
    kill_timeouts: Mapping[TaskName, float] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Outcome, ...]:
    """Run `plan`'s actions, wait for all of them and return their outcomes in plan order.

    A Stop waits the task's `kill_timeouts` entry (the last known spec's, so a deleted
    manifest's value still counts), else its spec's, else DEFAULT_KILL_TIMEOUT_S.
    """
    groups = [tuple(actions) for _, actions in groupby(plan.actions, key=lambda a: a.task)]
    if not groups:
        return ()
    ctx = ActContext(
        specs=specs, owned=owned, extras=extras or {}, kill_timeouts=kill_timeouts or {}
    )

    def run_group(actions: Sequence[Action]) -> tuple[Outcome, ...]:
        return run_task(actions, runtime, ctx, clock=clock)

    if len(groups) == 1 or max_parallel <= 1:
        nested = [run_group(g) for g in groups]
    else:
        with ThreadPoolExecutor(max_workers=min(max_parallel, len(groups))) as pool:
            nested = list(pool.map(run_group, groups))
    return tuple(o for group in nested for o in group)


def run_task(
    actions: Sequence[Action],
    runtime: ActionRuntime,
    ctx: ActContext,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Outcome, ...]:
    """Run one task's actions in order and return their outcomes.

    After a failure or a deferral the rest are skipped (`skipped=True`); after a
    graceful stop that is still in progress (`stopping=True`) too: they wait for the
    pod to be gone.
    """
    results: list[Outcome] = []
    blocker: str | None = None
    for action in actions:
        if blocker is not None:
            results.append(Outcome(action=action, ok=False, skipped=True, message=blocker))
            continue
        outcome = _execute(action, runtime, ctx, clock=clock)
        if not outcome.ok:
            why = "was deferred" if outcome.deferred else "failed"
            blocker = f"skipped: an earlier action of this task {why}"
        elif outcome.stopping:
            blocker = f"skipped: waiting for pod {outcome.pod_uuid} to stop"
        results.append(outcome)
    return tuple(results)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """A task's work item whose actions are done, ready to be booked."""

    task: TaskName
    outcomes: tuple[Outcome, ...]
    desired: DesiredState
    """The desired state the actions were planned from; their outcomes are booked
    against it (a spec edited meanwhile is the next pass's business)."""


@dataclass(slots=True)
class _Item:
    future: Future[tuple[Outcome, ...]]
    actions: tuple[Action, ...]
    desired: DesiredState


class ActionQueue:
    """Per-task work in flight across passes: client-go's work queue, keyed by task.

    A pass submits each task's actions as one work item and goes on; `max_parallel`
    worker threads run the items. A task stays in flight (`collect` lists it as busy)
    until a later pass collects its result, and meanwhile gets no new work: one task's
    actions never run twice at once or out of order, and a slow task (a long image
    fetch, a hung rkt command up to its timeout) delays no other task unless every
    worker is held. `on_done` is called from the worker thread when an item finishes
    (the daemon uses it to run the pass that books it).
    """

    def __init__(self, *, max_parallel: int, on_done: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._pool = self._new_pool(max_parallel)
        self._items: dict[TaskName, _Item] = {}
        self._on_done = on_done

    @staticmethod
    def _new_pool(max_parallel: int) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=max(1, max_parallel), thread_name_prefix="rktctl-act")

    def submit(
        self,
        task: TaskName,
        actions: Sequence[Action],
        run: Callable[[], tuple[Outcome, ...]],
        *,
        desired: DesiredState,
    ) -> None:
        """Start `run` (the task's actions) on a worker. Raise ValueError if `task` is busy."""
        with self._lock:
            if task in self._items:
                raise ValueError(f"task {task} already has work in flight")
            future = self._pool.submit(run)
            self._items[task] = _Item(future=future, actions=tuple(actions), desired=desired)
        on_done = self._on_done
        if on_done is not None:
            future.add_done_callback(lambda _future: on_done())

    def collect(self) -> tuple[list[Finished], frozenset[TaskName]]:
        """Return the work items finished since the last call, and the tasks still busy.

        Both come from one look under the lock, so a task is either booked now or busy
        for the whole pass that called this. An item whose `run` raised (a bug) comes
        back as one failed Outcome per action (`internal_error`): it is retried with
        backoff like any failure.
        """
        with self._lock:
            done = {t: i for t, i in self._items.items() if i.future.done()}
            for task in done:
                del self._items[task]
            busy = frozenset(self._items)
        finished = []
        for task, item in done.items():
            exc = item.future.exception()
            if exc is None:
                outcomes = item.future.result()
            else:
                log.error("action_crashed", task=task, error=f"{type(exc).__name__}: {exc}")
                outcomes = tuple(
                    Outcome(
                        action=action,
                        ok=False,
                        error_code="internal_error",
                        message=f"internal error: {type(exc).__name__}: {exc}",
                    )
                    for action in item.actions
                )
            finished.append(Finished(task=task, outcomes=outcomes, desired=item.desired))
        return finished, busy

    def wait(self, timeout: float | None = None) -> None:
        """Wait until every item in flight now has finished (or `timeout` passes)."""
        with self._lock:
            futures = [item.future for item in self._items.values()]
        wait(futures, timeout=timeout)

    def resize(self, max_parallel: int) -> None:
        """Use `max_parallel` workers for new items; items in flight finish where they run."""
        with self._lock:
            old, self._pool = self._pool, self._new_pool(max_parallel)
        old.shutdown(wait=False)

    def close(self) -> None:
        """Wait for the items in flight and stop the workers (collect still works after)."""
        self._pool.shutdown(wait=True)


def kill_timeout_of(
    task: TaskName, spec: TaskSpec | None, kill_timeouts: Mapping[TaskName, float]
) -> float:
    """Return how long a graceful stop of `task`'s pod may take before it is forced."""
    if task in kill_timeouts:
        return kill_timeouts[task]
    return spec.kill_timeout_s if spec is not None else DEFAULT_KILL_TIMEOUT_S


def _execute(
    action: Action,
    runtime: ActionRuntime,
    ctx: ActContext,
    *,
    clock: Callable[[], float],
) -> Outcome:
    started = clock()
    details: dict[str, object] = {}  # what a successful action adds to its log line
    uuid: PodUUID | None = None if isinstance(action, Start) else action.uuid
    bound = log.bind(task=action.task, reason=str(action.reason), action=action.kind)
    try:
        if not isinstance(action, Start) and action.uuid not in ctx.owned:
            # The planner never does this; refusing here keeps a bug from killing a foreign pod.
            return Outcome(
                action=action,
                ok=False,
                pod_uuid=uuid,
                error_code="not_owned",
                message=f"refused: pod {action.uuid} is not owned by rktctl",
            )
        spec = ctx.specs.get(action.task)
        if spec is None and isinstance(action, Start | RunPrepared):
            return Outcome(
                action=action,
                ok=False,
                pod_uuid=uuid,
                error_code="no_spec",
                message=f"no valid spec for task {action.task}",
            )
        if isinstance(action, Start):
            assert spec is not None
            extra = ctx.extras.get(action.task, TaskExtras())
            uuid = runtime.prepare(spec, extra_env=extra.env, host_ports=extra.host_ports)
            runtime.run_prepared(spec, uuid, just_prepared=True)
            event = "pod_started"
        elif isinstance(action, RunPrepared):
            assert spec is not None
            runtime.run_prepared(spec, action.uuid)
            event = "pod_started"
        elif isinstance(action, Stop) and action.uuid in ctx.force_stops:
            runtime.force_stop(action.uuid)
            event = "pod_stopped"
        elif isinstance(action, Stop) and ctx.observe_stops:
            if runtime.request_stop(action.uuid):
                bound.info("pod_stop_requested", pod_uuid=uuid)
                return Outcome(
                    action=action,
                    ok=True,
                    pod_uuid=uuid,
                    stopping=True,
                    duration_ms=(clock() - started) * 1000,
                )
            event = "pod_stopped"
        elif isinstance(action, Stop):
            timeout = kill_timeout_of(action.task, spec, ctx.kill_timeouts)
            runtime.stop(action.uuid, kill_timeout_s=timeout)
            event = "pod_stopped"
        elif isinstance(action, Signal):
            pids = runtime.signal_app(
                action.uuid, action.signal, stage1=spec.stage1 if spec is not None else None
            )
            details = {"signal": action.signal, "app_pids": pids, "files": list(action.changed)}
            event = "pod_signalled"
        else:
            runtime.remove(action.uuid)
            event = "pod_removed"
    except RktctlError as exc:
        duration_ms = (clock() - started) * 1000
        if exc.transitional:
            bound.info("action_deferred", pod_uuid=uuid, code=exc.code, error=str(exc),
                       duration_ms=round(duration_ms, 1))  # fmt: skip
            return Outcome(
                action=action,
                ok=False,
                deferred=True,
                pod_uuid=uuid,
                error_code=exc.code,
                message=str(exc),
                duration_ms=duration_ms,
            )
        returncode = getattr(exc, "returncode", None)
        bound.warning(
            "action_failed",
            pod_uuid=uuid,
            code=exc.code,
            error=str(exc),
            returncode=returncode,
            stderr_tail=getattr(exc, "stderr_tail", None),
            duration_ms=round(duration_ms, 1),
        )
        return Outcome(
            action=action,
            ok=False,
            pod_uuid=uuid,
            error_code=exc.code,
            message=str(exc),
            duration_ms=duration_ms,
        )
    duration_ms = (clock() - started) * 1000
    extra_keys: dict[str, object] = {"spec_hash": spec.spec_hash} if spec is not None else {}
    if isinstance(action, Remove) and action.exit_code is not None:
        extra_keys["exit_code"] = str(action.exit_code)
    extra_keys.update(details)
    bound.info(event, pod_uuid=uuid, duration_ms=round(duration_ms, 1), **extra_keys)
    return Outcome(action=action, ok=True, pod_uuid=uuid, duration_ms=duration_ms)
