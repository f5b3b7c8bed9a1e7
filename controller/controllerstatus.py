"""`controller.json`: the daemon's identity, its last pass, heartbeat and counts.

PURE. Built by `statusfiles` after each pass from the report, the task documents'
summaries and facts about the daemon; the shape is the contract of
`schemas/status.schema.json`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.model import (
    Action,
    HoldReason,
    Outcome,
    PassReport,
)
from controller.phase import TaskPhase
from controller.status import SCHEMA_VERSION
from controller.timefmt import iso


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonInfo:
    """Facts about the running daemon that no PassReport carries."""

    version: str
    pid: int
    started_at: float
    config_path: str | None
    resync_interval_s: float
    node: Mapping[str, str] = field(default_factory=dict)
    config_error: Mapping[str, Any] | None = None
    """The last reload's failure, {at, path, errors}, until a reload succeeds."""


def action_name(action: Action) -> str:
    """Return the snake_case word for an action's kind: start, run_prepared, stop, remove,
    signal."""
    return action.kind


def action_counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """Count outcomes per action kind and result: {"start": n, ..., "failed": n, "skipped": n,
    "deferred": n}."""
    counts = {"start": 0, "run_prepared": 0, "stop": 0, "remove": 0, "signal": 0, "failed": 0,
              "skipped": 0, "deferred": 0}  # fmt: skip
    for outcome in outcomes:
        if outcome.deferred:
            counts["deferred"] += 1
        elif outcome.skipped:
            counts["skipped"] += 1
        elif not outcome.ok:
            counts["failed"] += 1
        else:
            counts[action_name(outcome.action)] += 1
    return counts


def build_controller_status(
    report: PassReport,
    *,
    task_docs: Mapping[str, Mapping[str, Any]],
    daemon: DaemonInfo,
    now: float,
) -> dict[str, Any]:
    """Given a pass report, the task documents built from it, daemon facts and `now`, return
    the `controller.json` document: identity, last pass, heartbeat, counts per phase, rkt
    fingerprint, ignored files, duplicate names, broken unnamed manifests, deletion-guard
    state and the observation's completeness. Never raises for data conditions.
    """
    desired = report.desired
    observation = report.observation
    counts = {str(p): 0 for p in TaskPhase}
    for doc in task_docs.values():
        phase = doc.get("phase")
        if isinstance(phase, str) and phase in counts:
            counts[phase] += 1
    guard = [h for h in report.plan.holds if h.reason == HoldReason.DELETION_GUARD]
    error = None
    if report.error is not None or report.error_code is not None:
        error = {"code": report.error_code or "pass_failed", "message": report.error or ""}
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "controller",
        "version": daemon.version,
        "pid": daemon.pid,
        "started_at": iso(daemon.started_at),
        "config_path": daemon.config_path,
        "resync_interval_s": daemon.resync_interval_s,
        "heartbeat_at": iso(now),
        "last_pass": {
            "id": report.id,
            "trigger": report.trigger,
            "started_at": iso(report.started_at),
            "finished_at": iso(report.finished_at),
            "duration_ms": round(max(report.finished_at - report.started_at, 0.0) * 1000, 3),
            "result": str(report.result),
            "dry_run": report.dry_run,
            "error": error,
            "actions": action_counts(report.outcomes),
        },
        "revision": desired.revision,
        "desired_dir_missing": desired.dir_missing,
        "observation_complete": observation is not None and observation.complete,
        "observation": None
        if observation is None
        else {
            "complete": observation.complete,
            "errors": list(observation.errors),
            "pods": len(observation.pods),
            "owned_pods": len(observation.owned()),
        },
        "tasks": len(task_docs),
        "counts": counts,
        "rkt": dict(sorted(report.fingerprint.items())),
        "ignored_files": sorted(desired.ignored),
        "duplicate_names": {
            name: sorted(sources) for name, sources in sorted(desired.duplicates.items())
        },
        "invalid_manifests": [
            {"source": inv.source, "messages": list(inv.messages)}
            for inv in desired.unnamed_invalid
        ],
        "deletion_guard": {
            "held": bool(guard),
            "message": "; ".join(h.message for h in guard if h.message),
        },
        "holds": [
            {"reason": str(h.reason), "task": h.task, "message": h.message}
            for h in report.plan.holds
            if h.task is None
        ],
        "node": dict(sorted(daemon.node.items())),
        "config_error": None if daemon.config_error is None else dict(daemon.config_error),
    }
