"""Status documents: what one pass saw and did, as JSON-ready dicts for people and monitoring.

PURE. Given a `PassReport`, the previous task documents and `now`, build the
`tasks/<name>.json` documents and `controller.json` that `statusfiles` writes, and
render the `rktctl status` table. Called by `statusfiles.StatusWriter` (daemon)
and by `cli` (reading side). Never reads a clock, a file or the environment:
every time is an argument, so the same report always gives the same documents.
A pod's output arrives as bytes the shell read (`Termination.output`); turning
it into bounded, printable text happens here. The shapes are the contract of
`schemas/status.schema.json`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from controller.model import (
    FINISHED_STATES,
    LIVE_STATES,
    DesiredState,
    Hold,
    HoldReason,
    Invalid,
    ObservedPod,
    Outcome,
    PassReport,
    PodState,
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
    Termination,
)

SCHEMA_VERSION = 1
HISTORY_LENGTH = 5
STALE_HEARTBEAT_INTERVALS = 3
"""`rktctl status` fails when the heartbeat is older than this many resync intervals."""
OUTPUT_TAIL_LINES = 20
OUTPUT_TAIL_BYTES = 2048
"""A status document keeps at most this much of a finished pod's output (UTF-8 bytes)."""
SUMMARY_LINE_CHARS = 200
POD_EXITED = "pod_exited"
"""`last_error.code` of a pod that ended with a non-zero (or unrecorded) exit code."""
# Lines rkt and systemd-nspawn write into every pod's output whatever the app does
# (../shared/rkt: a host without an "rkt" group; nspawn's teardown where PID 1 is not
# systemd). The full output keeps them; the one-line summary skips them, so it shows
# the app's last words rather than the teardown's.
_ROUTINE_PREFIXES = (
    'run-prepared: group "rkt" not found',
    "stage1: warning: error setting journal ACLs",
    "Attempted to remove disk file system under",
)


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


# --- helpers ---------------------------------------------------------------------


def iso(ts: float) -> str:
    """Return Unix time `ts` as ISO-8601 UTC with millisecond precision and a `Z`."""
    text = datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_iso(text: object) -> float | None:
    """Return the Unix time of an ISO-8601 string written by `iso`, or None if unreadable."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _optional_iso(ts: float | None) -> str | None:
    return None if ts is None else iso(ts)


def _short(uuid: str) -> str:
    return uuid[:8]


def _hash8(spec_hash: str | None) -> str:
    return (spec_hash or "?")[:8]


# --- a finished pod: its exit code and the end of its output ------------------------


def _printable(char: str) -> str:
    # Control and format characters (ESC, NUL, bidi overrides, ...) are shown escaped:
    # the text goes to terminals and dashboards, never as raw bytes.
    if char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp"):
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def render_output(
    tail: bytes,
    *,
    truncated: bool = False,
    max_lines: int = OUTPUT_TAIL_LINES,
    max_bytes: int = OUTPUT_TAIL_BYTES,
) -> tuple[str, bool]:
    """Given the last bytes of a pod's output, return (text, truncated) for a document.

    The text is the last `max_lines` lines within `max_bytes` UTF-8 bytes: invalid UTF-8
    is replaced, CR/CRLF become newlines, control characters are escaped (`\\x1b`),
    trailing blank lines dropped. `truncated` (in and out) says earlier output is left
    out; a line cut by the reader's bound is dropped when a whole one follows it.
    """
    text = tail.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    lines = "".join(_printable(c) for c in text).split("\n")
    if truncated and len(lines) > 1:
        lines = lines[1:]  # starts wherever the reader's bound fell: likely mid-line
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) > max_lines:
        lines, truncated = lines[-max_lines:], True
    while len(lines) > 1 and len("\n".join(lines).encode()) > max_bytes:
        lines, truncated = lines[1:], True
    if lines and len(lines[0].encode()) > max_bytes:
        # One line longer than the bound: keep its end, where an error usually is.
        cut = lines[0].encode()[-max_bytes:].decode("utf-8", errors="ignore")
        lines, truncated = [cut], True
    return "\n".join(lines), truncated


def last_output_line(text: str) -> str:
    """Return the last line of `text` worth a one-line summary ("" if none), shortened."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_ROUTINE_PREFIXES)]
    line = (useful or lines or [""])[-1]
    return line if len(line) <= SUMMARY_LINE_CHARS else line[: SUMMARY_LINE_CHARS - 1] + "…"


def exit_code_note(termination: Termination) -> str | None:
    """Return why `termination` has no exit code, or None when it has one."""
    if termination.exit_code is not None:
        return None
    if not termination.started:
        return "no exit code: the pod exited without starting"
    stage1 = termination.stage1
    # An app that ran and ended without an exit status is fly's signature (FINDINGS 2:
    # fly records none); rkt's built-in default stage1 here is fly.
    if stage1 is None or "fly" in stage1.rsplit("/", 1)[-1]:
        return "exit code not recorded by the fly stage1"
    return "exit code not recorded by rkt"


def termination_failed(termination: Termination) -> bool:
    """True if the pod did not end with exit code 0 (an unrecorded code counts as failure)."""
    return termination.exit_code != 0


def early_exit_failed(termination: Termination, policy: RestartPolicy | None) -> bool:
    """True if a pod seen exiting within its settle window means a failed start.

    Only a pod that exited 0 under a restart policy that lets it finish (never,
    on-failure) did what it was meant to; a service (always) must not end at once.
    """
    return termination_failed(termination) or policy in (None, RestartPolicy.ALWAYS)


def termination_summary(termination: Termination) -> str:
    """One line: which pod ended, how, and its last words."""
    note = exit_code_note(termination)
    how = f"exited with code {termination.exit_code}" if note is None else f"exited ({note})"
    text = f"pod {_short(termination.uuid)} {how}"
    if termination.exited_within_s is not None:
        text += f" within {termination.exited_within_s:g}s of its start"
    output, _ = render_output(termination.output.tail, truncated=termination.output.truncated)
    line = last_output_line(output)
    if line:
        text += f"; last output: {line}"
    elif termination.output.error:
        text += f"; {termination.output.error}"
    return text


def _termination_doc(termination: Termination) -> dict[str, Any]:
    out = termination.output
    text, truncated = render_output(out.tail, truncated=out.truncated)
    return {
        "pod_uuid": termination.uuid,
        "spec_hash": termination.spec_hash,
        "exit_code": termination.exit_code,
        "exit_code_note": exit_code_note(termination),
        "message": termination_summary(termination).replace("\n", " "),
        "started_at": _optional_iso(termination.started_at),
        "observed_at": iso(termination.observed_at),
        "exited_within_s": termination.exited_within_s,
        "output": text,
        "output_truncated": truncated,
        "log": out.location,
        "log_error": out.error,
    }


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
class _Verdict:
    phase: TaskPhase
    reason: str
    message: str
    ready: str
    reconciling: str
    stalled: str
    pod: dict[str, Any] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Facts:
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
) -> _Verdict:
    return _Verdict(phase=phase, reason=reason, message=message, pod=pod, ready=ready,
                    reconciling=reconciling, stalled=stalled)  # fmt: skip


def _started(facts: _Facts) -> Outcome | None:
    """The successful Start/RunPrepared of this pass, if any."""
    for outcome in facts.outcomes:
        if isinstance(outcome.action, Start | RunPrepared) and outcome.ok:
            return outcome
    return None


def _decide(facts: _Facts) -> _Verdict:
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
            msg += f" (pod {_short(shown.uuid)} keeps running the last good spec)"
        return _verdict(TaskPhase.INVALID, "InvalidSpec", msg, pod, stalled="True")
    if facts.blocked is not None:
        return _verdict(TaskPhase.BLOCKED, "Blocked", facts.blocked, pod, stalled="True")
    no_path = next((h for h in facts.holds if h.reason == HoldReason.HOST_PATH_MISSING), None)
    if no_path is not None:
        msg = no_path.message
        if shown is not None and shown.state in LIVE_STATES:
            msg += f" (pod {_short(shown.uuid)} keeps running spec {_hash8(shown.spec_hash)})"
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
    return base


def _held(hold: Hold, pod: dict[str, Any] | None) -> _Verdict:
    reason = _HOLD_REASONS[hold.reason]
    message = hold.message or f"held: {hold.reason}"
    if hold.reason == HoldReason.INCOMPLETE_OBSERVATION:
        return _verdict(TaskPhase.HELD, reason, message, pod, reconciling="True")
    # Needs a person: fix the desired dir or manifest, or allow the deletion.
    return _verdict(TaskPhase.HELD, reason, message, pod, stalled="True")


def _base_phase(facts: _Facts, shown: ObservedPod | None, pod: dict[str, Any] | None) -> _Verdict:
    """Phase of a valid, placeable, unheld task (or of an owned pod no longer desired)."""
    entry = facts.entry
    if not isinstance(entry, TaskSpec):
        uuid = _short(shown.uuid) if shown else "?"
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
        return _verdict(TaskPhase.RUNNING, "Running", f"pod {_short(shown.uuid)} running{since}",
                        pod, ready="True")  # fmt: skip
    if started is not None:
        new_uuid = started.pod_uuid or (
            started.action.uuid if isinstance(started.action, RunPrepared) else None
        )
        new_pod = _new_pod_doc(new_uuid, spec_hash) if new_uuid else pod
        what = f"pod {_short(new_uuid)}" if new_uuid else "a pod"
        return _verdict(TaskPhase.STARTING, "Starting", f"started {what}", new_pod,
                        reconciling="True")  # fmt: skip
    arriving = [
        p for p in facts.pods if p.spec_hash == spec_hash and p.state not in FINISHED_STATES
    ]
    if arriving:
        first = _pick_pod(arriving, spec_hash)
        assert first is not None
        return _verdict(TaskPhase.STARTING, "Starting",
                        f"pod {_short(first.uuid)} is {first.state}", _pod_doc(first),
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
    failed = _failure(facts)
    if stale:
        old = _pick_pod(stale, None)
        assert old is not None
        msg = f"pod {_short(old.uuid)} runs spec {_hash8(old.spec_hash)}; "
        msg += f"replacing it with {_hash8(spec_hash)}"
        if failed is not None:
            msg += f" failed: {failed.message}"
        return _verdict(TaskPhase.PENDING, "Updating", msg, pod, reconciling="True")
    if failed is not None:
        return _verdict(TaskPhase.PENDING, "StartFailed", f"start failed: {failed.message}", pod,
                        reconciling="True")  # fmt: skip
    busy = next((h for h in facts.holds if h.reason == HoldReason.IN_PROGRESS), None)
    if busy is not None:  # its start (prepare, run-prepared) is under way beside the loop
        return _verdict(TaskPhase.STARTING, "Starting", busy.message, pod, reconciling="True")
    return _verdict(TaskPhase.PENDING, "Pending", "waiting to be started", pod, reconciling="True")


def _failure(facts: _Facts) -> Outcome | None:
    """The last failed (attempted, not skipped) action of this task in this pass."""
    failed = [o for o in facts.outcomes if o.failed]
    return failed[-1] if failed else None


def _failed_termination(facts: _Facts) -> Termination | None:
    """This pass's newly seen termination, if the pod did not end with exit code 0."""
    term = facts.termination
    return term if term is not None and termination_failed(term) else None


def _error_message(facts: _Facts) -> str | None:
    """What went wrong most recently: a failed action, a pod that died, or the old error."""
    failed = _failure(facts)
    if failed is not None:
        return failed.message
    term = _failed_termination(facts)
    return termination_summary(term) if term is not None else facts.prior_error


# --- conditions, history, errors ------------------------------------------------


def _conditions(verdict: _Verdict, previous: object, at: str) -> list[dict[str, Any]]:
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


def _attempts(facts: _Facts) -> list[tuple[str, str, str, bool]]:
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
        elif isinstance(action, Remove) and action.reason == Reason.EXITED and outcome.ok:
            spec_hash = pod_hash.get(action.uuid)
            if spec_hash:
                code = action.exit_code
                events.append((spec_hash, "exited", f"pod {_short(action.uuid)} exited with code "
                               f"{code if code is not None else 'unknown'}", False))  # fmt: skip
            continue
        else:
            continue
        if not spec_hash:
            continue
        if outcome.ok:
            uuid = outcome.pod_uuid or (action.uuid if isinstance(action, RunPrepared) else None)
            msg = f"started pod {_short(uuid)}" if uuid else "started"
            events.append((spec_hash, "started", msg, True))
        else:
            events.append((spec_hash, "failed", outcome.message or str(outcome.error_code), True))
    return events


def _history(previous: object, events: Iterable[tuple[str, str, str, bool]], at: str) -> list[Any]:
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


def _last_error(facts: _Facts, verdict: _Verdict, previous: object, at: str) -> Any:
    failed = _failure(facts)
    if failed is not None:
        return {
            "code": failed.error_code or "action_failed",
            "message": failed.message or f"{type(failed.action).__name__} failed",
            "at": at,
        }
    term = _failed_termination(facts)
    if term is not None:
        return {"code": POD_EXITED, "message": termination_summary(term), "at": at}
    if verdict.ready == "True":
        return None  # converged: an old error no longer describes the task
    return dict(previous) if isinstance(previous, Mapping) else None


def _last_termination(facts: _Facts, previous: object) -> Any:
    """This pass's newly seen termination, else the one the previous document kept: it
    outlives its pod, as kubectl's last state does."""
    if facts.termination is not None:
        return _termination_doc(facts.termination)
    return dict(previous) if isinstance(previous, Mapping) else None


def _last_exit_code(facts: _Facts, previous: object) -> int | None:
    if facts.termination is not None and facts.termination.exit_code is not None:
        return facts.termination.exit_code  # seen this pass: newer than any bookkeeping
    if facts.restart is not None and facts.restart.last_exit_code is not None:
        return facts.restart.last_exit_code
    for outcome in reversed(facts.outcomes):
        action = outcome.action
        if isinstance(action, Remove) and action.exit_code is not None:
            return action.exit_code
    return previous if isinstance(previous, int) and not isinstance(previous, bool) else None


# --- public builders -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskMemo:
    """What one task's document was built from, so an unchanged task is not built again.

    `key` holds every input of the document but the previous document itself (see
    `_memo_key`); `settled` says the document it gave was already its own fixpoint
    (building it again from itself changed nothing), so it can be reused as is.
    `summary` is the part of the document that controller.json and the metrics read
    (`phase`, `restarts`, `last_exit_code`), so they never need the whole document.
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
    exists). Phase precedence: Invalid > Blocked > Held > Backoff > Running >
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
        facts = _Facts(
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


def _summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k) for k in ("phase", "restarts", "last_exit_code")}


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
            error, retry_at, backoff_ahead, retry_ahead, revision)  # fmt: skip


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
    facts: _Facts, report: PassReport, previous: Mapping[str, Any], at: str
) -> tuple[dict[str, Any], bool]:
    """The task's document, and whether it equals `previous` but for `updated_at`."""
    verdict = _decide(facts)
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
        "conditions": _conditions(verdict, previous.get("conditions"), at),
        "pod": pod,
        "restarts": restarts,
        "last_exit_code": _last_exit_code(facts, previous.get("last_exit_code")),
        "next_retry_at": _optional_iso(next_retry),
        "last_error": _last_error(facts, verdict, previous.get("last_error"), at),
        "last_termination": _last_termination(facts, previous.get("last_termination")),
        "history": _history(previous.get("history"), _attempts(facts), at),
    }
    old_updated = previous.get("updated_at")
    unchanged = {k: v for k, v in previous.items() if k != "updated_at"} == doc
    doc["updated_at"] = old_updated if unchanged and isinstance(old_updated, str) else at
    return doc, unchanged


def action_name(action: Start | RunPrepared | Stop | Remove) -> str:
    """Return the snake_case word for an action's kind: start, run_prepared, stop, remove."""
    return action.kind


def action_counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """Count outcomes per action kind and result: {"start": n, ..., "failed": n, "skipped": n,
    "deferred": n}."""
    counts = {"start": 0, "run_prepared": 0, "stop": 0, "remove": 0, "failed": 0, "skipped": 0,
              "deferred": 0}  # fmt: skip
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


# --- reading side (rktctl status) --------------------------------------------------


def heartbeat_problem(controller: Mapping[str, Any] | None, *, now: float) -> str | None:
    """Given controller.json (or None) and `now`, say why the controller looks down, or None.

    Down means: no document, an unreadable heartbeat, or a heartbeat older than
    STALE_HEARTBEAT_INTERVALS resync intervals.
    """
    if controller is None:
        return "no controller.json: the daemon has not written status yet (is it running?)"
    beat = parse_iso(controller.get("heartbeat_at"))
    interval = controller.get("resync_interval_s")
    if beat is None or not isinstance(interval, int | float) or isinstance(interval, bool):
        return "controller.json has no readable heartbeat_at / resync_interval_s"
    age = now - beat
    limit = STALE_HEARTBEAT_INTERVALS * float(interval)
    if age > limit:
        pid = controller.get("pid", "?")
        return (
            f"controller heartbeat is {human_age(age)} old (limit {human_age(limit)} = "
            f"{STALE_HEARTBEAT_INTERVALS} x resync_interval_s {interval:g}): the daemon "
            f"(pid {pid}) is not running or is stuck"
        )
    return None


def human_age(seconds: float) -> str:
    """Format a duration the way kubectl's AGE column does: 42s, 5m12s, 3h, 2d4h."""
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if days < 2:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def render_table(
    task_docs: Mapping[str, Mapping[str, Any]],
    *,
    now: float,
    invalid_manifests: Sequence[object] = (),
) -> str:
    """Render task documents as the `rktctl status` table (NAME PHASE POD RESTARTS AGE MESSAGE).

    AGE is how long the task has been in its phase. Rows are sorted by name, then one
    `-  Invalid` row per broken manifest whose task name could not be read (controller.json's
    `invalid_manifests`: unreadable, refused or dangling files, unreadable directories).
    """
    rows = [("NAME", "PHASE", "POD", "RESTARTS", "AGE", "MESSAGE")]
    for name in sorted(task_docs):
        doc = task_docs[name]
        pod = doc.get("pod")
        uuid = pod.get("uuid") if isinstance(pod, Mapping) else None
        since = parse_iso(doc.get("since"))
        rows.append((
            str(doc.get("name", name)),
            str(doc.get("phase", "?")),
            _short(uuid) if isinstance(uuid, str) else "-",
            str(doc.get("restarts", 0)),
            human_age(now - since) if since is not None else "-",
            str(doc.get("message", "")),
        ))  # fmt: skip
    for item in invalid_manifests:
        if isinstance(item, Mapping):
            messages = item.get("messages")
            text = "; ".join(str(m) for m in messages) if isinstance(messages, list) else ""
            message = text or str(item.get("source"))
            rows.append(("-", str(TaskPhase.INVALID), "-", "-", "-", message))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True))
        + "  "
        + row[5]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"
