"""Builders for the model's values, so tests say only what matters to them.

Test helpers, PURE. Every builder returns a real frozen model value with
realistic defaults; pass keyword overrides for the fields a test is about:

    spec = task("web", command="/bin/web")           # TaskSpec with a fake spec_hash
    running = pod("web")                              # owned, running, current hash of task("web")
    old = pod("web", spec_hash=task("web", args=("-v",)).spec_hash)
    obs = observation(running, foreign_pod())
    want = desired(spec, invalid("db", "db.yaml: at 'image': required"))

`spec_hash` here is a fake (sha256 over the fields' repr) so tests never depend
on `controller.manifests`; it is stable across runs and changes whenever a field that
affects the pod changes (`source` and `labels` do not count, as in the real one).
Pod UUIDs come from a module counter: unique within a run, never random.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from controller.model import (
    STAMP_MANAGED_BY,
    STAMP_MANAGED_BY_VALUE,
    STAMP_SPEC_HASH,
    STAMP_TASK,
    DesiredState,
    Invalid,
    Observation,
    ObservedApp,
    ObservedPod,
    PodState,
    PodUUID,
    SpecHash,
    TaskName,
    TaskSpec,
    frozen_map,
)

BASE_TIME = 1_700_000_000
"""Pod `created_at` default (Unix seconds); running pods start a second later."""

_UNHASHED_FIELDS = frozenset(
    {"spec_hash", "source", "labels", "suspend", "min_healthy_time_s", "healthy_deadline_s",
     "auto_revert"}
)  # fmt: skip
_uuid_counter = itertools.count(1)
_AUTO: Any = object()  # "derive from the other arguments"; None is a meaningful value


def _canonical(value: object) -> object:
    """A repr-stable form: mappings as sorted items, dataclasses as (name, fields)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _canonical(v)) for k, v in value.items()))
    if isinstance(value, tuple):
        return tuple(_canonical(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, _canonical(_fields(value)))
    return value


def _fields(value: object) -> dict[str, object]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}  # type: ignore[arg-type]


def fake_spec_hash(spec: TaskSpec) -> SpecHash:
    """Return a deterministic stand-in for `manifests.compute_spec_hash` of `spec`."""
    parts = {k: v for k, v in _fields(spec).items() if k not in _UNHASHED_FIELDS}
    return SpecHash(hashlib.sha256(repr(_canonical(parts)).encode()).hexdigest())


def task(name: str = "web", **overrides: Any) -> TaskSpec:
    """Return a valid TaskSpec named `name`; `overrides` set any TaskSpec field.

    Without an explicit `spec_hash` the fake hash of the other fields is used, so
    `task("web") == task("web")` and `task("web", args=("x",))` hashes differently.
    """
    fields: dict[str, Any] = {"image": f"example.com/{name}:1.0", "source": f"{name}.yaml"}
    fields.update(overrides)
    for key in ("env", "port_map", "labels"):
        if key in fields:
            fields[key] = frozen_map(fields[key])
    spec_hash = fields.pop("spec_hash", None)
    spec = TaskSpec(name=TaskName(name), spec_hash=SpecHash(""), **fields)
    return dataclasses.replace(spec, spec_hash=SpecHash(spec_hash or fake_spec_hash(spec)))


def _default_hash(name: str) -> SpecHash:
    """The hash of `task(name)`: what a pod of the default desired spec carries."""
    return task(name).spec_hash


def invalid(name: str = "web", *messages: str, source: str | None = None) -> Invalid:
    """Return an Invalid entry for `name` (a present but broken manifest)."""
    return Invalid(
        name=TaskName(name),
        source=source if source is not None else f"{name}.yaml",
        messages=messages or (f"{name}.yaml: at 'image': 'image' is a required property",),
    )


def next_uuid() -> PodUUID:
    """Return a fresh UUID-shaped id (counter based: unique and reproducible)."""
    n = next(_uuid_counter)
    return PodUUID(f"{n:08x}-0000-4000-8000-{n:012x}")


_APP_STATE = {
    PodState.PREPARED: "created",
    PodState.RUNNING: "running",
    PodState.EXITED: "exited",
    PodState.EXITED_GARBAGE: "exited",
    PodState.EXITED_DELETING: "exited",
}
_STARTED_STATES = frozenset(
    {PodState.RUNNING, PodState.EXITED, PodState.EXITED_GARBAGE, PodState.EXITED_DELETING}
)


def pod(
    task: str | None = "web",
    state: PodState = PodState.RUNNING,
    *,
    spec_hash: str | None = _AUTO,
    uuid: str | None = None,
    owned: bool = True,
    exit_code: int | None = None,
    started_at: int | None = _AUTO,
    created_at: int | None = BASE_TIME,
    app_names: Iterable[str] | None = None,
) -> ObservedPod:
    """Return an ObservedPod as `observe` would build it from `rkt list --format=json`.

    Owned pods (the default) carry rktctl's stamp on every app and, unless
    `spec_hash` is given, the hash of `task(task)`, i.e. they match the default
    desired spec. `exit_code` goes on the (first) app, where rkt reports it.
    `started_at` defaults to BASE_TIME + 1 for pods that have run, else None.
    `owned=False` (or `task=None`) gives a pod without the stamp.
    """
    owned = owned and task is not None
    if spec_hash is _AUTO:
        spec_hash = _default_hash(task) if owned and task is not None else None
    if started_at is _AUTO:
        started_at = BASE_TIME + 1 if state in _STARTED_STATES else None
    annotations: dict[str, str] = {}
    if owned:
        annotations = {STAMP_TASK: str(task), STAMP_MANAGED_BY: STAMP_MANAGED_BY_VALUE}
        if spec_hash is not None:
            annotations[STAMP_SPEC_HASH] = spec_hash
    names = tuple(app_names) if app_names is not None else (str(task) if owned else "foreign",)
    apps = tuple(
        ObservedApp(
            name=name,
            state=_APP_STATE.get(state, "unknown"),
            exit_code=exit_code if i == 0 else None,
            user_annotations=frozen_map(annotations),
        )
        for i, name in enumerate(names)
    )
    return ObservedPod(
        uuid=PodUUID(uuid) if uuid is not None else next_uuid(),
        state=state,
        task=TaskName(task) if owned and task is not None else None,
        spec_hash=SpecHash(spec_hash) if owned and spec_hash is not None else None,
        apps=apps,
        created_at=created_at,
        started_at=started_at,
    )


def foreign_pod(state: PodState = PodState.RUNNING, **kw: Any) -> ObservedPod:
    """Return a pod without rktctl's stamp (somebody else's): never to be touched."""
    return pod(None, state, owned=False, **kw)


def observation(
    *pods: ObservedPod, complete: bool = True, errors: Iterable[str] = ()
) -> Observation:
    """Return an Observation of `pods`; `complete=False` as when rkt hid some pods."""
    errs = tuple(errors)
    if not complete and not errs:
        errs = ("list: unable to read pod 1a2b3c4d: no such file or directory",)
    return Observation(pods=tuple(pods), complete=complete, errors=errs)


def desired(
    *entries: TaskSpec | Invalid,
    duplicates: Mapping[str, Iterable[str]] | None = None,
    unnamed_invalid: Iterable[Invalid] = (),
    ignored: Iterable[str] = (),
    dir_missing: bool = False,
    revision: str = "",
    source_revisions: Mapping[str, str] | None = None,
) -> DesiredState:
    """Return a DesiredState holding `entries` (keyed by their names) and the extras."""
    return DesiredState(
        tasks={e.name: e for e in entries},
        duplicates={TaskName(k): tuple(v) for k, v in (duplicates or {}).items()},
        unnamed_invalid=tuple(unnamed_invalid),
        ignored=tuple(ignored),
        dir_missing=dir_missing,
        revision=revision,
        source_revisions=dict(source_revisions or {}),
    )
