"""Execute a Plan through a Runtime and report one Outcome per action.

SHELL. Called by `reconcile` once per pass (never in dry-run). Actions of one
task run strictly in plan order; different tasks run concurrently, at most
`max_parallel` at a time. A failure of one task's action skips that task's later
actions (a failed prepare must not be followed by stopping nothing, a failed stop
by starting a second pod) but never another task's. Nothing here raises for an
action failure: it becomes `Outcome(ok=False, error_code=...)`, and the
reconciler turns it into per-task backoff. As defence in depth, a Stop, Remove
or RunPrepared whose pod is not in `owned` is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from typing import Protocol

import structlog

from controller.errors import RktctlError
from controller.model import (
    Action,
    Outcome,
    Plan,
    PodUUID,
    Remove,
    RunPrepared,
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
    def run_prepared(self, spec: TaskSpec, uuid: PodUUID) -> None: ...
    def stop(self, uuid: PodUUID, *, kill_timeout_s: float) -> None: ...
    def remove(self, uuid: PodUUID) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskExtras:
    """Per-task inputs the runtime needs beyond the spec (from placement)."""

    env: Mapping[str, str] = field(default_factory=dict)
    host_ports: Mapping[str, int] = field(default_factory=dict)


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
    """Run `plan`'s actions and return their outcomes in plan order.

    A Stop waits the task's `kill_timeouts` entry (the last known spec's, so a deleted
    manifest's value still counts), else its spec's, else DEFAULT_KILL_TIMEOUT_S.
    """
    groups = [list(actions) for _, actions in groupby(plan.actions, key=lambda a: a.task)]
    if not groups:
        return ()

    def run_group(actions: Sequence[Action]) -> list[Outcome]:
        results: list[Outcome] = []
        failed = False
        for action in actions:
            if failed:
                results.append(
                    Outcome(
                        action=action,
                        ok=False,
                        skipped=True,
                        message="skipped: an earlier action of this task failed",
                    )
                )
                continue
            outcome = _execute(
                action,
                runtime,
                specs=specs,
                owned=owned,
                extras=extras or {},
                kill_timeouts=kill_timeouts or {},
                clock=clock,
            )
            failed = not outcome.ok
            results.append(outcome)
        return results

    if len(groups) == 1 or max_parallel <= 1:
        nested = [run_group(g) for g in groups]
    else:
        with ThreadPoolExecutor(max_workers=min(max_parallel, len(groups))) as pool:
            nested = list(pool.map(run_group, groups))
    return tuple(o for group in nested for o in group)


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
    *,
    specs: Mapping[TaskName, TaskSpec],
    owned: frozenset[PodUUID],
    extras: Mapping[TaskName, TaskExtras],
    kill_timeouts: Mapping[TaskName, float],
    clock: Callable[[], float],
) -> Outcome:
    started = clock()
    uuid: PodUUID | None = None if isinstance(action, Start) else action.uuid
    bound = log.bind(task=action.task, reason=str(action.reason), action=action.kind)
    try:
        if not isinstance(action, Start) and action.uuid not in owned:
            # The planner never does this; refusing here keeps a bug from killing a foreign pod.
            return Outcome(
                action=action,
                ok=False,
                pod_uuid=uuid,
                error_code="not_owned",
                message=f"refused: pod {action.uuid} is not owned by rktctl",
            )
        spec = specs.get(action.task)
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
            extra = extras.get(action.task, TaskExtras())
            uuid = runtime.prepare(spec, extra_env=extra.env, host_ports=extra.host_ports)
            runtime.run_prepared(spec, uuid)
            event = "pod_started"
        elif isinstance(action, RunPrepared):
            assert spec is not None
            runtime.run_prepared(spec, action.uuid)
            event = "pod_started"
        elif isinstance(action, Stop):
            timeout = kill_timeout_of(action.task, spec, kill_timeouts)
            runtime.stop(action.uuid, kill_timeout_s=timeout)
            event = "pod_stopped"
        else:
            runtime.remove(action.uuid)
            event = "pod_removed"
    except RktctlError as exc:
        duration_ms = (clock() - started) * 1000
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
    extra_keys: dict[str, str] = {"spec_hash": spec.spec_hash} if spec is not None else {}
    if isinstance(action, Remove) and action.exit_code is not None:
        extra_keys["exit_code"] = str(action.exit_code)
    bound.info(event, pod_uuid=uuid, duration_ms=round(duration_ms, 1), **extra_keys)
    return Outcome(action=action, ok=True, pod_uuid=uuid, duration_ms=duration_ms)
