"""Pod logs: which of the detached launcher's log files to remove or trim, and how to trim one.

PURE. The detached launcher writes each pod's rkt output to
`<state_dir>/logs/<task>-<uuid8>.log` (`runtime.pod_log_path`). `reconcile` calls
`plan_pod_logs` once per pass with the files it found there and the pass's
observation, and carries out the actions; `trimmed` builds a trimmed log's content.
- The log of a pod rkt still lists is kept, whatever the pod's state: the pass that
  notices a pod's exit reads the log (rktctl removes the pod later, in an action).
- A log whose pod is gone (removed by rktctl, or by an opted-in `rkt gc`) is removed,
  except the newest `keep` of each task a manifest declares: a crash loop's last
  output is its diagnosis. A task no manifest declares keeps none.
- A log over `max_bytes` is trimmed to its newest `max_bytes // 2` bytes (whole lines,
  under a marker line).
Files not named `<task>-<uuid8>.log` are never touched, and nothing is planned from
an incomplete observation (a pod it hides would look removed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from controller.model import FINISHED_STATES, Observation, TaskName

_LOG_NAME = re.compile(r"^(?P<task>.+)-(?P<uuid8>[0-9a-f]{8})\.log$")


@dataclass(frozen=True, slots=True, kw_only=True)
class LogFile:
    """One file in the logs directory."""

    name: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveLog:
    name: str
    task: TaskName
    reason: str
    """`pod_removed` (older than the task's newest `keep`) or `not_desired` (task gone)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrimLog:
    name: str
    task: TaskName
    keep_bytes: int
    """How many of the newest bytes to keep (before dropping a partial first line)."""
    live: bool
    """The pod still runs: rkt appends to the file, so it must be trimmed in place."""


LogAction = RemoveLog | TrimLog


def parse_log_name(name: str) -> tuple[TaskName, str] | None:
    """Return (task, uuid8) of a pod log's file name, None for any other file."""
    match = _LOG_NAME.match(name)
    if match is None:
        return None
    return TaskName(match["task"]), match["uuid8"]


def plan_pod_logs(
    files: Iterable[LogFile],
    observation: Observation,
    *,
    declared: frozenset[TaskName] | None,
    keep: int,
    max_bytes: int,
) -> tuple[LogAction, ...]:
    """Return what to do with the pod logs `files`, sorted by file name.

    Given the files of the logs directory, one complete `rkt list` observation, the
    task names the desired directory declares (None when that is not known for sure:
    directory missing or empty, or a manifest whose name cannot be read; then no task
    counts as gone), the number of removed pods' logs to keep per task and the size
    cap, return RemoveLog and TrimLog actions. Returns () for an incomplete observation.
    """
    if not observation.complete:
        return ()
    listed = {(p.task, p.uuid[:8]): p.state for p in observation.owned()}
    actions: list[LogAction] = []
    orphans: dict[TaskName, list[LogFile]] = {}
    for file in files:
        parsed = parse_log_name(file.name)
        if parsed is None:
            continue
        task, uuid8 = parsed
        state = listed.get((task, uuid8))
        if state is None:
            orphans.setdefault(task, []).append(file)
        elif file.size > max_bytes:
            live = state not in FINISHED_STATES
            actions.append(_trim(file, task, max_bytes, live=live))
    for task, logs in orphans.items():
        logs.sort(key=lambda f: (f.mtime_ns, f.name), reverse=True)
        gone = declared is not None and task not in declared
        kept = [] if gone else logs[:keep]
        for file in logs[len(kept) :]:
            reason = "not_desired" if gone else "pod_removed"
            actions.append(RemoveLog(name=file.name, task=task, reason=reason))
        actions.extend(_trim(f, task, max_bytes, live=False) for f in kept if f.size > max_bytes)
    return tuple(sorted(actions, key=lambda a: a.name))


def _trim(file: LogFile, task: TaskName, max_bytes: int, *, live: bool) -> TrimLog:
    return TrimLog(name=file.name, task=task, keep_bytes=max_bytes // 2, live=live)


def trimmed(tail: bytes, *, max_bytes: int) -> bytes:
    """Given the newest bytes of a log, return the trimmed log's content.

    The first line of `tail` is dropped (it is most likely cut), unless it is the only
    one; a marker line says that older output was removed and why.
    """
    newline = tail.find(b"\n")
    if 0 <= newline < len(tail) - 1:
        tail = tail[newline + 1 :]
    marker = (
        "--- rktctl: older output removed to keep this log under "
        f"pod_log_max_bytes = {max_bytes} ---\n"
    )
    return marker.encode() + tail
