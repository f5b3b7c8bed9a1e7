"""Host port allocation: static ports checked, dynamic ports picked and kept.

PURE. `placement.place` calls `allocate` once per pass with every placeable
task's port requests, the allocations saved last time (`nodeinfo.load_ports`),
and the TCP ports other processes listen on. It returns which host port each
label gets, which tasks cannot run (a static port taken by another task or
process, an exhausted range) and the new map to save. Nothing here reads files
or sockets: the shell gathers those facts and persists the result.

Rules, chosen so that a port never moves under a task that keeps running:
- Static ports: tasks that held all their static ports last time go first (so a
  newly added manifest never evicts a running task), then the rest by name; a
  task whose static port is already claimed, or bound on the host by something
  else, is blocked with a message naming the holder and claims nothing.
- Dynamic ports: a persisted port is kept while it is in range and free; other
  labels get the lowest free port of the range. Ports persisted for tasks that
  still exist but are not placed now (blocked) stay reserved for them.
- Only tasks that still exist keep persisted entries.

The fly stage1 shares the host's network and ignores `--port`, so a port can only be
published where the app itself listens: `fly_problems` refuses every mapping whose
host port would differ from the container port (see README "Ports and port_map").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from controller.model import PortRequest, TaskName, TaskSpec

_NAMED_PORT = re.compile(r"^(\d{1,5})-(tcp|udp)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class PortBinding:
    """One allocated port of a task: the host side and, when known, the pod side."""

    label: str
    host_port: int
    host_ip: str = "0.0.0.0"  # noqa: S104 - rkt forwards the port on every host address
    container_port: str | None = None
    """The image's port name the host port forwards to (`6379-tcp`); None with `net: host`."""

    @property
    def container_port_number(self) -> int | None:
        """The port number inside the pod when the name says it (`6379-tcp` -> 6379)."""
        return container_port_number(self.container_port)


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    bindings: Mapping[TaskName, Mapping[str, int]] = field(default_factory=dict)
    """Task -> label -> host port, for every requesting task that is not blocked."""
    blocked: Mapping[TaskName, str] = field(default_factory=dict)
    """Task -> why its ports cannot be allocated."""
    persisted: Mapping[TaskName, Mapping[str, int]] = field(default_factory=dict)
    """The allocation map to save for the next pass (and the next daemon)."""


def port_name(value: str) -> str:
    """Return the rkt port name for a `port_map` value: a number `6379` becomes `6379-tcp`.

    rkt names the ports of a converted Docker image `<port>-<proto>`; ACI images
    choose their own names, which pass through unchanged (they cannot be looked
    up without the image manifest).
    """
    text = value.strip()
    return f"{int(text)}-tcp" if text.isdigit() else text


def container_port_number(name: str | None) -> int | None:
    """Return the port number a port name spells (`6379-tcp`, `6379`), else None."""
    if name is None:
        return None
    text = name.strip()
    if text.isdigit():
        return int(text)
    match = _NAMED_PORT.match(text)
    return int(match.group(1)) if match else None


def fly_problems(spec: TaskSpec, *, stage1: str) -> tuple[str, ...]:
    """Given a task that runs on the fly stage1, return why its ports cannot work there.

    fly has no network namespace: the app binds the host's ports itself and rkt ignores
    `--port`. A mapped port works only as `static: N` with `port_map` naming container
    port N (the app listens on N, which is the host port); a dynamic port, another host
    port or a named container port cannot be published. `net: ["host"]` (no port_map:
    the app listens on `${RKTCTL_PORT_<label>}`) is unaffected. `stage1` says where the
    flavor came from, for the message. An empty tuple means every port works.
    """
    if spec.net in (("host",), ("none",)):
        return ()
    problems: list[str] = []
    fly = f"stage1 fly ({stage1}) shares the host's network and cannot remap ports"
    own_net = "or give the task a stage1 with its own network (spec.stage1: the host stage1)"
    for request in sorted(spec.resources.ports, key=lambda r: r.label):
        label = request.label
        target = spec.port_map.get(label)
        if target is None:
            continue  # validation requires a mapping; nothing to check
        number = container_port_number(port_name(target))
        if number is None:
            problems.append(
                f"port {label!r}: {fly}, so rktctl must know the port the app listens on, "
                f"but port_map names {target!r}; map it to the container port number "
                f"(e.g. {label}: 8080) with static set to the same number, {own_net}"
            )
        elif request.static is None:
            problems.append(
                f"port {label!r} is dynamic, but {fly}: container port {number} would be "
                f"the host port, not one rktctl picks; write static: {number}, or use "
                f'net: ["host"] without port_map and let the app listen on '
                f"${{RKTCTL_PORT_{label}}}, {own_net}"
            )
        elif request.static != number:
            problems.append(
                f"port {label!r}: {fly}: the app listens on container port {number} on the "
                f"host itself, and host port {request.static} would never answer; write "
                f"static: {number}, {own_net}"
            )
    return tuple(problems)


def allocate(
    requests: Mapping[TaskName, Sequence[PortRequest]],
    *,
    persisted: Mapping[TaskName, Mapping[str, int]],
    host_bound: AbstractSet[int],
    port_range: tuple[int, int],
    existing: AbstractSet[TaskName] = frozenset(),
) -> Allocation:
    """Given each task's port requests, allocate host ports; see the module rules.

    `persisted` is the `persisted` of the previous Allocation (static ports
    included: they record who held a static port). `host_bound` are ports in use
    on the host by anything but rktctl's own live pods. `existing` names tasks
    that are desired but not placed now (blocked earlier): their persisted
    entries are kept and reserved. Never raises; problems become `blocked`.
    """
    low, high = port_range
    names = sorted(requests)
    blocked: dict[TaskName, str] = {}
    claimed: dict[int, TaskName] = {}  # host port -> task holding it this pass

    # --- static ports -----------------------------------------------------------
    def held_before(name: TaskName) -> bool:
        previous = persisted.get(name, {})
        statics = [r for r in requests[name] if r.static is not None]
        return bool(statics) and all(previous.get(r.label) == r.static for r in statics)

    for name in sorted(names, key=lambda n: (not held_before(n), n)):
        statics = sorted((r.static, r.label) for r in requests[name] if r.static is not None)
        problems: list[str] = []
        seen: set[int] = set()
        for port, _label in statics:
            if port in seen:
                problems.append(f"static port {port} is requested twice by this task")
            elif port in claimed:
                problems.append(f"static port {port} is already used by task {claimed[port]}")
            elif port in host_bound:
                problems.append(f"static port {port} is already in use on this host")
            seen.add(port)
        if problems:
            blocked[name] = "; ".join(problems)
            continue
        for port, _label in statics:
            claimed[port] = name

    # --- dynamic ports: keep what was persisted and is still free ---------------
    def keep(name: TaskName, port: int | None) -> bool:
        if port is None or not low <= port <= high or port in claimed or port in host_bound:
            return False
        claimed[port] = name
        return True

    kept: dict[TaskName, dict[str, int]] = {}
    for name in names:
        previous = persisted.get(name, {})
        for req in _dynamic(requests[name]):
            if keep(name, previous.get(req.label)):
                kept.setdefault(name, {})[req.label] = previous[req.label]
    for name in sorted(existing - set(requests)):
        for label, port in sorted(persisted.get(name, {}).items()):
            if keep(name, port):
                kept.setdefault(name, {})[label] = port

    # --- dynamic ports: the lowest free port for the rest -----------------------
    bindings: dict[TaskName, dict[str, int]] = {}
    next_free = low
    for name in names:
        if name in blocked:
            continue
        ports = {r.label: r.static for r in requests[name] if r.static is not None}
        ports.update(kept.get(name, {}))
        for req in _dynamic(requests[name]):
            if req.label in ports:
                continue
            while next_free <= high and (next_free in claimed or next_free in host_bound):
                next_free += 1
            if next_free > high:
                blocked[name] = f"no free host port left in range {low}-{high} for {req.label!r}"
                break
            claimed[next_free] = name
            ports[req.label] = next_free
        if name not in blocked:
            bindings[name] = dict(sorted(ports.items()))

    # Blocked and unplaced tasks keep only their reserved dynamic ports: saving a
    # blocked task's static port would let it jump the queue as "held before".
    saved = {n: dict(sorted(p.items())) for n, p in kept.items() if n not in bindings}
    saved.update(bindings)
    return Allocation(
        bindings=bindings,
        blocked=dict(sorted(blocked.items())),
        persisted={n: saved[n] for n in sorted(saved) if saved[n]},
    )


def _dynamic(requests: Sequence[PortRequest]) -> list[PortRequest]:
    return sorted((r for r in requests if r.static is None), key=lambda r: r.label)
