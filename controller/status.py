"""Task status documents: what one pass saw and did for each task, as JSON-ready dicts.

PURE. Given a `PassReport`, the previous task documents, `now` and the memo of the
previous build, build the `tasks/<name>.json` documents that `statusfiles` writes,
skipping every task whose inputs did not change (`build_task_statuses_memo`). Never
reads a clock, a file or the environment: every time is an argument, so the same
report always gives the same documents. The phase rules live in `phase`, the fields
carried over from pass to pass in `taskhistory`, a finished pod's text in
`termination`; `controllerstatus` builds controller.json and `statustable` is the
reading side (`rktctl status`). The shapes are the contract of
`schemas/status.schema.json`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.healthstatus import health_doc, health_gate, liveness_events
from controller.model import (
    DesiredState,
    HealthView,
    Hold,
    Invalid,
    ObservedPod,
    Outcome,
    PassReport,
    RestartState,
    TaskName,
    TaskSpec,
    Termination,
)
from controller.phase import Facts, TaskPhase, decide
from controller.taskhistory import (
    attempts,
    conditions,
    history,
    last_error,
    last_exit_code,
    last_termination,
)
from controller.timefmt import iso, optional_iso

SCHEMA_VERSION = 1


# --- public builders -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskMemo:
    """What one task's document was built from, so an unchanged task is not built again.

    `key` holds every input of the document but the previous document itself (see
    `_memo_key`); `settled` says the document it gave was already its own fixpoint
    (building it again from itself changed nothing), so it can be reused as is.
    `summary` is the part of the document that controller.json and the metrics read
    (`phase`, `restarts`, `last_exit_code`, and `health` where the task has a check),
    so they never need the whole document.
    """

    key: tuple[object, ...]
    settled: bool
    summary: Mapping[str, Any]


def build_task_statuses(
    report: PassReport, *, previous: Mapping[str, Mapping[str, Any]], now: float
) -> dict[str, dict[str, Any]]:
    """Given a pass report, the previous task documents by name and `now`, return the new ones.

    See `build_task_statuses_memo`; without a memo every document is built.
    """
    return build_task_statuses_memo(report, previous=previous, now=now, memo={})[0]


def summaries(memo: Mapping[str, TaskMemo]) -> dict[str, Mapping[str, Any]]:
    """Every task's `TaskMemo.summary` by name: what `build_controller_status` and the
    metrics read of the documents."""
    return {name: entry.summary for name, entry in memo.items()}


def build_task_statuses_memo(
    report: PassReport,
    *,
    previous: Mapping[str, Mapping[str, Any]],
    now: float,
    memo: Mapping[str, TaskMemo],
    sink: Callable[[str, dict[str, Any]], None] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, TaskMemo]]:
    """Given a pass report, the previous task documents by name, `now` and the memo the
    previous call returned, return the documents built this time and the new memo.
    With `sink`, each built document is handed to `sink(name, doc)` as soon as it is
    built instead of being returned (a cold start need not hold them all at once).

    One document per task name known from the desired state (valid, invalid or
    duplicated) and per owned pod whose task is no longer desired (while its pod
    exists). Phase precedence: Invalid > Suspended > Blocked > Held > Backoff > Running >
    Starting > Exited > Stopping > Pending; a running pod of the current spec
    wins over a pending backoff. When `rkt list` failed (no observation), each
    task keeps its previous phase and pod with every condition Unknown, and
    documents of tasks that are no longer desired are carried over unchanged (their
    pods may still exist). A document whose content did not change keeps its
    `updated_at`, so callers can skip rewriting it.

    The memo has an entry for every task this pass has a document for. A task whose
    inputs equal its memo entry's, with no action outcome or newly ended pod this
    pass, is not built at all: it is absent from the returned documents (its previous
    document stands, and `previous` is not even read for it), so an idle pass costs
    almost nothing per task. Never raises for data conditions.
    """
    desired = report.desired
    observation = report.observation
    pods_by_task: dict[TaskName, list[ObservedPod]] = {}
    if observation is not None:
        for pod in observation.owned():
            if pod.task is not None:
                pods_by_task.setdefault(pod.task, []).append(pod)
    outcomes_by_task: dict[TaskName, list[Outcome]] = {}
    for outcome in report.outcomes:
        outcomes_by_task.setdefault(outcome.action.task, []).append(outcome)
    holds_by_task: dict[TaskName, list[Hold]] = {}
    global_holds = []
    for hold in report.plan.holds:
        if hold.task is None:
            global_holds.append(hold)
        else:
            holds_by_task.setdefault(hold.task, []).append(hold)
    global_tuple = tuple(global_holds)

    names: set[TaskName] = set(desired.tasks) | set(desired.duplicates) | set(pods_by_task)
    docs: dict[str, dict[str, Any]] = {}
    new_memo: dict[str, TaskMemo] = {}
    if observation is None:
        for name, doc in previous.items():
            if name not in names:
                if sink is None:
                    docs[name] = dict(doc)
                else:
                    sink(name, dict(doc))
                new_memo[name] = TaskMemo(key=(), settled=False, summary=_summary(doc))
    at = iso(now)
    no_pods: tuple[ObservedPod, ...] = ()
    for name in sorted(names):
        entry = None if name in desired.duplicates else desired.tasks.get(name)
        restart = report.restarts.get(name)
        spec_hash = entry.spec_hash if isinstance(entry, TaskSpec) else None
        if restart is not None and restart.spec_hash not in (None, spec_hash):
            restart = None  # counters of another spec: the new spec starts afresh
        outcomes = outcomes_by_task.get(name)
        ended = report.terminations.get(name)
        task_pods = tuple(pods_by_task[name]) if name in pods_by_task else no_pods
        holds = tuple(holds_by_task[name]) if name in holds_by_task else ()
        retry_at = report.retries.get(name)
        kept = report.retained.get(name, no_pods)
        key = _memo_key(
            entry=entry,
            duplicates=desired.duplicates.get(name, ()),
            pods=task_pods,
            observed=observation is not None,
            holds=holds,
            global_holds=global_tuple,
            restart=restart,
            blocked=report.blocked.get(name),
            error=report.error,
            retry_at=retry_at,
            revision=source_revision(desired, entry),
            now=now,
            retained=kept,
            log_locations=tuple(report.log_locations.get(p.uuid) for p in kept) if kept else (),
            health=report.health.get(name),
        )
        old = memo.get(name)
        if (
            old is not None
            and old.settled
            and not outcomes
            and ended is None
            and old.key == key
            and name in previous
        ):
            # Its document stands as it is. The new key holds this pass's pods, so the
            # memo never keeps an older observation alive.
            new_memo[name] = TaskMemo(key=key, settled=True, summary=old.summary)
            continue
        before = previous.get(name) or {}
        term = _new_termination(ended, before)
        facts = Facts(
            name=name,
            entry=entry,
            duplicate_sources=tuple(sorted(desired.duplicates.get(name, ()))),
            pods=task_pods,
            observed=observation is not None,
            outcomes=tuple(outcomes or ()),
            holds=holds,
            global_holds=global_tuple,
            restart=restart,
            blocked=report.blocked.get(name),
            error=report.error,
            prior_error=_prior_error(before),
            termination=term,
            now=now,
        )
        doc, unchanged = _task_doc(facts, report, before, at)
        if sink is None:
            docs[name] = doc
        else:
            sink(name, doc)
        # Only a document that building did not change is a fixpoint worth reusing.
        settled = unchanged and not outcomes and term is None
        new_memo[name] = TaskMemo(key=key, settled=settled, summary=_summary(doc))
    return docs, new_memo


def pass_inputs(report: PassReport, now: float) -> tuple[object, ...] | None:
    """Everything `build_task_statuses_memo` reads of a pass besides `previous` and the
    memo; None for a pass with action outcomes or ended pods (those always build).

    Two passes with equal inputs make equal memo keys for every task. So after a build
    that left every task settled, a pass with the same inputs would skip every task:
    the caller may skip the whole build (a no-change resync at 10k tasks is then a few
    comparisons of objects the last pass mostly shares, not 10k keys built and compared).
    `now` enters as the tasks whose backoff or retry is still ahead, as in `_memo_key`.
    """
    if report.outcomes or report.terminations:
        return None
    observation = report.observation
    backoffs_ahead = frozenset(
        name
        for name, restart in report.restarts.items()
        if restart.not_before is not None and restart.not_before > now
    )
    retries_ahead = frozenset(name for name, at in report.retries.items() if at > now)
    return (
        report.desired.tasks, report.desired.duplicates, report.desired.source_revisions,
        None if observation is None else observation.pods, report.plan.holds,
        report.restarts, report.blocked, report.retries, report.error, report.retained,
        report.log_locations, report.health, backoffs_ahead, retries_ahead,
    )  # fmt: skip


def _summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    summary = {k: doc.get(k) for k in ("phase", "restarts", "last_exit_code")}
    if doc.get("health") is not None:  # the health metrics read it (healthmetrics)
        summary["health"] = doc["health"]
    return summary


def source_revision(desired: DesiredState, entry: object) -> str | None:
    """The revision of one task's own manifest (its content hash), or None if unknown."""
    source = getattr(entry, "source", None)
    return desired.source_revisions.get(source) if isinstance(source, str) else None


def _memo_key(
    *,
    entry: TaskSpec | Invalid | None,
    duplicates: Sequence[str],
    pods: tuple[ObservedPod, ...],
    observed: bool,
    holds: tuple[Hold, ...],
    global_holds: tuple[Hold, ...],
    restart: RestartState | None,
    blocked: str | None,
    error: str | None,
    retry_at: float | None,
    revision: str | None,
    now: float,
    retained: tuple[ObservedPod, ...] = (),
    log_locations: tuple[str | None, ...] = (),
    health: HealthView | None = None,
) -> tuple[object, ...]:
    """Every input of a task document besides the previous document.

    `now` enters only through the two comparisons the rules make with it (a backoff
    or a failed stop's retry still ahead), so the key of an idle task stays equal
    from pass to pass and changes the moment either deadline passes.
    """
    backoff_ahead = (
        restart is not None and restart.not_before is not None and restart.not_before > now
    )
    retry_ahead = retry_at is not None and retry_at > now
    return (entry, tuple(duplicates), pods, observed, holds, global_holds, restart, blocked,
            error, retry_at, backoff_ahead, retry_ahead, revision, retained, log_locations,
            health)  # fmt: skip


def _new_termination(term: Termination | None, previous: Mapping[str, Any]) -> Termination | None:
    """`term` unless the previous document already recorded that pod's end."""
    last = previous.get("last_termination")
    if term is not None and isinstance(last, Mapping) and last.get("pod_uuid") == term.uuid:
        return None
    return term


def _prior_error(previous: Mapping[str, Any]) -> str | None:
    last_error = previous.get("last_error")
    message = last_error.get("message") if isinstance(last_error, Mapping) else None
    return message if isinstance(message, str) else None


def _task_doc(
    facts: Facts, report: PassReport, previous: Mapping[str, Any], at: str
) -> tuple[dict[str, Any], bool]:
    """The task's document, and whether it equals `previous` but for `updated_at`."""
    view = report.health.get(facts.name)
    verdict = health_gate(decide(facts), facts.entry, view)
    phase = verdict.phase
    pod = verdict.pod
    if not facts.observed:
        # No observation: the last known pod is the best there is.
        old_pod = previous.get("pod")
        pod = dict(old_pod) if isinstance(old_pod, Mapping) else None
    if verdict.reason == "ObservationFailed":
        known = {str(p) for p in TaskPhase}
        old_phase = previous.get("phase")
        phase = TaskPhase(old_phase) if old_phase in known else TaskPhase.PENDING
    entry = facts.entry
    if facts.duplicate_sources:
        source: str | None = facts.duplicate_sources[0]
    elif entry is not None:
        source = entry.source or None
    else:
        source = None
    restart = facts.restart
    restarts = restart.restarts if restart is not None else 0
    next_retry = restart.not_before if restart is not None and phase == TaskPhase.BACKOFF else None
    message = verdict.message.replace("\n", " ")
    retry_at = report.retries.get(facts.name)
    if next_retry is None and retry_at is not None and retry_at > facts.now:
        # A failed stop or remove backs off (the task's other actions wait with it).
        next_retry = retry_at
        message += f"; next attempt at {iso(retry_at)}"
    since = previous.get("since") if previous.get("phase") == phase else None
    liveness = liveness_events(facts, view)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "task",
        "name": facts.name,
        "source": source,
        "spec_hash": facts.spec_hash,
        "revision": source_revision(report.desired, entry),
        "phase": str(phase),
        "since": since if isinstance(since, str) else at,
        "message": message,
        "conditions": conditions(verdict, previous.get("conditions"), at),
        "pod": pod,
        "restarts": restarts,
        "last_exit_code": last_exit_code(facts, previous.get("last_exit_code")),
        "next_retry_at": optional_iso(next_retry),
        "last_error": last_error(facts, verdict, previous.get("last_error"), at),
        "last_termination": last_termination(facts, previous.get("last_termination")),
        "history": history(previous.get("history"), attempts(facts) + liveness, at),
    }
    kept = _retained_docs(report, facts.name) if facts.observed else previous.get("retained_pods")
    if kept:  # only when there are some: documents of other tasks keep their shape
        doc["retained_pods"] = kept
    if liveness:
        doc["last_error"] = {"code": "unhealthy", "message": liveness[-1][2], "at": at}
    if isinstance(entry, TaskSpec) and entry.health is not None:
        same_pod = view is not None and pod is not None and view.pod == pod.get("uuid")
        doc["health"] = health_doc(view) if view is not None and same_pod else None
    old_updated = previous.get("updated_at")
    unchanged = {k: v for k, v in previous.items() if k != "updated_at"} == doc
    doc["updated_at"] = old_updated if unchanged and isinstance(old_updated, str) else at
    return doc, unchanged


def _retained_docs(report: PassReport, task: TaskName) -> list[dict[str, Any]]:
    """The task's exited pods kept for a post-mortem (`retention`), newest first."""
    docs = []
    for pod in reversed(report.retained.get(task, ())):
        ends = [a.finished_at_ns for a in pod.apps if a.finished_at_ns]
        where = report.log_locations.get(pod.uuid)
        docs.append(
            {
                "uuid": pod.uuid,
                "spec_hash": pod.spec_hash,
                "exit_code": pod.exit_code,
                "started_at": optional_iso(pod.started_at),
                "finished_at": optional_iso(max(ends) / 1e9) if ends else None,
                "log": where,
                "inspect": _inspect(pod.uuid, where),
            }
        )
    return docs


def _inspect(uuid: str, where: str | None) -> str:
    """How to read a kept pod: its exit status from rkt, its output from the log/journal."""
    if where is None:
        return f"rkt status {uuid}"
    if where.startswith("journalctl"):
        return f"rkt status {uuid}; {where}"
    return f"rkt status {uuid}; tail -n 50 {where}"
