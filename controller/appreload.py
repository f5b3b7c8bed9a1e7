"""Which running pods to signal because a file their app reads changed (`spec.reload`).

PURE. The shell digests each task's reload files every pass (`reloadfiles`) and keeps,
per pod, the digests its app last read: recorded when the pod was started (the files
as they were when its start was planned) and again after each signal it received.
A pod running the task's current spec whose record differs from the files now gets a
Signal; one without a record (running before rktctl started) is taken to have read
the files as they are. A task with any other action this pass is left alone: a pod
being started, replaced or stopped reads the files anew anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from controller.model import (
    Observation,
    PodState,
    PodUUID,
    Reason,
    Signal,
    TaskName,
    TaskSpec,
)

Digests = Mapping[str, str]
"""A task's reload files (resolved host paths) to the digest of their content."""


@dataclass(frozen=True, slots=True)
class Reloads:
    signals: tuple[Signal, ...] = ()
    adopted: Mapping[PodUUID, Digests] = field(default_factory=dict)
    """Pods with no record yet, and the digests they are taken to have read."""


def plan_reloads(
    specs: Mapping[TaskName, TaskSpec],
    observation: Observation,
    now_read: Mapping[TaskName, Digests],
    last_read: Mapping[PodUUID, Digests],
    *,
    acting: frozenset[TaskName],
    started_with: Mapping[TaskName, Digests],
) -> Reloads:
    """Return the signals this pass sends and the records it makes.

    `now_read` holds the digests of every task with `spec.reload`, `last_read` what each
    pod read, `acting` the tasks with other actions this pass, and `started_with` the
    files as they were when a task's latest start was planned (for its new pod).
    """
    signals: list[Signal] = []
    adopted: dict[PodUUID, Digests] = {}
    for pod in observation.owned():
        spec = specs.get(pod.task) if pod.task is not None else None
        if (
            spec is None
            or spec.reload is None
            or pod.state is not PodState.RUNNING
            or pod.spec_hash != spec.spec_hash
            or spec.name in acting
            or spec.name not in now_read
        ):
            continue
        current = now_read[spec.name]
        read = last_read.get(pod.uuid)
        if read is None:
            adopted[pod.uuid] = started_with.get(spec.name, current)
            read = adopted[pod.uuid]
        changed = tuple(sorted(p for p in current if read.get(p) != current[p]))
        if not changed:
            continue
        signals.append(
            Signal(
                task=spec.name,
                uuid=pod.uuid,
                reason=Reason.FILES_CHANGED,
                signal=spec.reload.signal,
                files=tuple(sorted(current.items())),
                changed=changed,
            )
        )
    return Reloads(signals=tuple(signals), adopted=adopted)
