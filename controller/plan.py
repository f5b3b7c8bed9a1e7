"""The planner: desired tasks x observed pods -> the actions of one pass, each with a reason.

PURE. `reconcile` calls `plan()` once per pass (also for `rktctl plan`, which
only prints the result); `actuate` executes the actions in order. No I/O, no
clock (`now` is an argument), no logging: every action carries a `reason` and
every deliberate non-action a `Hold`, and the shell logs and reports them. It
never raises for data conditions. Pods without rktctl's stamp never appear in
any action and do not influence the plan.

Restarts take two passes. A finished pod of the current spec is only removed
(`Remove(EXITED, exit_code=...)`, with no Start for its task in that plan and a
short `requeue_after`); the shell then calls `backoff.record_exit`, which sets
`RestartState.not_before` (or `completed_hash` when the restart policy says the
task is done). The next pass sees the task without a live pod and starts it
once `now >= not_before`, or holds it (`Hold(BACKOFF)`, `requeue_after` = the
time left). Finished pods of an old spec, or that never ran (aborted prepare),
are not crashes: they are removed and the task started in the same plan. Every
Start and RunPrepared passes the same gates: the task is not blocked, no pod of
it is in a transitional state, its spec is not completed, and it is not backing
off.

Decisions (see each rule's test in tests/unit/test_plan.py):
- A `RestartState` whose `spec_hash` names another spec does not delay a start:
  a spec change clears the backoff (the shell also resets such state).
- A pod in an UNKNOWN state is treated as transitional: no action, requeue.
- A `prepared` pod is never stopped (`rkt stop` refuses it); it is only removed.
- Deletions (the deletion guard's unit) are live owned pods ended because their
  task is not desired here (NOT_DESIRED, CONSTRAINTS_UNMET); removing finished
  pods is never a deletion.
- An Invalid or duplicate-name task gets nothing at all, not even the removal of
  its finished pods; with `unnamed_invalid` files, neither do undesired tasks.
- A prepared leftover of a completed spec is removed rather than run.
- A start after recorded crashes of the current spec says RESTART, else MISSING.
- A task whose absolute volume host path is missing (`missing_host_paths`, found by
  the shell) is held (HOST_PATH_MISSING): no Start or RunPrepared, and a live pod of an
  older spec is not ended for it; a running pod of the current spec is left alone.
- `serving` (from `rollout`, tasks with `spec.health` and start-first only): the old
  spec's running pod keeps serving beside the new spec's until the rollout is done,
  so it is neither a duplicate nor replaced in the plan that starts the new pod; once
  it is no longer serving, it is ended as SPEC_CHANGED.
- Holds come task-less first (unnamed invalid files, deletion guard), then per
  task in task order; an incomplete observation yields only its own hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from controller.model import (
    FINISHED_STATES,
    LIVE_STATES,
    Action,
    DesiredState,
    Hold,
    HoldReason,
    Invalid,
    Observation,
    ObservedPod,
    Plan,
    PodState,
    PodUUID,
    Reason,
    Remove,
    RestartPolicy,
    RestartState,
    RunPrepared,
    SpecHash,
    Start,
    Stop,
    TaskName,
    TaskSpec,
    UpdateOrder,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanPolicy:
    """The knobs of the planner (from Config and `--force`)."""

    max_delete_fraction: float = 0.5
    """Hold every deletion when one pass would delete more than
    max(1, floor(fraction * live owned pods)) pods. The max(1, ...) lets a host
    with a single live pod delete it, e.g. when its manifest is renamed to another
    task; an empty or missing directory holds every deletion regardless."""
    allow_empty: bool = False
    """Disable the deletion guard (`allow_empty` in config, `--force`)."""
    requeue_transitional_s: float = 1.0
    """Plan again this soon when pods are embryo/preparing/deleting/unknown, the
    observation was incomplete, or a crash was just removed (two-pass restarts)."""


_NO_RESTARTS: Mapping[TaskName, RestartState] = MappingProxyType({})
_NO_BLOCKED: Mapping[TaskName, str] = MappingProxyType({})
_DEFAULT_POLICY = PlanPolicy()

_DELETION_REASONS = frozenset({Reason.NOT_DESIRED, Reason.CONSTRAINTS_UNMET})
# Finished without an app ever exiting: not a crash of the task.
_NEVER_RAN_STATES = frozenset({PodState.ABORTED_PREPARE, PodState.GARBAGE})


def plan(
    desired: DesiredState,
    observation: Observation,
    *,
    now: float,
    restarts: Mapping[TaskName, RestartState] = _NO_RESTARTS,
    blocked: Mapping[TaskName, str] = _NO_BLOCKED,
    missing_host_paths: Mapping[TaskName, str] = _NO_BLOCKED,
    policy: PlanPolicy = _DEFAULT_POLICY,
    unhealthy: frozenset[PodUUID] = frozenset(),
    serving: Mapping[TaskName, PodUUID] = MappingProxyType({}),
) -> Plan:
    """Return the actions that move the owned pods toward `desired`, and what was held back.

    Given the parsed desired directory, one `rkt list` snapshot, the current Unix
    time, the per-task restart bookkeeping, the tasks that cannot run on this host
    (name -> why), the tasks whose volume host paths are missing (name -> which) and
    the running pods that failed their health check (liveness: restarted), return a
    Plan whose actions are sorted by task and, within
    a task, in execution order (a Stop is always directly followed by the Remove
    of the same pod). `requeue_after` is the shortest wait after which planning
    again may do something new (a pod in transition, a backoff ending), else None.
    Never raises for any combination of inputs.
    """
    if not observation.complete:
        first = f": {observation.errors[0]}" if observation.errors else ""
        hold = Hold(
            reason=HoldReason.INCOMPLETE_OBSERVATION,
            message=f"rkt list could not read every pod{first}; "
            "nothing is started, stopped or removed until it can",
        )
        return Plan(holds=(hold,), requeue_after=policy.requeue_transitional_s)

    pods_by_task: dict[TaskName, list[ObservedPod]] = {}
    for pod in observation.pods:
        if pod.task is not None:
            pods_by_task.setdefault(pod.task, []).append(pod)
    for pods in pods_by_task.values():
        pods.sort(key=lambda p: p.uuid)

    names = sorted(set(desired.tasks) | set(desired.duplicates) | set(pods_by_task))
    out = _Builder()
    for name in names:
        pods = pods_by_task.get(name, [])
        entry = desired.tasks.get(name)
        if name in desired.duplicates:
            sources = ", ".join(desired.duplicates[name])
            out.hold(
                HoldReason.DUPLICATE_NAME,
                name,
                f"task {name!r} is declared by several manifests ({sources}); none is "
                "applied and its pods are left alone until only one declares it",
            )
        elif isinstance(entry, Invalid):
            out.hold(
                HoldReason.INVALID_SPEC,
                name,
                f"{entry.source}: {'; '.join(entry.messages)} "
                "(the task's pods are left as they are until the manifest is fixed)",
            )
        elif isinstance(entry, TaskSpec):
            _plan_task(
                out,
                name,
                entry,
                pods,
                state=restarts.get(name),
                why_blocked=blocked.get(name),
                why_no_path=missing_host_paths.get(name),
                now=now,
                policy=policy,
                unhealthy=unhealthy,
                serving=serving.get(name),
            )
        elif not desired.unnamed_invalid:
            _plan_not_desired(out, name, pods, policy=policy)
        # else: a broken manifest without a readable name may declare this task.

    global_holds: list[Hold] = []
    if desired.unnamed_invalid:
        files = ", ".join(i.source for i in desired.unnamed_invalid)
        global_holds.append(
            Hold(
                reason=HoldReason.INVALID_SPEC,
                message=f"cannot read the task name in {files}; owned pods of tasks no "
                "manifest declares are left alone until it is fixed",
            )
        )
    actions = out.actions
    guard = _deletion_guard(desired, observation, out.deletions, policy)
    if guard is not None:
        held = {uuid for uuid, _ in out.deletions}
        actions = [
            a
            for a in actions
            if not (
                isinstance(a, Stop | Remove) and a.uuid in held and a.reason in _DELETION_REASONS
            )
        ]
        global_holds.append(guard)
    return Plan(
        actions=tuple(actions),
        holds=(*global_holds, *out.holds),
        requeue_after=min(out.requeues) if out.requeues else None,
    )


@dataclass(slots=True)
class _Builder:
    """The plan under construction (mutable, private to one `plan()` call)."""

    actions: list[Action] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    requeues: list[float] = field(default_factory=list)
    deletions: list[tuple[PodUUID, TaskName]] = field(default_factory=list)

    def hold(self, reason: HoldReason, task: TaskName, message: str) -> None:
        self.holds.append(Hold(reason=reason, task=task, message=message))

    def end(self, task: TaskName, pod: ObservedPod, reason: Reason) -> None:
        """End a live pod: stop it if it runs, then remove it."""
        if pod.state == PodState.RUNNING:
            self.actions.append(Stop(task=task, uuid=pod.uuid, reason=reason))
        self.actions.append(Remove(task=task, uuid=pod.uuid, reason=reason))
        if reason in _DELETION_REASONS:
            self.deletions.append((pod.uuid, task))


def _split(
    pods: Sequence[ObservedPod],
) -> tuple[list[ObservedPod], list[ObservedPod], list[ObservedPod]]:
    """Return (live, finished, transitional) pods; anything unrecognised is transitional."""
    live: list[ObservedPod] = []
    finished: list[ObservedPod] = []
    transitional: list[ObservedPod] = []
    for pod in pods:  # once per task per pass: one loop, not three
        state = pod.state
        (
            live if state in LIVE_STATES else finished if state in FINISHED_STATES else transitional
        ).append(pod)
    return live, finished, transitional


def _pick_kept(live: Sequence[ObservedPod], current: SpecHash) -> ObservedPod | None:
    """Return the live pod to keep: running over prepared, current spec over old, then
    the newest (started_at, then created_at; unknown times count as oldest), then the
    highest uuid, so the choice never depends on the order rkt listed the pods in."""
    if len(live) < 2:  # the usual case: max() and its key are for a choice
        return live[0] if live else None
    return max(
        live,
        key=lambda p: (
            p.state == PodState.RUNNING,
            p.spec_hash == current,
            p.started_at is not None,
            p.started_at or 0,
            p.created_at is not None,
            p.created_at or 0,
            p.uuid,
        ),
    )


def _plan_task(
    out: _Builder,
    name: TaskName,
    spec: TaskSpec,
    pods: Sequence[ObservedPod],
    *,
    state: RestartState | None,
    why_blocked: str | None,
    why_no_path: str | None,
    now: float,
    policy: PlanPolicy,
    unhealthy: frozenset[PodUUID] = frozenset(),
    serving: PodUUID | None = None,
) -> None:
    """Plan one valid desired task: clean up, keep at most one live pod, start if allowed."""
    current = spec.spec_hash
    live, finished, transitional = _split(pods)
    if transitional:
        out.requeues.append(policy.requeue_transitional_s)
    just_exited = False
    for p in finished:
        if p.state in _NEVER_RAN_STATES:
            reason = Reason.ABORTED
        elif p.spec_hash == current:
            reason = Reason.EXITED
            just_exited = True
        else:
            reason = Reason.SPEC_CHANGED
        out.actions.append(Remove(task=name, uuid=p.uuid, reason=reason, exit_code=p.exit_code))

    kept = _pick_kept(live, current)
    for p in live:
        if p is kept or p.uuid == serving:
            continue
        if p.state != PodState.RUNNING:
            out.end(name, p, Reason.STALE_PREPARED)
        elif spec.health is not None and kept is not None and _replaces(kept, p, current):
            out.end(name, p, Reason.SPEC_CHANGED)  # a health-gated rollout is done
        else:
            out.end(name, p, Reason.DUPLICATE)

    if why_blocked is not None:
        out.hold(HoldReason.BLOCKED, name, why_blocked)
        if kept is not None:
            out.end(name, kept, Reason.CONSTRAINTS_UNMET)
        return
    if kept is not None and kept.state == PodState.RUNNING and kept.spec_hash == current:
        if kept.uuid in unhealthy and spec.restart.policy != RestartPolicy.NEVER:
            # Liveness: end it; its removal counts as an exit under the restart policy,
            # so the next start waits for the crash-loop backoff. Under `never` nothing
            # would start again: the pod is left running, Unhealthy and not Ready.
            out.end(name, kept, Reason.UNHEALTHY)
            out.requeues.append(policy.requeue_transitional_s)
        return  # converged
    if why_no_path is not None:
        # rkt would refuse the pod: start nothing, and end no live pod of an older spec
        # for it (a stop-first replacement would leave nothing running).
        out.hold(HoldReason.HOST_PATH_MISSING, name, why_no_path)
        return

    if just_exited:
        # Two passes: the shell records this exit (backoff.record_exit) after the
        # Remove; the next pass, soon, starts the task under the updated RestartState.
        out.requeues.append(policy.requeue_transitional_s)
    gate = _start_gate(name, spec, state, now)
    if gate is not None:
        out.holds.append(gate[0])
        if gate[1] is not None:
            out.requeues.append(gate[1])
    may_start = gate is None and not transitional and not just_exited

    if kept is not None and kept.state == PodState.PREPARED:
        completed = gate is not None and gate[0].reason == HoldReason.RESTART_NEVER
        if kept.spec_hash == current and not completed:
            # A crash between `prepare` and `run-prepared`: finish that start.
            if may_start:
                out.actions.append(
                    RunPrepared(task=name, uuid=kept.uuid, reason=Reason.PREPARED_LEFTOVER)
                )
            return
        out.end(name, kept, Reason.STALE_PREPARED)
        kept = None

    if kept is None:
        if may_start:
            reason = _start_reason(state, current)
            out.actions.append(Start(task=name, spec_hash=current, reason=reason))
        return

    # `kept` runs an old spec: replace it.
    start = Start(task=name, spec_hash=current, reason=Reason.SPEC_CHANGED)
    if serving is not None and serving == kept.uuid:
        # Health-gated start-first: the old pod is ended only once the new one has
        # been Healthy for min_healthy_time (a later plan, without `serving`).
        if may_start:
            out.actions.append(start)
        return
    if spec.update_order == UpdateOrder.START_FIRST and not spec.has_static_ports:
        # The old pod serves until the new one is up, so it is stopped only in the
        # same plan as that Start (actuate skips the Stop if the Start fails).
        if may_start:
            out.actions.append(start)
            out.end(name, kept, Reason.SPEC_CHANGED)
        return
    # stop-first: two pods of one task would collide on its host ports.
    out.end(name, kept, Reason.SPEC_CHANGED)
    if may_start:
        out.actions.append(start)


def _replaces(kept: ObservedPod, old: ObservedPod, current: SpecHash) -> bool:
    """The current spec's running pod is kept and `old` runs another spec."""
    return kept.state == PodState.RUNNING and kept.spec_hash == current != old.spec_hash


def _start_gate(
    name: TaskName, spec: TaskSpec, state: RestartState | None, now: float
) -> tuple[Hold, float | None] | None:
    """Return why a new pod of `spec` must not start now (and when to look again), or None."""
    if state is None:
        return None
    if state.completed_hash == spec.spec_hash:
        code = f" (exit code {state.last_exit_code})" if state.last_exit_code is not None else ""
        hold = Hold(
            reason=HoldReason.RESTART_NEVER,
            task=name,
            message=f"the task's pod finished{code} and restart policy "
            f"{spec.restart.policy.value!r} does not run it again; "
            "change the manifest to run it again",
        )
        return hold, None
    backing_off = state.not_before is not None and state.not_before > now
    if backing_off and state.spec_hash in (None, spec.spec_hash):
        assert state.not_before is not None
        remaining = state.not_before - now
        details = []
        if state.restarts:
            details.append(f"{state.restarts} restart(s)")
        if state.last_exit_code is not None:
            details.append(f"last exit code {state.last_exit_code}")
        why = f" ({', '.join(details)})" if details else ""
        hold = Hold(
            reason=HoldReason.BACKOFF,
            task=name,
            message=f"backing off: next start in {remaining:.1f}s{why}",
        )
        return hold, remaining
    return None


def _start_reason(state: RestartState | None, current: SpecHash) -> Reason:
    """RESTART when the current spec's pod exited before (a crash loop), else MISSING."""
    if state is not None and state.restarts > 0 and state.spec_hash in (None, current):
        return Reason.RESTART
    return Reason.MISSING


def _plan_not_desired(
    out: _Builder, name: TaskName, pods: Sequence[ObservedPod], *, policy: PlanPolicy
) -> None:
    """Plan an owned task no manifest declares: end its live pods, remove finished ones."""
    live, finished, transitional = _split(pods)
    if transitional:
        out.requeues.append(policy.requeue_transitional_s)
    for p in finished:
        out.actions.append(
            Remove(task=name, uuid=p.uuid, reason=Reason.NOT_DESIRED, exit_code=p.exit_code)
        )
    for p in live:
        out.end(name, p, Reason.NOT_DESIRED)


def _deletion_guard(
    desired: DesiredState,
    observation: Observation,
    deletions: Sequence[tuple[PodUUID, TaskName]],
    policy: PlanPolicy,
) -> Hold | None:
    """Return a DELETION_GUARD hold when the planned deletions look like an accident."""
    if not deletions or policy.allow_empty:
        return None
    live_owned = sum(1 for p in observation.pods if p.owned and p.state in LIVE_STATES)
    limit = max(1, math.floor(policy.max_delete_fraction * live_owned))
    tasks = ", ".join(sorted({task for _, task in deletions}))
    n = len(deletions)
    advice = "set allow_empty (or --force) to delete them anyway"
    if desired.dir_missing:
        why = "the desired directory is missing or unreadable"
    elif desired.empty:
        why = "the desired directory holds no manifest"
    elif n > limit:
        why = (
            f"this pass would delete {n} of {live_owned} live owned pods, more than "
            f"{limit} (max_delete_fraction={policy.max_delete_fraction:g})"
        )
    else:
        return None
    return Hold(
        reason=HoldReason.DELETION_GUARD,
        message=f"{why}: holding the deletion of {n} pod(s) of {tasks}; {advice}",
    )
