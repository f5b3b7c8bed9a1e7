"""What a task's health checks mean for its status document (`spec.health`).

PURE. `status` asks this module three things of a task with a check: is the Running
verdict Ready (the gate), which pods did liveness stop this pass (history events),
and the `health` block of the document. The check results themselves come from
`probes` through `PassReport.health`; their timing rules live in `health`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from controller import health
from controller.model import HealthState, HealthView, Reason, RestartPolicy, Stop, TaskSpec
from controller.phase import Facts, TaskPhase, Verdict
from controller.termination import short_uuid
from controller.timefmt import iso


def health_gate(verdict: Verdict, entry: object, view: HealthView | None) -> Verdict:
    """A Running task with `spec.health` is Ready only once its pod's check passes."""
    if verdict.phase != TaskPhase.RUNNING or not isinstance(entry, TaskSpec):
        return verdict
    if entry.health is None:
        return verdict
    pod = verdict.pod or {}
    # A Stalled reason (RolloutFailed) outranks the check's progress: it needs a person.
    keep = verdict.stalled == "True"
    if view is not None and view.pod == pod.get("uuid") and view.state == HealthState.HEALTHY:
        return dataclasses.replace(verdict, message=f"{verdict.message}; healthy")
    if view is not None and view.pod == pod.get("uuid") and view.state == HealthState.UNHEALTHY:
        action = (
            "left running (restart policy never)"
            if entry.restart.policy == RestartPolicy.NEVER
            else "restarting it"
        )
        msg = f"{verdict.message}; unhealthy, {action}: {health.summary(view)}"
        reason = verdict.reason if keep else "Unhealthy"
        return dataclasses.replace(verdict, reason=reason, message=msg, ready="False",
                                   reconciling="True")  # fmt: skip
    said = health.summary(view) if view is not None else "health check not run yet"
    msg = f"{verdict.message}; {said}"
    reason = verdict.reason if keep else "HealthChecking"
    return dataclasses.replace(verdict, reason=reason, ready="False",
                               reconciling="True", message=msg)  # fmt: skip


def liveness_events(facts: Facts, view: HealthView | None) -> list[tuple[str, str, str, bool]]:
    """A history event per pod this pass stopped because it failed its health check."""
    events: list[tuple[str, str, str, bool]] = []
    for outcome in facts.outcomes:
        action = outcome.action
        if not (isinstance(action, Stop) and action.reason == Reason.UNHEALTHY and outcome.ok):
            continue
        said = f": {health.summary(view)}" if view is not None and view.pod == action.uuid else ""
        msg = f"pod {short_uuid(action.uuid)} failed its health check{said}; stopped to restart it"
        spec_hash = facts.spec_hash
        if spec_hash:
            events.append((spec_hash, "unhealthy", msg, False))
    return events


def health_doc(view: HealthView) -> dict[str, Any]:
    """The `health` block of a task document: the state and the last check's result."""
    last = view.last
    return {
        "state": str(view.state),
        "pod_uuid": view.pod,
        "since": iso(view.since),
        "consecutive_failures": view.consecutive_failures,
        "consecutive_successes": view.consecutive_successes,
        "last_check": None if last is None else {
            "ok": last.ok, "at": iso(last.at),
            "duration_ms": round(last.duration_s * 1000, 1), "output": last.output,
        },
    }  # fmt: skip
