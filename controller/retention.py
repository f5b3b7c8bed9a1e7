"""Retention: keep each task's last few exited pods (and so their logs) for a post-mortem.

PURE. kubelet keeps a dead container so `kubectl logs --previous` works; rktctl
used to `rkt rm` every finished pod in the pass that saw it. Now the planner still
plans that Remove (and the crash-loop bookkeeping still follows it), but `retain`
turns the Remove of an exited pod of a declared task into a *retention* when it is
among the task's newest `keep`: no `rkt rm` runs, the shell books the exit as if
removed and remembers the UUID (state dir). From then on `split` takes retained pods
out of the observation the planner and status see, so a kept pod never counts as a
crash twice and never hides the task's live pod; a retained pod past the newest
`keep`, or of a task no manifest declares any more, is removed (`Reason.PRUNED`).
Logs follow the pods: podlogs keeps the log of every pod that still exists and caps
each at `pod_log_max_bytes`, so a task holds at most `keep + pod_logs_keep + 1` logs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from controller.model import (
    FINISHED_STATES,
    Action,
    DesiredState,
    Observation,
    ObservedPod,
    Plan,
    PodState,
    PodUUID,
    Reason,
    Remove,
    TaskName,
    TaskSpec,
)

# Removes of finished pods that ran: an exit of the current spec, or of an older one.
_KEPT_REASONS = frozenset({Reason.EXITED, Reason.SPEC_CHANGED})


def split(
    observation: Observation, retained: frozenset[PodUUID]
) -> tuple[Observation, dict[TaskName, tuple[ObservedPod, ...]]]:
    """Return the observation without the retained pods, and those pods by task."""
    kept: dict[TaskName, list[ObservedPod]] = {}
    rest: list[ObservedPod] = []
    for pod in observation.pods:
        # Any finished state: a kept pod that an opted-in `rkt gc` marks `exited garbage`
        # must not come back to the planner as a fresh exit (counted twice).
        if pod.uuid in retained and pod.task is not None and pod.state in FINISHED_STATES:
            kept.setdefault(pod.task, []).append(pod)
        else:
            rest.append(pod)
    if not kept:
        return observation, {}
    seen = Observation(pods=tuple(rest), complete=observation.complete, errors=observation.errors)
    return seen, {task: tuple(sorted(pods, key=_age)) for task, pods in kept.items()}


def retain(
    the_plan: Plan,
    observation: Observation,
    retained: Mapping[TaskName, tuple[ObservedPod, ...]],
    desired: DesiredState,
    *,
    keep: int,
    frozen: Callable[[TaskName], bool],
) -> tuple[Plan, tuple[Remove, ...]]:
    """Return the plan with retentions taken out and prunes added, and the retentions.

    `observation` is the one the plan was made from (it has the candidates' times);
    `frozen` names tasks whose pods must not change (suspended). Tasks of an untrusted
    desired state (missing, empty, unreadable names) keep what they have.
    """
    pods = {p.uuid: p for p in observation.pods}
    trusted = not (desired.dir_missing or desired.empty or desired.unnamed_invalid)
    retentions: list[Remove] = []
    pruned = 0
    by_task: dict[TaskName, list[Action]] = {}
    for action in the_plan.actions:
        by_task.setdefault(action.task, []).append(action)
    for task in sorted(set(retained) | set(by_task)):
        if frozen(task):
            continue
        actions = by_task.get(task, [])
        spec = desired.tasks.get(task)
        if not isinstance(spec, TaskSpec):
            if trusted and task not in desired.tasks and task not in desired.duplicates:
                actions = actions + [_prune(p) for p in retained.get(task, ())]
                pruned += len(retained.get(task, ()))
            by_task[task] = actions
            continue
        candidates = [
            a
            for a in actions
            if isinstance(a, Remove)
            and a.reason in _KEPT_REASONS
            and a.uuid in pods
            and pods[a.uuid].state == PodState.EXITED
        ]
        pool = [*retained.get(task, ()), *(pods[a.uuid] for a in candidates)]
        newest = {p.uuid for p in sorted(pool, key=_age, reverse=True)[:keep]}
        new = [a for a in candidates if a.uuid in newest]
        retentions += new
        actions = [a for a in actions if a not in new]
        old: list[Action] = [_prune(p) for p in retained.get(task, ()) if p.uuid not in newest]
        pruned += len(old)
        by_task[task] = actions + old
    if not retentions and not pruned:
        return the_plan, ()
    ordered = [a for task in _task_order(the_plan, by_task) for a in by_task[task]]
    plan = Plan(
        actions=tuple(ordered),
        holds=the_plan.holds,
        requeue_after=the_plan.requeue_after,
        withheld=the_plan.withheld,
    )
    return plan, tuple(retentions)


def _task_order(the_plan: Plan, by_task: Mapping[TaskName, list[Action]]) -> list[TaskName]:
    """Tasks in the plan's order, then the others by name (actions stay grouped by task)."""
    order = list(dict.fromkeys(a.task for a in the_plan.actions))
    return order + sorted(t for t in by_task if t not in order)


def _prune(pod: ObservedPod) -> Remove:
    assert pod.task is not None
    return Remove(task=pod.task, uuid=pod.uuid, reason=Reason.PRUNED, exit_code=pod.exit_code)


def _age(pod: ObservedPod) -> tuple[int, int, str]:
    return (pod.started_at or 0, pod.created_at or 0, pod.uuid)
