"""The shell of health-gated rollouts: `<state_dir>/rollouts.json`, reverts, logging.

SHELL around the pure `rollout`. Per pass the reconciler calls `revert()` on the
desired state it read (a task whose manifest failed its rollout gets its last healthy
spec back, parsed from the stored manifest text) and, once the health views are in,
`decide()`, which returns what the planner and status need (old pods that keep
serving, RolloutFailed holds, when to look again) and persists every change
atomically before the plan runs, so a controller killed mid-rollout resumes it from
the file (the pods themselves are adopted by their spec-hash stamps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import structlog

from controller import manifests, rollout
from controller.errors import ManifestError
from controller.fsio import read_json, save_state
from controller.model import (
    DesiredState,
    HealthView,
    Hold,
    HoldReason,
    ObservedPod,
    PodUUID,
    TaskName,
    TaskSpec,
)

ROLLOUTS_FILE = "rollouts.json"

log = structlog.get_logger()


@dataclasses.dataclass(frozen=True, slots=True)
class Verdicts:
    serving: Mapping[TaskName, PodUUID]
    holds: tuple[Hold, ...]
    requeue_after: float | None
    reverting: frozenset[TaskName] = frozenset()
    """Tasks whose rollout failed in this very pass: the next pass (0.1 s later) plans
    the revert; this one must not act on the failed spec (e.g. restart its pod)."""


class RolloutBook:
    """Per-task rollout records, loaded once and written on every change."""

    def __init__(self, state_dir: str) -> None:
        self._path = Path(state_dir) / ROLLOUTS_FILE
        self._records: dict[str, rollout.Record] = rollout.load(read_json(self._path))
        self._memo: tuple[DesiredState, tuple[object, ...], DesiredState, dict[str, str]] | None
        self._memo = None

    def revert(self, desired: DesiredState) -> tuple[DesiredState, dict[str, str]]:
        """`desired` with each failed-and-reverted task's spec replaced by its last
        healthy one, and each task's manifest hash (the one its effective spec came from)."""
        key = tuple(sorted(self._records.items()))
        if self._memo is not None and self._memo[0] is desired and self._memo[1] == key:
            return self._memo[2], self._memo[3]  # unchanged: keep the identity for memos
        hashes: dict[str, str] = {}
        swapped: dict[TaskName, TaskSpec] = {}
        for name, entry in desired.tasks.items():
            if not isinstance(entry, TaskSpec):
                continue
            hashes[name] = entry.spec_hash
            rec = self._records.get(name)
            if rec is None or not rollout.reverting(entry, entry.spec_hash, rec):
                continue
            try:
                old = manifests.parse_manifest(rec.healthy_manifest, source=rec.healthy_source)
            except ManifestError as exc:
                log.error("rollout_revert_unreadable", task=name, error=str(exc))
                continue
            if old.name != name or old.spec_hash != rec.healthy_manifest_hash:
                continue  # parsed differently by this version of rktctl: do not guess
            swapped[name] = old
            hashes[name] = old.spec_hash
        out = desired
        if swapped:
            out = dataclasses.replace(desired, tasks={**desired.tasks, **swapped})
        self._memo = (desired, key, out, hashes)
        return out, hashes

    def decide(
        self,
        desired: DesiredState,
        specs: Mapping[TaskName, TaskSpec],
        manifest_hashes: Mapping[str, str],
        pods: Mapping[TaskName, list[ObservedPod]],
        views: Mapping[TaskName, HealthView],
        *,
        now: float,
    ) -> Verdicts:
        """Decide every task with `spec.health`; persist the records; say what follows."""
        serving: dict[TaskName, PodUUID] = {}
        holds: list[Hold] = []
        waits: list[float] = []
        now_reverting: set[TaskName] = set()
        before = dict(self._records)
        for name, spec in sorted(specs.items()):
            if spec.health is None or name not in manifest_hashes:
                continue
            rec = self._records.get(name)
            d = rollout.decide(
                spec, manifest_hashes[name], rec, pods.get(name, []), views.get(name), now=now
            )
            new: rollout.Record | None = d.record
            if rec is None and new == rollout.Record():
                continue  # nothing to remember yet (no healthy spec so far)
            if d.promote:
                new = self._with_manifest(d.record, spec, manifest_hashes[name])
            if new is None:
                continue  # the file changed since it was read: the next pass sees it
            if d.promote:
                log.info("rollout_healthy", task=name, spec_hash=spec.spec_hash)
            if d.failed is not None:
                log.warning("rollout_failed", task=name, spec_hash=spec.spec_hash, reason=d.failed)
            self._records[name] = new
            if d.serving is not None:
                serving[name] = d.serving
            if d.requeue_after is not None:
                waits.append(max(d.requeue_after, 0.1))
            entry = desired.tasks.get(name)
            failed = new.failed_manifest_hash
            if failed and isinstance(entry, TaskSpec) and entry.spec_hash == failed:
                reverted = manifest_hashes[name] != failed
                holds.append(
                    Hold(
                        reason=HoldReason.ROLLOUT_FAILED,
                        task=name,
                        message=rollout.message(new, reverted=reverted),
                    )
                )
                if d.failed is not None and reverted is False and spec.auto_revert:
                    waits.append(0.1)  # the revert happens in the next pass
                    now_reverting.add(name)
        for gone in set(self._records) - set(desired.tasks):
            if not desired.dir_missing and not desired.unnamed_invalid:
                del self._records[gone]  # the manifest is gone: so is its history
        if self._records != before:
            self._save()
        return Verdicts(
            serving, tuple(holds), min(waits) if waits else None, frozenset(now_reverting)
        )

    def _with_manifest(
        self, rec: rollout.Record, spec: TaskSpec, manifest_hash: str
    ) -> rollout.Record | None:
        """`rec` with the manifest text of the spec that just proved healthy."""
        old = self._records.get(spec.name)
        if old is not None and old.healthy_manifest_hash == manifest_hash and old.healthy_manifest:
            return rec  # a revert's spec, or the same manifest placed anew
        try:
            text = Path(spec.source).read_text(encoding="utf-8")
            same = manifests.parse_manifest(text, source=spec.source).spec_hash == manifest_hash
        except (OSError, UnicodeDecodeError, ManifestError):
            return None
        if not same:
            return None
        return dataclasses.replace(rec, healthy_manifest=text, healthy_source=spec.source)

    def _save(self) -> None:
        save_state(self._path, rollout.dump(self._records))
