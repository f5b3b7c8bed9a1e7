"""A task's phase: the precedence rules that turn one pass's facts into a verdict.

PURE. `decide(Facts)` applies the phase rules (see `status.build_task_statuses_memo`)
and says which pod the document shows; `status` builds the document around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from controller.model import (
    FINISHED_STATES,
    LIVE_STATES,
    Hold,
    HoldReason,
    Invalid,
    ObservedPod,
    Outcome,
    PodState,
    RestartState,
    RunPrepared,
    SpecHash,
    Start,
    TaskName,
    TaskSpec,
    Termination,
)
from controller.termination import short_uuid, termination_failed, termination_summary
from controller.timefmt import iso


class TaskPhase(StrEnum):
    """One word per task for tables and alerts; conditions carry the detail."""

    PENDING = "Pending"
    STARTING = "Starting"
    RUNNING = "Running"
    EXITED = "Exited"
    BACKOFF = "Backoff"
    STOPPING = "Stopping"
    INVALID = "Invalid"
    BLOCKED = "Blocked"
    HELD = "Held"
    SUSPENDED = "Suspended"


def hash8(spec_hash: str | None) -> str:
    return (spec_hash or "?")[:8]


# Which pod a task document shows when it has several: the one that matters most.
def _pod_rank(pod: ObservedPod, spec_hash: str | None) -> tuple[int, int, int, int, int]:
    return (
        int(pod.state == PodState.RUNNING and pod.spec_hash == spec_hash),
        int(pod.state == PodState.RUNNING),
        int(pod.state in LIVE_STATES),
        int(pod.state not in FINISHED_STATES),
        pod.started_at or pod.created_at or 0,
    )


def _pick_pod(pods: Sequence[ObservedPod], spec_hash: str | None) -> ObservedPod | None:
    if not pods:
        return None
    return max(pods, key=lambda p: _pod_rank(p, spec_hash))


def _pod_doc(pod: ObservedPod) -> dict[str, Any]:
    return {
        "uuid": pod.uuid,
        "state": str(pod.state),
        "spec_hash": pod.spec_hash,
        "created_at": None if pod.created_at is None else iso(pod.created_at),
        "started_at": None if pod.started_at is None else iso(pod.started_at),
        "exit_code": pod.exit_code,
        "apps": [
            {"name": app.name, "state": app.state, "exit_code": app.exit_code} for app in pod.apps
        ],
    }


def _new_pod_doc(uuid: str, spec_hash: str | None) -> dict[str, Any]:
    """A pod started in this pass: the observation (taken before acting) has not seen it."""
    return {
        "uuid": uuid,
        "state": None,
        "spec_hash": spec_hash,
        "created_at": None,
        "started_at": None,
        "exit_code": None,
        "apps": [],
    }


# --- the per-task facts ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    phase: TaskPhase
    reason: str
    message: str
    ready: str
    reconciling: str
    stalled: str
    pod: dict[str, Any] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    name: TaskName
    entry: TaskSpec | Invalid | None
    duplicate_sources: tuple[str, ...]
    pods: tuple[ObservedPod, ...]
    observed: bool
    outcomes: tuple[Outcome, ...]
    holds: tuple[Hold, ...]
    global_holds: tuple[Hold, ...]
    restart: RestartState | None
    blocked: str | None
    error: str | None
    prior_error: str | None
    """The message of the previous document's last_error, if any."""
    termination: Termination | None
    """A pod of the task seen finished for the first time in this pass."""
    now: float

    @property
    def spec_hash(self) -> SpecHash | None:
        return self.entry.spec_hash if isinstance(self.entry, TaskSpec) else None


_HOLD_REASONS = {
    HoldReason.DELETION_GUARD: "DeletionGuard",
    HoldReason.INCOMPLETE_OBSERVATION: "IncompleteObservation",
    HoldReason.INVALID_SPEC: "UnreadableManifest",
    HoldReason.ROLLOUT_FAILED: "RolloutFailed",
}
# A hold naming a task holds it whatever it is doing; a pass-wide hold (task None)
# holds only the tasks whose next step it blocks. An incomplete `rkt list` stops
# every start and stop; the deletion guard and an unreadable manifest name (which
# might declare any task) only hold stopping pods of tasks no manifest declares.
_OWN_HOLDS = (HoldReason.DELETION_GUARD, HoldReason.INCOMPLETE_OBSERVATION)
_GLOBAL_HOLDS: tuple[tuple[HoldReason, frozenset[TaskPhase]], ...] = (
    (
        HoldReason.INCOMPLETE_OBSERVATION,
        frozenset({TaskPhase.PENDING, TaskPhase.STARTING, TaskPhase.STOPPING}),
    ),
    (HoldReason.DELETION_GUARD, frozenset({TaskPhase.STOPPING})),
    (HoldReason.INVALID_SPEC, frozenset({TaskPhase.STOPPING})),
)


def _verdict(
    phase: TaskPhase,
    reason: str,
    message: str,
    pod: dict[str, Any] | None,
    *,
    ready: str = "False",
    reconciling: str = "False",
    stalled: str = "False",
) -> Verdict:
    return Verdict(phase=phase, reason=reason, message=message, pod=pod, ready=ready,
                    reconciling=reconciling, stalled=stalled)  # fmt: skip


def _started(facts: Facts) -> Outcome | None:
    """The successful Start/RunPrepared of this pass, if any."""
    for outcome in facts.outcomes:
        if isinstance(outcome.action, Start | RunPrepared) and outcome.ok:
            return outcome
    return None


def decide(facts: Facts) -> Verdict:
    """Apply the phase rules in precedence order (see `build_task_statuses`)."""
    spec_hash = facts.spec_hash
    shown = _pick_pod(facts.pods, spec_hash)
    pod = _pod_doc(shown) if shown else None
    entry = facts.entry

    if facts.duplicate_sources:
        sources = ", ".join(facts.duplicate_sources)
        msg = (
            f"task name declared by {len(facts.duplicate_sources)} manifests ({sources}); "
            "none is applied until only one remains"
        )
        return _verdict(TaskPhase.INVALID, "DuplicateName", msg, pod, stalled="True")
    if isinstance(entry, Invalid):
        msg = "; ".join(entry.messages) or f"{entry.source}: invalid manifest"
        if shown is not None and shown.state in LIVE_STATES:
            msg += f" (pod {short_uuid(shown.uuid)} keeps running the last good spec)"
        return _verdict(TaskPhase.INVALID, "InvalidSpec", msg, pod, stalled="True")
    paused = next((h for h in facts.holds if h.reason == HoldReason.SUSPENDED), None)
    if paused is not None:  # spec.suspend / report-only: what it would do, done nothing
        msg = paused.message + (f"; blocked: {facts.blocked}" if facts.blocked else "")
        return _verdict(TaskPhase.SUSPENDED, "Suspended", msg, pod)
    if facts.blocked is not None:
        return _verdict(TaskPhase.BLOCKED, "Blocked", facts.blocked, pod, stalled="True")
    no_path = next((h for h in facts.holds if h.reason == HoldReason.HOST_PATH_MISSING), None)
    if no_path is not None:
        msg = no_path.message
        if shown is not None and shown.state in LIVE_STATES:
            msg += f" (pod {short_uuid(shown.uuid)} keeps running spec {hash8(shown.spec_hash)})"
        return _verdict(TaskPhase.BLOCKED, "HostPathMissing", msg, pod, stalled="True")
    own_hold = next((h for h in facts.holds if h.reason in _OWN_HOLDS), None)
    if own_hold is not None:
        return _held(own_hold, pod)

    if not facts.observed:
        # rkt list failed: what the pods do is unknown this pass; the caller keeps
        # the previous phase and pod and marks every condition Unknown.
        msg = f"rkt list failed: {facts.error}" if facts.error else "rkt list failed"
        return _verdict(TaskPhase.PENDING, "ObservationFailed", msg, None, ready="Unknown",
                        reconciling="Unknown", stalled="Unknown")  # fmt: skip

    base = _base_phase(facts, shown, pod)
    for reason, phases in _GLOBAL_HOLDS:
        hold = next((h for h in facts.global_holds if h.reason == reason), None)
        if hold is not None and base.phase in phases:
            return _held(hold, pod)
    failed = next((h for h in facts.holds if h.reason == HoldReason.ROLLOUT_FAILED), None)
    if failed is not None:
        # The last healthy spec runs (and may well be Ready): only a new manifest can
        # move the task on, so it is Stalled whatever its phase.
        return replace(base, reason="RolloutFailed", message=f"{failed.message}; {base.message}",
                       stalled="True")  # fmt: skip
    return base


def _held(hold: Hold, pod: dict[str, Any] | None) -> Verdict:
    reason = _HOLD_REASONS[hold.reason]
    message = hold.message or f"held: {hold.reason}"
    if hold.reason == HoldReason.INCOMPLETE_OBSERVATION:
        return _verdict(TaskPhase.HELD, reason, message, pod, reconciling="True")
    # Needs a person: fix the desired dir or manifest, or allow the deletion.
    return _verdict(TaskPhase.HELD, reason, message, pod, stalled="True")


def _base_phase(facts: Facts, shown: ObservedPod | None, pod: dict[str, Any] | None) -> Verdict:
    """Phase of a valid, placeable, unheld task (or of an owned pod no longer desired)."""
    entry = facts.entry
    if not isinstance(entry, TaskSpec):
        uuid = short_uuid(shown.uuid) if shown else "?"
        verb = "removing" if shown and shown.state in FINISHED_STATES else "stopping"
        msg = f"no manifest declares this task any more; {verb} pod {uuid}"
        return _verdict(TaskPhase.STOPPING, "NotDesired", msg, pod, reconciling="True")

    spec_hash = entry.spec_hash
    restart = facts.restart
    current_running = any(
        p.state == PodState.RUNNING and p.spec_hash == spec_hash for p in facts.pods
    )
    started = _started(facts)
    if (
        restart is not None
        and restart.not_before is not None
        and restart.not_before > facts.now
        and not current_running
        and started is None
    ):
        # No "in N seconds" here: the message must not change every pass, or the
        # document (and its updated_at) would be rewritten each time.
        parts = [f"next start at {iso(restart.not_before)}"]
        if restart.restarts:
            parts.append(f"{restart.restarts} restarts")
        if restart.last_exit_code is not None:
            parts.append(f"last exit code {restart.last_exit_code}")
        last_error = _error_message(facts)
        if last_error:
            parts.append(f"last error: {last_error}")
        return _verdict(TaskPhase.BACKOFF, "BackOff", "; ".join(parts), pod, reconciling="True")
    if current_running and shown is not None:
        since = f" since {iso(shown.started_at)}" if shown.started_at else ""
        message = f"pod {short_uuid(shown.uuid)} running{since}"
        return _verdict(TaskPhase.RUNNING, "Running", message, pod, ready="True")
    if started is not None:
        new_uuid = started.pod_uuid or (
            started.action.uuid if isinstance(started.action, RunPrepared) else None
        )
        new_pod = _new_pod_doc(new_uuid, spec_hash) if new_uuid else pod
        what = f"pod {short_uuid(new_uuid)}" if new_uuid else "a pod"
        return _verdict(TaskPhase.STARTING, "Starting", f"started {what}", new_pod,
                        reconciling="True")  # fmt: skip
    arriving = [
        p for p in facts.pods if p.spec_hash == spec_hash and p.state not in FINISHED_STATES
    ]
    if arriving:
        first = _pick_pod(arriving, spec_hash)
        assert first is not None
        return _verdict(TaskPhase.STARTING, "Starting",
                        f"pod {short_uuid(first.uuid)} is {first.state}", _pod_doc(first),
                        reconciling="True")  # fmt: skip
    if restart is not None and restart.completed_hash == spec_hash:
        code = restart.last_exit_code
        if code in (None, 0):
            msg = f"completed (exit code {code if code is not None else 'unknown'}); "
            msg += f"restart policy {entry.restart.policy} does not start it again"
            return _verdict(TaskPhase.EXITED, "Completed", msg, pod, ready="True")
        msg = f"failed with exit code {code}; restart policy {entry.restart.policy} "
        msg += "does not start it again until the manifest changes"
        return _verdict(TaskPhase.EXITED, "Failed", msg, pod, stalled="True")
    stale = [p for p in facts.pods if p.state in LIVE_STATES and p.spec_hash != spec_hash]
    failed = failure(facts)
    if stale:
        old = _pick_pod(stale, None)
        assert old is not None
        msg = f"pod {short_uuid(old.uuid)} runs spec {hash8(old.spec_hash)}; "
        msg += f"replacing it with {hash8(spec_hash)}"
        if failed is not None:
            msg += f" failed: {failed.message}"
        return _verdict(TaskPhase.PENDING, "Updating", msg, pod, reconciling="True")
    if failed is not None:
        return _verdict(TaskPhase.PENDING, "StartFailed", f"start failed: {failed.message}", pod,
                        reconciling="True")  # fmt: skip
    busy = next((h for h in facts.holds if h.reason in _UNDER_WAY), None)
    if busy is not None:  # its start (fetch, prepare, run-prepared) is under way beside the loop
        reason = "FetchingImage" if busy.reason == HoldReason.FETCHING else "Starting"
        return _verdict(TaskPhase.STARTING, reason, busy.message, pod, reconciling="True")
    return _verdict(TaskPhase.PENDING, "Pending", "waiting to be started", pod, reconciling="True")


_UNDER_WAY = (HoldReason.IN_PROGRESS, HoldReason.FETCHING)


def failure(facts: Facts) -> Outcome | None:
    """The last failed (attempted, not skipped) action of this task in this pass."""
    failed = [o for o in facts.outcomes if o.failed]
    return failed[-1] if failed else None


def failed_termination(facts: Facts) -> Termination | None:
    """This pass's newly seen termination, if the pod did not end with exit code 0."""
    term = facts.termination
    return term if term is not None and termination_failed(term) else None


def _error_message(facts: Facts) -> str | None:
    """What went wrong most recently: a failed action, a pod that died, or the old error."""
    failed = failure(facts)
    if failed is not None:
        return failed.message
    term = failed_termination(facts)
    return termination_summary(term) if term is not None else facts.prior_error
