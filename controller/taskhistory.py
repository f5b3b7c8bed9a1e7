"""What a task document carries over from pass to pass: conditions, history, errors.

PURE. Each function merges this pass's facts into the previous document's field, so
a transition time, a history entry or the last error outlives the pass that set it
(kstatus conditions; kubectl's last state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controller.model import (
    Reason,
    Remove,
    RunPrepared,
    Signal,
    Start,
)
from controller.phase import Facts, Verdict, failed_termination, failure
from controller.termination import POD_EXITED, short_uuid, termination_doc, termination_summary

HISTORY_LENGTH = 5


def conditions(verdict: Verdict, previous: object, at: str) -> list[dict[str, Any]]:
    old: dict[str, Mapping[str, Any]] = {}
    if isinstance(previous, list):
        for item in previous:
            if isinstance(item, Mapping) and isinstance(item.get("type"), str):
                old[item["type"]] = item
    result = []
    for kind, status in (
        ("Ready", verdict.ready),
        ("Reconciling", verdict.reconciling),
        ("Stalled", verdict.stalled),
    ):
        before = old.get(kind)
        # kstatus: the transition time moves only when the status does.
        if (
            before is not None
            and before.get("status") == status
            and before.get("last_transition_time")
        ):
            transition = before["last_transition_time"]
        else:
            transition = at
        result.append({
            "type": kind,
            "status": status,
            "reason": verdict.reason,
            "message": verdict.message,
            "last_transition_time": transition,
        })  # fmt: skip
    return result


def attempts(facts: Facts) -> list[tuple[str, str, str, bool]]:
    """(spec_hash, result, message, counts_as_attempt) per history-worthy outcome, in order."""
    pod_hash = {p.uuid: p.spec_hash for p in facts.pods}
    events: list[tuple[str, str, str, bool]] = []
    for outcome in facts.outcomes:
        action = outcome.action
        if outcome.skipped or outcome.deferred:
            continue
        if isinstance(action, Start):
            spec_hash: str | None = action.spec_hash
        elif isinstance(action, RunPrepared):
            spec_hash = pod_hash.get(action.uuid) or facts.spec_hash
        elif isinstance(action, Signal) and outcome.ok:
            spec_hash = pod_hash.get(action.uuid)
            if spec_hash:
                changed = ", ".join(action.changed)
                message = (
                    f"sent SIG{action.signal} to pod {short_uuid(action.uuid)} ({changed} changed)"
                )
                events.append((spec_hash, "reloaded", message, False))
            continue
        elif isinstance(action, Remove) and action.reason == Reason.EXITED and outcome.ok:
            spec_hash = pod_hash.get(action.uuid)
            if spec_hash:
                code = action.exit_code
                said = code if code is not None else "unknown"
                message = f"pod {short_uuid(action.uuid)} exited with code {said}"
                events.append((spec_hash, "exited", message, False))
            continue
        else:
            continue
        if not spec_hash:
            continue
        if outcome.ok:
            uuid = outcome.pod_uuid or (action.uuid if isinstance(action, RunPrepared) else None)
            msg = f"started pod {short_uuid(uuid)}" if uuid else "started"
            events.append((spec_hash, "started", msg, True))
        else:
            events.append((spec_hash, "failed", outcome.message or str(outcome.error_code), True))
    return events


def history(previous: object, events: Iterable[tuple[str, str, str, bool]], at: str) -> list[Any]:
    entries: list[dict[str, Any]] = []
    if isinstance(previous, list):
        entries = [dict(e) for e in previous if isinstance(e, Mapping) and e.get("spec_hash")]
    for spec_hash, result, message, counts in events:
        old = next((e for e in entries if e["spec_hash"] == spec_hash), None)
        if old is not None:
            entries.remove(old)
        attempts = int(old.get("attempts", 0)) if old else 0
        entries.insert(0, {
            "spec_hash": spec_hash,
            "first_at": old.get("first_at", at) if old else at,
            "at": at,
            "result": result,
            "message": message,
            "attempts": attempts + (1 if counts else 0),
        })  # fmt: skip
    return entries[:HISTORY_LENGTH]


def last_error(facts: Facts, verdict: Verdict, previous: object, at: str) -> Any:
    failed = failure(facts)
    if failed is not None:
        return {
            "code": failed.error_code or "action_failed",
            "message": failed.message or f"{type(failed.action).__name__} failed",
            "at": at,
        }
    term = failed_termination(facts)
    if term is not None:
        if (
            isinstance(previous, Mapping)
            and previous.get("code") == "unhealthy"
            and f"pod {short_uuid(term.uuid)} " in str(previous.get("message"))
        ):
            # The pod liveness stopped: its end is no crash of its own, keep the reason.
            return dict(previous)
        return {"code": POD_EXITED, "message": termination_summary(term), "at": at}
    if verdict.ready == "True":
        return None  # converged: an old error no longer describes the task
    return dict(previous) if isinstance(previous, Mapping) else None


def last_termination(facts: Facts, previous: object) -> Any:
    """This pass's newly seen termination, else the one the previous document kept: it
    outlives its pod, as kubectl's last state does."""
    if facts.termination is not None:
        return termination_doc(facts.termination)
    return dict(previous) if isinstance(previous, Mapping) else None


def last_exit_code(facts: Facts, previous: object) -> int | None:
    if facts.termination is not None and facts.termination.exit_code is not None:
        return facts.termination.exit_code  # seen this pass: newer than any bookkeeping
    if facts.restart is not None and facts.restart.last_exit_code is not None:
        return facts.restart.last_exit_code
    for outcome in reversed(facts.outcomes):
        action = outcome.action
        if isinstance(action, Remove) and action.exit_code is not None:
            return action.exit_code
    return previous if isinstance(previous, int) and not isinstance(previous, bool) else None
