"""This node's facts: attributes, capacity, bound ports, persisted port allocations.

SHELL. The reconciler calls `gather_attributes` at startup and on SIGHUP (rkt's
own attributes come from `rkt version`, passed in by the caller: this module
never runs a command), `bound_tcp_ports` every pass, and `load_ports` /
`save_ports` around `placement.place`. `rktctl node` prints the attributes.
Everything is read from /proc, /etc and the config; nothing here decides
anything (that is `placement`).

Attribute keys (flat; constraints and `${attr.X}` look them up, see constraints):
  driver.rkt = "1", driver.rkt.version, driver.rkt.appc.version
                                 from `rkt version`, absent when rkt is not usable
  driver.rkt.volumes.enabled = "true"   only when config volumes_enabled (as Nomad)
  unique.hostname, node.unique.name     the host name (Nomad: node.unique.name)
  node.unique.id       a stable id derived from /etc/machine-id (not the id itself)
  unique.network.ip-address    source IP of the default route, when there is one
  kernel.name ("linux"), kernel.version (numeric part of the release, "6.1.0",
  so `version` constraints work), kernel.release (full `uname -r`)
  cpu.arch (Go naming: amd64, arm64, ...), cpu.numcores, memory.totalbytes
  meta.<key>           every `meta` entry of the config
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path

import structlog

from controller.config import Config
from controller.fsio import atomic_write
from controller.model import TaskName
from controller.placement import Capacity

log = structlog.get_logger()

PORTS_FILE = "ports.json"
PORTS_FORMAT_VERSION = 1
PROC_NET_TCP = ("/proc/net/tcp", "/proc/net/tcp6")
_TCP_LISTEN = "0A"
_GO_ARCH = {
    "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
    "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386",
}  # fmt: skip
_KERNEL_VERSION = re.compile(r"^\d+(?:\.\d+)*")


def gather_attributes(cfg: Config, *, rkt_attrs: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return this node's attributes (keys in the module docstring), sorted by key.

    `rkt_attrs` are the driver.rkt* attributes from `rkt version`. A fact that
    cannot be read is left out rather than guessed.
    """
    attrs: dict[str, str] = dict(rkt_attrs or {})
    if cfg.volumes_enabled:
        attrs["driver.rkt.volumes.enabled"] = "true"
    hostname = socket.gethostname()
    attrs["unique.hostname"] = hostname
    attrs["node.unique.name"] = hostname
    node_id = _node_id()
    if node_id:
        attrs["node.unique.id"] = node_id
    address = _default_route_ip()
    if address:
        attrs["unique.network.ip-address"] = address
    uname = os.uname()
    attrs["kernel.name"] = uname.sysname.lower()
    attrs["kernel.release"] = uname.release
    numeric = _KERNEL_VERSION.match(uname.release)
    attrs["kernel.version"] = numeric.group(0) if numeric else uname.release
    machine = platform.machine()
    attrs["cpu.arch"] = _GO_ARCH.get(machine, machine.lower())
    cores = os.cpu_count()
    if cores:
        attrs["cpu.numcores"] = str(cores)
    with contextlib.suppress(OSError):
        total = parse_meminfo(Path("/proc/meminfo").read_text(encoding="ascii"))
        if total is not None:
            attrs["memory.totalbytes"] = str(total)
    attrs.update({f"meta.{key}": value for key, value in cfg.meta.items()})
    return dict(sorted(attrs.items()))


def capacity(attrs: Mapping[str, str], cfg: Config | None = None) -> Capacity:
    """Return what the node offers to tasks: cores x 1000 millicores and total memory,
    with the config's reserve. A fact missing from `attrs` means "not limited"."""
    cores = attrs.get("cpu.numcores", "")
    memory = attrs.get("memory.totalbytes", "")
    return Capacity(
        cpu_millis=int(cores) * 1000 if cores.isdigit() else None,
        memory_bytes=int(memory) if memory.isdigit() else None,
        reserved_cpu_millis=cfg.reserved_cpu_millis if cfg else 0,
        reserved_memory_bytes=cfg.reserved_memory_bytes if cfg else 0,
    )


def parse_meminfo(text: str) -> int | None:
    """Return MemTotal of a /proc/meminfo text in bytes, None if absent."""
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key.strip() == "MemTotal":
            parts = rest.split()
            if parts and parts[0].isdigit():
                factor = 1024 if len(parts) > 1 and parts[1].lower() == "kb" else 1
                return int(parts[0]) * factor
    return None


def parse_proc_net_tcp(text: str) -> frozenset[int]:
    """Return the local ports of LISTEN sockets in a /proc/net/tcp{,6} text."""
    ports: set[int] = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != _TCP_LISTEN:
            continue
        _, _, port = fields[1].rpartition(":")
        with contextlib.suppress(ValueError):
            ports.add(int(port, 16))
    return frozenset(ports)


def bound_tcp_ports(paths: Iterable[str] = PROC_NET_TCP) -> frozenset[int]:
    """Return the TCP ports something listens on in this network namespace (any address).

    Reads /proc directly (no `ss` subprocess). rkt's port forwarding to a pod is
    NAT, not a listening socket, so our own pods' mapped ports do not show here;
    that is why dynamic allocations are persisted. Unreadable files count as empty.
    """
    ports: set[int] = set()
    for path in paths:
        with contextlib.suppress(OSError):
            ports |= parse_proc_net_tcp(Path(path).read_text(encoding="ascii"))
    return frozenset(ports)


def load_ports(state_dir: str | os.PathLike[str]) -> dict[TaskName, dict[str, int]]:
    """Return the persisted port allocations (`<state_dir>/ports.json`), {} if none.

    A corrupt file is logged and treated as empty (ports are then chosen afresh)
    rather than stopping every pass.
    """
    path = Path(state_dir) / PORTS_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        log.warning("state_file_invalid", path=str(path), error=str(exc))
        return {}
    tasks = document.get("tasks") if isinstance(document, dict) else None
    if not isinstance(tasks, dict):
        log.warning("state_file_invalid", path=str(path), error="no 'tasks' object")
        return {}
    result: dict[TaskName, dict[str, int]] = {}
    for name, labels in sorted(tasks.items()):
        if not isinstance(labels, dict):
            continue
        valid = {
            str(label): port
            for label, port in labels.items()
            if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535
        }
        if valid:
            result[TaskName(str(name))] = dict(sorted(valid.items()))
    return result


def save_ports(
    state_dir: str | os.PathLike[str], mapping: Mapping[TaskName, Mapping[str, int]]
) -> None:
    """Write the port allocations atomically; raise StatusWriteError on failure."""
    document = {
        "version": PORTS_FORMAT_VERSION,
        "tasks": {name: dict(sorted(labels.items())) for name, labels in sorted(mapping.items())},
    }
    atomic_write(Path(state_dir) / PORTS_FILE, json.dumps(document, indent=2) + "\n")


def _node_id() -> str | None:
    # machine-id is meant to stay private (machine-id(5)): expose a hash, as
    # sd_id128_get_machine_app_specific does, formatted like Nomad's node UUID.
    try:
        machine_id = Path("/etc/machine-id").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not machine_id:
        return None
    digest = hashlib.sha256(f"rktctl.io/node:{machine_id}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _default_route_ip() -> str | None:
    # Connecting a UDP socket sends nothing; it only asks the kernel which source
    # address the default route would use (192.0.2.1 is TEST-NET-1).
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            address: str = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("0.") else address
