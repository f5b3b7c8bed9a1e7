"""Which desired tasks can run on this node, and with which effective spec.

PURE. The reconciler calls `place` once per pass, before planning, with the
node's attributes, the persisted port allocations and the ports bound on the
host (all gathered by `nodeinfo`). In order: constraints -> what the task's
stage1 can publish (fly cannot remap ports) -> host ports -> `${...}`
interpolation -> cpu/memory admission. Each valid task ends up either
in `specs` (interpolated, with the spec hash the pod is stamped with) or in
`blocked` with a readable reason; `Invalid` manifests are left to the planner.
It never raises for a data condition and never does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from controller import constraints, interpolate, ports, rktargs, security
from controller.manifests import compute_spec_hash
from controller.model import DEFAULT_STAGE1_FLAVOR, DesiredState, SpecHash, TaskName, TaskSpec

UNMAPPED_NETS = (("host",), ("none",))
"""`net` values without port mapping (as in rktargs): the port variable is the host port."""
IP_ATTRIBUTE = "unique.network.ip-address"
"""The node attribute that gives port variables their IP (0.0.0.0 when unknown)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Capacity:
    """What the node offers to tasks' cpu/memory requests. None = unknown: not limited."""

    cpu_millis: int | None = None
    memory_bytes: int | None = None
    reserved_cpu_millis: int = 0
    reserved_memory_bytes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    specs: Mapping[TaskName, TaskSpec] = field(default_factory=dict)
    """Runnable tasks' interpolated specs (their spec_hash is what pods are stamped with)."""
    blocked: Mapping[TaskName, str] = field(default_factory=dict)
    """Valid tasks that cannot run here -> why (constraints, ports, variables, resources)."""
    host_ports: Mapping[TaskName, Mapping[str, int]] = field(default_factory=dict)
    """Runnable task -> port label -> host port (rktargs ArgvOptions.host_ports)."""
    env: Mapping[TaskName, Mapping[str, str]] = field(default_factory=dict)
    """Runnable task -> port variables for `--set-env` (rktargs ArgvOptions.extra_env)."""
    persisted_ports: Mapping[TaskName, Mapping[str, int]] = field(default_factory=dict)
    """The port allocation map to save (`nodeinfo.save_ports`)."""
    bindings: Mapping[TaskName, Mapping[str, ports.PortBinding]] = field(default_factory=dict)
    """Runnable task -> port label -> full binding (for status: ip, host and pod side)."""
    resolved: Mapping[TaskName, _Resolved] = field(default_factory=dict, repr=False, compare=False)
    """What interpolation and the checks after it made of each task: `place(previous=)`
    reuses it for a task whose spec, bindings, attributes and environment are the same."""


_NONE: Mapping[Any, Any] = MappingProxyType({})
"""The bindings, host ports and port variables of a task without ports (one, shared)."""


@dataclass(frozen=True, slots=True)
class _Resolved:
    spec: TaskSpec
    bindings: Mapping[str, ports.PortBinding]
    context: tuple[object, ...]
    """(attrs, env, policy, hasher): the inputs shared by every task."""
    result: TaskSpec | str
    """The resolved spec, or why the task is blocked."""


def place(
    desired: DesiredState,
    *,
    attrs: Mapping[str, str],
    persisted_ports: Mapping[TaskName, Mapping[str, int]],
    host_bound: AbstractSet[int],
    running_tasks: AbstractSet[TaskName],
    cfg_port_range: tuple[int, int],
    env: Mapping[str, str] | None,
    capacity: Capacity,
    overcommit: bool,
    volumes_enabled: bool = True,
    stage1: str | None = None,
    default_stage1_flavor: str = DEFAULT_STAGE1_FLAVOR,
    policy: security.WorkloadPolicy | None = None,
    hasher: Callable[[TaskSpec], SpecHash] | None = None,
    previous: Placement | None = None,
) -> Placement:
    """Given the desired state and this node's facts, decide what runs here and how.

    `host_bound`: TCP ports listened on by anything; ports of `running_tasks`
    (tasks with a live pod: their persisted and static ports) are discounted here,
    so passing them already discounted is fine too. `env` is the controller's
    environment or None when `${env.X}` is not allowed. `stage1` is the controller's
    default stage1 and `default_stage1_flavor` the flavor of rkt's own default (a task's
    `spec.stage1` wins over both): on fly, ports are published only where the app
    listens (`ports.fly_problems`). `hasher` defaults to
    `manifests.compute_spec_hash`. Running tasks are admitted first, so a new task
    never pushes out a running one. A resolved spec that `policy` (default: the safe
    defaults of `security.WorkloadPolicy`) does not allow is blocked with the reasons.
    Deterministic: same inputs, same Placement. With `previous` (the last pass's
    Placement), a task whose spec (the same object or an equal one), port bindings,
    attributes, environment and policy are unchanged gets its resolved spec (or its
    reason to be blocked) from there instead of being interpolated and checked again.
    """
    workload_policy = policy if policy is not None else security.WorkloadPolicy()
    hash_spec = hasher if hasher is not None else compute_spec_hash
    valid = {n: s for n, s in sorted(desired.tasks.items()) if isinstance(s, TaskSpec)}
    blocked: dict[TaskName, str] = {}

    for name, spec in valid.items():
        failures = constraints.check(spec.constraints, attrs)
        if failures:
            blocked[name] = "; ".join(failures)
            continue
        where = _stage1_origin(spec, stage1, default_stage1_flavor)
        if where is not None:
            unpublishable = ports.fly_problems(spec, stage1=where)
            if unpublishable:
                blocked[name] = "; ".join(unpublishable)

    existing = set(desired.tasks) | set(desired.duplicates) | set(running_tasks)
    if desired.empty or desired.dir_missing:
        # The deletion guard keeps pods running: keep their ports reserved too.
        existing |= set(persisted_ports)
    allocation = ports.allocate(
        {n: s.resources.ports for n, s in valid.items() if n not in blocked},
        persisted=persisted_ports,
        host_bound=frozenset(host_bound) - _own_ports(valid, persisted_ports, running_tasks),
        port_range=cfg_port_range,
        existing=frozenset(existing),
    )
    blocked.update(allocation.blocked)

    host_ip = attrs.get(IP_ATTRIBUTE) or "0.0.0.0"  # noqa: S104 - rkt forwards on all addresses
    placed: dict[TaskName, TaskSpec] = {}
    bindings: dict[TaskName, Mapping[str, ports.PortBinding]] = {}
    resolved_now: dict[TaskName, _Resolved] = {}
    context = (attrs, env, workload_policy, hash_spec)
    before = previous.resolved if previous is not None else {}
    for name, spec in valid.items():
        if name in blocked:
            continue
        task_ports = allocation.bindings.get(name)
        task_bindings: Mapping[str, ports.PortBinding] = _NONE
        if task_ports:  # most tasks have no ports: they share one empty mapping
            task_bindings = {
                label: ports.PortBinding(
                    label=label,
                    host_port=port,
                    host_ip=host_ip,
                    container_port=_container_port(spec, label),
                )
                for label, port in task_ports.items()
            }
        old = before.get(name)
        if (
            old is not None
            and (old.spec is spec or old.spec == spec)
            and old.bindings == task_bindings
            and _same(old.context, context)
        ):
            result = old.result
            resolved_now[name] = old  # nothing new is built for an unchanged task
        else:
            result = _resolve(spec, name=name, task_bindings=task_bindings, attrs=attrs, env=env,
                              workload_policy=workload_policy, hash_spec=hash_spec)  # fmt: skip
            resolved_now[name] = _Resolved(spec, task_bindings, context, result)
        if isinstance(result, str):
            blocked[name] = result
            continue
        placed[name] = result
        bindings[name] = task_bindings

    if not overcommit:
        blocked.update(_admit(placed, running_tasks, capacity))
    runnable = {n: s for n, s in placed.items() if n not in blocked}
    return Placement(
        specs=runnable,
        blocked=dict(sorted(blocked.items())),
        host_ports={
            n: {lb: b.host_port for lb, b in bindings[n].items()} if bindings[n] else _NONE
            for n in runnable
        },
        env={n: interpolate.port_env(bindings[n]) if bindings[n] else _NONE for n in runnable},
        persisted_ports=allocation.persisted,
        bindings={n: bindings[n] for n in runnable},
        resolved=resolved_now,
    )


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return all(x is y or x == y for x, y in zip(a, b, strict=True))


def _resolve(
    spec: TaskSpec,
    *,
    name: TaskName,
    task_bindings: Mapping[str, ports.PortBinding],
    attrs: Mapping[str, str],
    env: Mapping[str, str] | None,
    workload_policy: security.WorkloadPolicy,
    hash_spec: Callable[[TaskSpec], SpecHash],
) -> TaskSpec | str:
    """The interpolated spec of one task, or why it is blocked."""
    ctx = interpolate.InterpolationContext(
        attrs=attrs, env=env, ports=task_bindings, task_name=name
    )
    try:
        resolved = interpolate.interpolate(spec, ctx, hasher=hash_spec)
    except interpolate.InterpolationError as exc:
        return "; ".join(exc.messages)
    # Checked after interpolation: a variable may produce a host path.
    problems = interpolate.volume_problems(resolved.volumes, absolute_allowed=True)
    problems += security.problems(resolved, workload_policy)
    return "; ".join(problems) if problems else resolved


def _stage1_origin(spec: TaskSpec, stage1: str | None, default_flavor: str) -> str | None:
    """Where a task's stage1 comes from when it is fly (for messages), else None."""
    chosen = spec.stage1 or stage1
    if rktargs.stage1_flavor(chosen, default=default_flavor) != "fly":
        return None
    if spec.stage1:
        return f"spec.stage1 {spec.stage1}"
    if stage1:
        return f"the controller's stage1 {stage1}"
    return "rkt's default stage1: default_stage1_flavor in the controller config"


def _own_ports(
    valid: Mapping[TaskName, TaskSpec],
    persisted: Mapping[TaskName, Mapping[str, int]],
    running: AbstractSet[TaskName],
) -> frozenset[int]:
    """Host ports our own live pods presumably hold: never a collision with ourselves."""
    held: set[int] = set()
    for name in running:
        held.update(persisted.get(name, {}).values())
        spec = valid.get(name)
        if spec is not None:
            held.update(p.static for p in spec.resources.ports if p.static is not None)
    return frozenset(held)


def _container_port(spec: TaskSpec, label: str) -> str | None:
    if spec.net in UNMAPPED_NETS or label not in spec.port_map:
        return None
    return ports.port_name(spec.port_map[label])


def _admit(
    placed: Mapping[TaskName, TaskSpec], running: AbstractSet[TaskName], capacity: Capacity
) -> dict[TaskName, str]:
    """Admit tasks in order (running ones first, then by name) while requests fit."""
    cpu = _Pool("cpu", capacity.cpu_millis, capacity.reserved_cpu_millis, _millis)
    memory = _Pool("memory", capacity.memory_bytes, capacity.reserved_memory_bytes, _bytes)
    blocked: dict[TaskName, str] = {}
    for name in sorted(placed, key=lambda n: (n not in running, n)):
        wants = (
            (cpu, placed[name].resources.cpu_millis or 0),
            (memory, placed[name].resources.memory_bytes or 0),
        )
        problems = [p for pool, want in wants if (p := pool.shortfall(want)) is not None]
        if problems:
            blocked[name] = "; ".join(problems) + "; set overcommit = true to allow it"
            continue
        for pool, want in wants:
            pool.take(name, want)
    return blocked


class _Pool:
    """One resource during admission: what the node offers and who took how much."""

    def __init__(
        self, kind: str, total: int | None, reserved: int, fmt: Callable[[int], str]
    ) -> None:
        self.kind, self.total, self.reserved, self.fmt = kind, total, reserved, fmt
        self.used = 0
        self.users: list[str] = []

    def shortfall(self, want: int) -> str | None:
        if not want or self.total is None:
            return None
        free = max(self.total - self.reserved, 0)
        if self.used + want <= free:
            return None
        fmt = self.fmt
        taken = f"; {fmt(self.used)} requested by {', '.join(self.users)}" if self.users else ""
        return (
            f"not enough {self.kind}: the task requests {fmt(want)} but only "
            f"{fmt(max(free - self.used, 0))} of {fmt(free)} is free "
            f"(node {fmt(self.total)} minus {fmt(self.reserved)} reserved{taken})"
        )

    def take(self, name: str, want: int) -> None:
        if want:
            self.used += want
            self.users.append(name)


def _millis(value: int) -> str:
    return f"{value}m"


def _bytes(value: int) -> str:
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value / (1 << 20):.1f}Mi"
