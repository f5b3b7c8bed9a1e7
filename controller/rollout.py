"""Health-gated replacement (`spec.update`): when a spec change is done, or has failed.

PURE: no I/O, no clock. Only tasks with `spec.health` take part. Per task the shell
keeps a `Record` in `<state_dir>/rollouts.json`: the last spec that was healthy (its
manifest bytes, so it can be started again after the manifest moved on), the rollout
in progress and the last spec that failed. Each pass it calls `decide` with the
manifest's spec, that record, the task's pods and its health view, and gets back:

- `serving`: the old spec's running pod, which start-first keeps (the planner does not
  end it) until the new spec's pod has been Healthy for `min_healthy_time`;
- `record`: the record to persist (a promotion, a rollout's start, a failure);
- `failed`: why the rollout just failed (past `healthy_deadline`).

A failure with `auto_revert` makes the shell put the stored healthy spec in place of
the manifest's (`revert_to`) until the manifest changes: the planner then replaces the
new pod by the old spec's (whose pod keeps its old spec-hash stamp) and never tries the
failed spec again. A task that never had a healthy spec has no record to go back to
and crash-loops with backoff as before. Spec hashes here are the *placed* ones (those
stamped on pods, after variables and ports); `manifest_hash` is the manifest's own
hash, which says whether "the manifest changed".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.health import summary
from controller.model import (
    HealthState,
    HealthView,
    ObservedPod,
    PodState,
    PodUUID,
    SpecHash,
    TaskSpec,
    UpdateOrder,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """What one task's rollouts left behind (persisted as JSON, one object per task)."""

    healthy_manifest_hash: str = ""
    """The manifest hash of the last spec that was Healthy for min_healthy_time."""
    healthy_hash: str = ""
    """That spec's placed hash: the stamp on its pods."""
    healthy_source: str = ""
    healthy_manifest: str = ""
    """Its manifest text, to parse and start it again (stop-first, or the file changed)."""
    rollout_manifest_hash: str = ""
    """The manifest hash a rollout is under way to, and since when (Unix seconds)."""
    rollout_since: float = 0.0
    failed_manifest_hash: str = ""
    """The last manifest hash whose rollout failed: not tried again until it changes."""
    failed_hash: str = ""
    failed_reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    record: Record
    serving: PodUUID | None = None
    failed: str | None = None
    promote: bool = False
    """The current spec just became the last healthy one: the shell stores its manifest."""
    requeue_after: float | None = None


def reverting(spec: TaskSpec, manifest_hash: str, record: Record | None) -> bool:
    """True when the manifest is the failed spec and the last healthy one runs instead."""
    return (
        record is not None
        and spec.health is not None
        and spec.auto_revert
        and bool(record.healthy_manifest)
        and record.failed_manifest_hash == manifest_hash
        and record.healthy_manifest_hash != manifest_hash
    )


def decide(
    spec: TaskSpec,
    manifest_hash: str,
    record: Record | None,
    pods: Sequence[ObservedPod],
    view: HealthView | None,
    *,
    now: float,
) -> Decision:
    """Return the rollout decision for one task with `spec.health` (see the module doc).

    `spec` is the placed spec the planner gets (the last healthy one while reverting),
    `manifest_hash` the hash of the spec it was built from.
    """
    rec = record or Record()
    current = spec.spec_hash
    healthy_for = _healthy_for(view, pods, current, now)
    done = healthy_for is not None and healthy_for >= spec.min_healthy_time_s
    if done:
        # Healthy long enough: the new last healthy spec; a rollout or failure is over
        # (a failed spec that is Healthy after all is welcome back).
        new = dataclasses.replace(
            rec,
            healthy_manifest_hash=manifest_hash,
            healthy_hash=current,
            rollout_manifest_hash="",
            rollout_since=0.0,
            failed_manifest_hash=""
            if rec.failed_manifest_hash == manifest_hash
            else rec.failed_manifest_hash,
        )
        changed = (rec.healthy_manifest_hash, rec.healthy_hash) != (manifest_hash, current)
        return Decision(record=new, promote=changed or not rec.healthy_manifest)
    if not rec.healthy_manifest_hash or rec.healthy_manifest_hash == manifest_hash:
        # No healthy spec to protect (a first deployment crash-loops as before), or
        # the healthy spec itself runs (again): nothing is rolling out.
        wait = None
        if healthy_for is not None:
            wait = spec.min_healthy_time_s - healthy_for
        return Decision(record=_no_rollout(rec), requeue_after=wait)
    if rec.failed_manifest_hash == manifest_hash:
        # Failed before, and either reverting or (no auto_revert) left as it is, with
        # the old pod serving for start-first.
        return Decision(record=rec, serving=_serving(spec, rec, pods))
    since = rec.rollout_since if rec.rollout_manifest_hash == manifest_hash else now
    rec = dataclasses.replace(rec, rollout_manifest_hash=manifest_hash, rollout_since=since)
    left = since + spec.healthy_deadline_s - now
    if left <= 0:
        why = (
            f"not Healthy for {spec.min_healthy_time_s:g}s within "
            f"{spec.healthy_deadline_s:g}s: {_why(view, pods, current)}"
        )
        failed = dataclasses.replace(
            rec,
            rollout_manifest_hash="",
            rollout_since=0.0,
            failed_manifest_hash=manifest_hash,
            failed_hash=current,
            failed_reason=why,
        )
        return Decision(record=failed, failed=why, serving=_serving(spec, rec, pods))
    waits = [left]
    if healthy_for is not None:
        waits.append(spec.min_healthy_time_s - healthy_for)
    return Decision(record=rec, serving=_serving(spec, rec, pods), requeue_after=min(waits))


def message(record: Record, *, reverted: bool) -> str:
    """The RolloutFailed status message: the failed spec hash, why, and what runs."""
    then = (
        f"; spec {record.healthy_hash} (the last healthy one) runs again"
        if reverted
        else "; auto_revert is off: nothing is rolled back"
    )
    return (
        f"rollout of spec {record.failed_hash} failed: {record.failed_reason}{then}; "
        "it is not tried again until the manifest changes"
    )


def _no_rollout(rec: Record) -> Record:
    return dataclasses.replace(rec, rollout_manifest_hash="", rollout_since=0.0)


def _healthy_for(
    view: HealthView | None, pods: Sequence[ObservedPod], current: SpecHash, now: float
) -> float | None:
    """How long the current spec's running pod has been Healthy, or None."""
    if view is None or view.state != HealthState.HEALTHY:
        return None
    running = {p.uuid for p in pods if p.state == PodState.RUNNING and p.spec_hash == current}
    return now - view.since if view.pod in running else None


def _serving(spec: TaskSpec, rec: Record, pods: Sequence[ObservedPod]) -> PodUUID | None:
    """The last healthy spec's running pod that start-first keeps through the rollout."""
    if spec.update_order != UpdateOrder.START_FIRST:
        return None
    old = [p for p in pods if p.state == PodState.RUNNING and p.spec_hash == rec.healthy_hash]
    return max(old, key=lambda p: (p.started_at or 0, p.uuid)).uuid if old else None


def _why(view: HealthView | None, pods: Sequence[ObservedPod], current: SpecHash) -> str:
    if view is not None:
        return summary(view)
    if any(p.spec_hash == current and p.state == PodState.RUNNING for p in pods):
        return "its pod is running but has not been checked yet"
    return "no pod of it is running"


def load(raw: Any) -> dict[str, Record]:
    """Records from the parsed `rollouts.json` (anything malformed is skipped)."""
    if not isinstance(raw, dict):
        return {}
    fields = {f.name: f.type for f in dataclasses.fields(Record)}
    out: dict[str, Record] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            continue
        kept = {k: v for k, v in entry.items() if k in fields}
        try:
            rec = Record(**kept)
        except TypeError:
            continue
        if all(isinstance(getattr(rec, k), str) for k in fields if k != "rollout_since"):
            out[name] = rec
    return out


def dump(records: Mapping[str, Record]) -> dict[str, dict[str, Any]]:
    return {name: dataclasses.asdict(rec) for name, rec in sorted(records.items())}
