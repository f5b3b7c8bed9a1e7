"""`${...}` variables in a task's command, args, env values and volume paths.

PURE. `placement.place` calls `interpolate` for every placeable task each pass,
after ports are allocated, and gives rktargs `port_env` for `--set-env`. It
never reads the environment or the node itself: everything comes in through
`InterpolationContext`. It does not import `ports` or `manifest` (siblings in
the layering): bindings are duck-typed and the spec hasher is passed in.

Variables:
  ${meta.X} ${attr.X} ${node.unique.name} ${node.unique.id} ${driver.rkt.version}
      node attributes (see `nodeinfo`); `attr.X` is the attribute `X`
  ${env.X}      the controller's environment, only when config allows it
  ${task.name}  ${NOMAD_TASK_NAME}   the task's name
  ${RKTCTL_PORT_<l>}       the port as seen inside the pod: the container port
                           number when `port_map` gives `<n>-tcp`/`<n>-udp` or a
                           number; the host port with `net: host`, without a
                           mapping, or when the image names its port otherwise
  ${RKTCTL_HOST_PORT_<l>}  the host port          ${RKTCTL_IP_<l>}  the host IP
  ${RKTCTL_ADDR_<l>}       host IP:host port      and NOMAD_* spellings of all four
Each port variable depends only on the manifest and the persisted allocation,
so it means the same on every start (Nomad's NOMAD_PORT_x did not).
`$${` is a literal `${`. An unknown variable is an error, never left verbatim.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from controller.errors import ManifestError
from controller.model import SpecHash, TaskSpec, Volume, frozen_map

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")
_PORT_VARIABLE = re.compile(r"^(?:RKTCTL|NOMAD)_(HOST_PORT|PORT|IP|ADDR)_(.+)$")
PORTS_HASH_KEY = "rktctl.io/ports"
"""Pseudo env key under which the port variables enter the spec hash (never a real env name)."""


class InterpolationError(ManifestError):
    """Raised when a task uses variables this node cannot resolve; lists every one."""

    code = "interpolation_failed"


class Binding(Protocol):
    """What interpolation needs of a `ports.PortBinding`."""

    @property
    def host_port(self) -> int: ...
    @property
    def host_ip(self) -> str: ...
    @property
    def container_port_number(self) -> int | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class InterpolationContext:
    attrs: Mapping[str, str]
    """Node attributes as `nodeinfo.gather_attributes` returns them."""
    env: Mapping[str, str] | None
    """The controller's environment, or None when `${env.X}` is not allowed."""
    ports: Mapping[str, Binding]
    """Port label -> its allocated binding."""
    task_name: str


def port_env(bindings: Mapping[str, Binding]) -> dict[str, str]:
    """Return the RKTCTL_* and NOMAD_* port variables of `bindings`, sorted by name."""
    env: dict[str, str] = {}
    for label, binding in bindings.items():
        inside = binding.container_port_number
        values = {
            "PORT": str(inside if inside is not None else binding.host_port),
            "HOST_PORT": str(binding.host_port),
            "IP": binding.host_ip,
            "ADDR": _address(binding.host_ip, binding.host_port),
        }
        for prefix in ("RKTCTL", "NOMAD"):
            for kind, value in values.items():
                env[f"{prefix}_{kind}_{label}"] = value
    return dict(sorted(env.items()))


def interpolate(
    spec: TaskSpec, ctx: InterpolationContext, *, hasher: Callable[[TaskSpec], SpecHash]
) -> TaskSpec:
    """Given a valid spec and this node's context, return the spec with variables resolved.

    The result's `spec_hash` is `hasher` applied to the resolved spec with its port
    variables added under PORTS_HASH_KEY, so a node change that alters the effective
    config (or a moved host port) replaces the pod and an unrelated one does not.
    A spec without variables and ports is returned unchanged (same hash).
    Raise InterpolationError naming every unknown variable and where it is.
    """
    problems: list[str] = []

    def sub(text: str, where: str) -> str:
        return _substitute(text, where, ctx, problems)

    command = sub(spec.command, "spec.config.command") if spec.command is not None else None
    args = tuple(sub(arg, f"spec.config.args[{i}]") for i, arg in enumerate(spec.args))
    env = {key: sub(value, f"spec.env.{key}") for key, value in spec.env.items()}
    volumes = tuple(
        dataclasses.replace(
            volume,
            host=sub(volume.host, f"spec.config.volumes[{i}]"),
            container=sub(volume.container, f"spec.config.volumes[{i}]"),
        )
        for i, volume in enumerate(spec.volumes)
    )
    if problems:
        raise InterpolationError(spec.source or spec.name, problems)
    if (command, args, env, volumes) == (spec.command, spec.args, dict(spec.env), spec.volumes):
        resolved = spec
        if not ctx.ports:
            return spec
    else:
        resolved = dataclasses.replace(
            spec, command=command, args=args, env=frozen_map(env), volumes=volumes
        )
    hashed = resolved
    if ctx.ports:
        ports = json.dumps(port_env(ctx.ports), sort_keys=True, separators=(",", ":"))
        hashed = dataclasses.replace(resolved, env=frozen_map({**env, PORTS_HASH_KEY: ports}))
    return dataclasses.replace(resolved, spec_hash=hasher(hashed))


def volume_problems(volumes: tuple[Volume, ...], *, absolute_allowed: bool) -> tuple[str, ...]:
    """Return what is wrong with resolved volumes: a relative container path, or an
    absolute host path when `volumes_enabled` is off (a variable may produce one)."""
    problems: list[str] = []
    for i, volume in enumerate(volumes):
        if not volume.container.startswith("/"):
            problems.append(
                f"spec.config.volumes[{i}]: container path {volume.container!r} is not absolute"
            )
        if volume.host.startswith("/") and not absolute_allowed:
            problems.append(
                f"spec.config.volumes[{i}]: host path {volume.host!r} is absolute but "
                "volumes_enabled is false in the controller config"
            )
    return tuple(problems)


def _substitute(text: str, where: str, ctx: InterpolationContext, problems: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        if found == "$${":
            return "${"
        if match.group(1) is None:
            problems.append(f"{where}: unterminated ${{ (write $${{ for a literal ${{)")
            return found
        name = match.group(1).strip()
        value, problem = _resolve(name, ctx)
        if problem is not None:
            problems.append(f"{where}: {problem}")
            return found
        assert value is not None
        return value

    return _TOKEN.sub(replace, text)


def _resolve(name: str, ctx: InterpolationContext) -> tuple[str | None, str | None]:
    """Return (value, None) or (None, why it cannot be resolved)."""
    unknown = f"unknown variable ${{{name}}}"
    if not name:
        return None, "empty variable ${}"
    if name in ("task.name", "NOMAD_TASK_NAME"):
        return ctx.task_name, None
    if name.startswith("env."):
        if ctx.env is None:
            return None, (
                f"${{{name}}} is not allowed: set allow_env_interpolation = true "
                "in the controller config"
            )
        key = name.removeprefix("env.")
        if key in ctx.env:
            return ctx.env[key], None
        return None, f"{unknown} ({key} is not set in the controller's environment)"
    port = _PORT_VARIABLE.match(name)
    if port is not None:
        kind, label = port.groups()
        if label not in ctx.ports:
            return None, f"{unknown} (the task has no port labelled {label!r})"
        binding = ctx.ports[label]
        key = name.split("_", 1)[0]
        return port_env({label: binding})[f"{key}_{kind}_{label}"], None
    # Same lookup rule as constraints.lookup (siblings may not import each other).
    if name in ctx.attrs:
        return ctx.attrs[name], None
    if name.startswith("attr.") and name.removeprefix("attr.") in ctx.attrs:
        return ctx.attrs[name.removeprefix("attr.")], None
    return None, f"{unknown} ({name.removeprefix('attr.')} is not an attribute of this node)"


def _address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
