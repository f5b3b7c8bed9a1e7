"""What the demo needs to run on a real rkt: the checks first, its image, its manifests.

SHELL (looks at the host; writes the image file), used only by `controller.demo`.
`check_rkt` names every missing piece with its fix (root, a stage1 image, Debian's
busybox-static, systemd-nspawn and iptables for the host stage1) before anything runs.
`build_image` writes the demo's busybox ACI; `adapt_manifest` (pure) rewrites an
example of desired/ to run on it without a network. The fake rkt needs none of this.
"""

from __future__ import annotations

import copy
import os
import posixpath
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller import aci

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FAKE = REPO / "tests" / "fakes" / "rkt"
# rkt's release tarball and Debian's layout put the stage1 images here.
STAGE1_IMAGES = Path("/usr/lib/rkt/stage1-images")
# rkt's host stage1 asks systemd-machined to register the pod; where PID 1 is not systemd
# (containers, CI) that fails, and this shim turns registration off (see its comment).
NSPAWN_SHIM = REPO / "tests" / "nspawn-shim"
IMAGE_NAME = "example.com/rktctl-demo"
IMAGE_VERSION = "1.0.0"
# Every port name the examples map to: Docker-style "<port>-tcp" and etcd's own names.
IMAGE_PORTS = {"8080-tcp": 8080, "6379-tcp": 6379, "client": 2379, "peer": 2380}
# The examples run as `redis`; the image needs the name to exist for rkt to resolve it.
IMAGE_FILES = {
    "etc/passwd": b"root:x:0:0:root:/:/bin/sh\nredis:x:999:999:redis:/data:/bin/sh\n",
    "etc/group": b"root:x:0:\nredis:x:999:\n",
}


@dataclass(frozen=True)
class DemoRkt:
    """The rkt the demo drives: the fake, or a real one with a stage1 image."""

    rkt: str
    stage1: str | None = None
    """Absolute path of the stage1 ACI (None: the fake, which needs none)."""
    path_prefix: tuple[str, ...] = ()
    """Directories put first on rkt's PATH (the nspawn shim)."""

    @property
    def is_fake(self) -> bool:
        return self.stage1 is None

    @property
    def fly(self) -> bool:
        return self.stage1 is not None and "fly" in Path(self.stage1).name


def check_rkt(
    rkt: str,
    stage1: str | None,
    *,
    euid: int | None = None,
    busybox: Path = aci.BUSYBOX,
    stage1_images: Path = STAGE1_IMAGES,
    tool_path: str | None = None,
) -> tuple[DemoRkt, list[str]]:
    """Given the demo's --rkt and --stage1, return what to drive and what is missing for it.

    The fake needs nothing. A real rkt needs root, a stage1 image, Debian's
    busybox-static for the demo image and, for the host stage1, systemd-nspawn and
    iptables (looked up in `tool_path`, default: PATH, /usr/sbin and /sbin). Each
    problem says how to fix it; the demo runs only without problems.
    """
    found = shutil.which(rkt)
    if found is None and rkt == str(DEFAULT_FAKE):
        return DemoRkt(rkt=rkt), [
            f"the bundled fake rkt {rkt} is missing: run the demo from a checkout of rktctl"
        ]
    if found is None:
        return DemoRkt(rkt=rkt), [
            f"rkt {rkt!r} not found: install rkt 1.30 (its release puts rkt in /usr/local/bin "
            f"and the stage1 images in {STAGE1_IMAGES}), or name it: make demo RKT=/path/to/rkt"
        ]
    if Path(found).resolve() == DEFAULT_FAKE.resolve():
        if stage1 is not None:
            return DemoRkt(rkt=found), ["STAGE1 is for a real rkt; the fake needs none"]
        return DemoRkt(rkt=found), []
    problems: list[str] = []
    if (os.geteuid() if euid is None else euid) != 0:
        problems.append(
            "a real rkt needs root (it refuses unprivileged users): sudo make demo RKT=rkt"
        )
    problems += _busybox_problems(busybox)
    flavor = stage1 or "fly"
    path = Path(flavor) if "/" in flavor else stage1_images / f"stage1-{flavor}.aci"
    if not path.is_file():
        problems.append(
            f"stage1 image {path} not found: STAGE1 is fly, host or the path of a stage1 ACI"
        )
    prefix: tuple[str, ...] = ()
    if "fly" not in path.name:
        if tool_path is None:
            tool_path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
        for tool, package in (("systemd-nspawn", "systemd-container"), ("iptables", "iptables")):
            if shutil.which(tool, path=tool_path) is None:
                problems.append(f"the {path.name} stage1 needs {tool}: apt-get install {package}")
        if not _pid1_is_systemd():
            prefix = (str(NSPAWN_SHIM),)
            if not NSPAWN_SHIM.is_dir():
                problems.append(
                    f"PID 1 is not systemd, so the {path.name} stage1 needs {NSPAWN_SHIM} "
                    "from a checkout of rktctl"
                )
    return DemoRkt(rkt=found, stage1=str(path.absolute()), path_prefix=prefix), problems


def _busybox_problems(busybox: Path) -> list[str]:
    install = "apt-get install busybox-static"
    try:
        interpreter = aci.elf_interpreter(busybox)
    except OSError:
        return [f"{busybox} is missing: the demo's image is built from it ({install})"]
    except ValueError as exc:
        return [f"{exc}: the demo's image needs Debian's static busybox ({install})"]
    if interpreter is not None:
        return [
            f"{busybox} is dynamically linked (it needs {interpreter}, which the demo's image "
            f"lacks): {install}"
        ]
    return []


def _pid1_is_systemd() -> bool:
    try:
        return Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False


def build_image(path: Path) -> str:
    """Write the demo's busybox ACI to `path` and return it (OSError if busybox is unreadable)."""
    return aci.busybox_aci(
        path,
        name=IMAGE_NAME,
        version=IMAGE_VERSION,
        exec_=("/bin/sleep", "86400"),
        ports=IMAGE_PORTS,
        files=IMAGE_FILES,
    )


def adapt_manifest(
    doc: Mapping[str, Any], *, image: str, fly: bool, host_root: str
) -> tuple[dict[str, Any], list[str]]:
    """Given an example manifest (parsed YAML), return it adapted to the demo image on a
    real rkt, and a note per change.

    The examples name registry images (no network here) and commands busybox lacks:
    the image becomes the demo's ACI (insecure option `image`, no `trust_prefix`, the
    demo's stage1), a command the image lacks becomes a stand-in that says so and
    sleeps, and absolute host paths move below `host_root` so that nothing of the host
    is mounted. Fly shares the host's network, where ports cannot be remapped: a task
    with ports gets `net: [host]` without `port_map`, and binds its host port itself;
    and fly records no exit code, so `on-failure` (which counts an unknown exit as a
    failure) becomes `never`. Everything else (env, ports, volumes, resources, the
    rest of restart, update) stays.
    """
    out = copy.deepcopy(dict(doc))
    spec = out["spec"]
    config = spec["config"]
    name = out["metadata"]["name"]
    notes: list[str] = []
    config["image"] = image
    config["insecure_options"] = ["image"]
    if config.pop("trust_prefix", None) is not None:
        notes.append("no trust_prefix (the demo image is unsigned)")
    if spec.pop("stage1", None) is not None:
        notes.append("the demo's stage1")
    command = config.get("command")
    if command and posixpath.basename(command) not in aci.BUSYBOX_APPLETS:
        config["command"] = "/bin/sh"
        config["args"] = ["-c", f"echo '{name}: a stand-in for {command}'; exec sleep 86400"]
        notes.append(f"a stand-in for {command}, which busybox lacks")
    volumes = config.get("volumes") or []
    moved = [_below(host_root, v) if v.startswith("/") else v for v in volumes]
    if moved != volumes:
        config["volumes"] = moved
        notes.append(f"absolute host paths below {host_root}")
    if fly and (config.get("port_map") or (spec.get("resources") or {}).get("ports")):
        config["net"] = ["host"]
        config.pop("port_map", None)
        notes.append("fly: net host, the app binds its host port itself")
    restart = spec.get("restart") or {}
    if fly and restart.get("policy") == "on-failure":
        restart["policy"] = "never"
        notes.append("fly records no exit code, so on-failure would retry forever: never")
    return out, notes


def _below(root: str, volume: str) -> str:
    host, rest = volume.split(":", 1)
    return f"{root.rstrip('/')}{host}:{rest}"
