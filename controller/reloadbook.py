"""The shell of `spec.reload`: what each pod's app has read, in `<state_dir>/reloads.json`.

SHELL around the pure `appreload`. Each pass the reconciler calls `add_signals()` with
its plan: the reload files of every task that has them are digested (`reloadfiles`,
one stat per unchanged file), and a Signal is added for each running pod whose app
read other contents. `booked()` records what a signalled app has read (the Signal
carries it) once the signal went out; records of pods that are gone are dropped. The
file survives a restart of rktctl, so a change made while it was down still reaches
the app.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path

from controller import appreload, reloadfiles, rktargs, volumes
from controller.fsio import read_json, save_state
from controller.model import (
    DesiredState,
    Observation,
    Outcome,
    Plan,
    PodUUID,
    RunPrepared,
    Signal,
    Start,
    TaskName,
    TaskSpec,
)

RELOADS_FILE = "reloads.json"


class ReloadBook:
    def __init__(self, state_dir: str) -> None:
        self._path = Path(state_dir) / RELOADS_FILE
        self._data_dir = volumes.task_data_dir(state_dir)
        self._digests = reloadfiles.FileDigests()
        self._read: dict[PodUUID, dict[str, str]] = _load(self._path)
        """Per pod: its reload files and the digests its app has read."""
        self._started_with: dict[TaskName, Mapping[str, str]] = {}
        """The files as they were when a task's latest start was planned."""
        self._watched: frozenset[str] = frozenset()

    def watched_paths(self) -> frozenset[str]:
        """The host paths of every reload file of the last pass (for the daemon's watch)."""
        return self._watched

    def add_signals(
        self, the_plan: Plan, desired: DesiredState, observation: Observation, *, dry_run: bool
    ) -> Plan:
        """Return `the_plan` with a Signal for each pod whose app has not read its files."""
        specs = {
            name: spec
            for name, spec in desired.tasks.items()
            if isinstance(spec, TaskSpec) and spec.reload is not None
        }
        if not specs and not self._read:
            return the_plan
        now_read = {name: self._digests.digests(self._paths(spec)) for name, spec in specs.items()}
        reloads = appreload.plan_reloads(
            specs,
            observation,
            now_read,
            self._read,
            acting=frozenset(a.task for a in the_plan.actions),
            started_with=self._started_with,
        )
        if dry_run:
            return dataclasses.replace(the_plan, actions=(*the_plan.actions, *reloads.signals))
        self._watched = frozenset(p for digests in now_read.values() for p in digests)
        self._digests.forget_except(self._watched)
        for action in the_plan.actions:
            if isinstance(action, Start | RunPrepared) and action.task in now_read:
                self._started_with[action.task] = now_read[action.task]
        self._started_with = {t: d for t, d in self._started_with.items() if t in specs}
        changed = bool(reloads.adopted)
        if observation.complete:
            present = {pod.uuid for pod in observation.pods}
            gone = [uuid for uuid in self._read if uuid not in present]
            for uuid in gone:
                del self._read[uuid]
            changed = changed or bool(gone)
        self._read.update({uuid: dict(d) for uuid, d in reloads.adopted.items()})
        if changed:
            self._save()
        return dataclasses.replace(the_plan, actions=(*the_plan.actions, *reloads.signals))

    def booked(self, outcomes: Iterable[Outcome]) -> None:
        """Record what each app that was signalled has now read."""
        changed = False
        for outcome in outcomes:
            action = outcome.action
            if isinstance(action, Signal) and outcome.ok:
                self._read[action.uuid] = dict(action.files)
                changed = True
        if changed:
            self._save()

    def _paths(self, spec: TaskSpec) -> list[str]:
        assert spec.reload is not None
        # As a relative volume host path resolves; the manifest rules refuse '..' here.
        return [rktargs.host_path(spec.name, path, self._data_dir) for path in spec.reload.paths]

    def _save(self) -> None:
        doc = {uuid: dict(sorted(d.items())) for uuid, d in sorted(self._read.items())}
        save_state(self._path, doc)


def _load(path: Path) -> dict[PodUUID, dict[str, str]]:
    raw = read_json(path)
    if not isinstance(raw, dict):
        return {}
    return {
        PodUUID(uuid): {str(k): str(v) for k, v in digests.items()}
        for uuid, digests in raw.items()
        if isinstance(uuid, str) and isinstance(digests, dict)
    }
