"""Tiny ACI image files (appc 0.8.11): a gzip'd tar of `manifest` + `rootfs/`.

SHELL (writes one file), stdlib only. rktctl itself never builds images: this is
for running real pods without a registry or a network. The demo
(`make demo RKT=rkt`) and the real-rkt tests build `busybox_aci()`: Debian's
busybox-static with its applets linked in /bin, so `/bin/sh`, `/bin/sleep` and
friends run on every stage1. Real rkt fetches such a file with
`--insecure-options=image` (it carries no signature).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

BUSYBOX = Path("/bin/busybox")
"""Where Debian's busybox-static (and the dynamic `busybox` package) install busybox."""
BUSYBOX_APPLETS = (
    "sh", "sleep", "true", "false", "echo", "cat", "env", "id", "kill", "ls", "touch",
    "httpd", "nc", "wget", "test", "printf", "date", "ps", "ip", "hostname",
)  # fmt: skip
_PT_INTERP = 3


def image_manifest(
    name: str = "example.com/app",
    version: str | None = "1.0.0",
    exec_: Sequence[str] | None = ("/bin/sh", "-c", "sleep 3600"),
    *,
    env: Mapping[str, str] | None = None,
    mount_points: Mapping[str, str] | None = None,
    ports: Mapping[str, int] | None = None,
    labels: Mapping[str, str] | None = None,
    user: str = "0",
    group: str = "0",
) -> dict[str, Any]:
    """Return an appc ImageManifest dict; `mount_points`/`ports` map names to paths/ports."""
    all_labels = [{"name": "version", "value": version}] if version is not None else []
    all_labels += [{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}]
    all_labels += [{"name": k, "value": v} for k, v in (labels or {}).items()]
    manifest: dict[str, Any] = {
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": name,
        "labels": all_labels,
    }
    if exec_ is not None:
        app: dict[str, Any] = {"exec": list(exec_), "user": user, "group": group}
        if env:
            app["environment"] = [{"name": k, "value": v} for k, v in env.items()]
        if mount_points:
            app["mountPoints"] = [{"name": k, "path": v} for k, v in mount_points.items()]
        if ports:
            app["ports"] = [
                {"name": k, "protocol": "tcp", "port": p, "count": 1, "socketActivated": False}
                for k, p in ports.items()
            ]
        manifest["app"] = app
    return manifest


def build_aci(
    path: str | os.PathLike[str],
    manifest: Mapping[str, Any] | None = None,
    *,
    files: Mapping[str, bytes] | None = None,
    links: Mapping[str, str] | None = None,
    compress: bool = True,
    **manifest_kw: Any,
) -> str:
    """Write an ACI to `path` and return the path. `manifest` wins over `manifest_kw`.

    `files` maps paths inside the rootfs (e.g. "bin/app") to their content (mode 0755);
    `links` maps paths to symlink targets (e.g. "bin/sleep" -> "busybox").
    Entries carry fixed times and owners, so the same inputs give the same bytes (and so
    the same image ID in rkt's store).
    """
    doc = dict(manifest) if manifest is not None else image_manifest(**manifest_kw)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, "manifest", json.dumps(doc, indent=1).encode(), 0o644)
        _add(tar, "rootfs", None, 0o755)
        for rel, content in sorted((files or {}).items()):
            _add_parents(tar, rel)
            _add(tar, "rootfs/" + rel.strip("/"), content, 0o755)
        for rel, target in sorted((links or {}).items()):
            _add_parents(tar, rel)
            _add(tar, "rootfs/" + rel.strip("/"), None, 0o777, link=target)
    data = raw.getvalue()
    if compress:
        data = gzip.compress(data, mtime=0)
    out = os.fspath(path)
    with open(out, "wb") as fh:
        fh.write(data)
    return out


def busybox_aci(
    path: str | os.PathLike[str],
    *,
    name: str,
    version: str,
    exec_: Sequence[str],
    ports: Mapping[str, int] | None = None,
    files: Mapping[str, bytes] | None = None,
    busybox: Path = BUSYBOX,
    applets: Sequence[str] = BUSYBOX_APPLETS,
) -> str:
    """Write a busybox ACI to `path` (busybox + applet links in /bin, PATH=/bin); return it.

    `files` adds more rootfs files (e.g. "etc/passwd"). `busybox` must be statically
    linked (Debian's busybox-static): the image has no libc. Raise OSError if it cannot
    be read.
    """
    return build_aci(
        path,
        name=name,
        version=version,
        exec_=exec_,
        env={"PATH": "/bin"},
        ports=ports,
        files={"bin/busybox": busybox.read_bytes(), **(files or {})},
        links={f"bin/{applet}": "busybox" for applet in applets},
    )


def elf_interpreter(path: str | os.PathLike[str]) -> str | None:
    """Return the program interpreter a 64-bit ELF file names (its dynamic loader).

    None means a static executable, which runs in an image without a libc. Raise
    ValueError if `path` is not a 64-bit little-endian ELF file, OSError if unreadable.
    """
    data = Path(path).read_bytes()
    if data[:6] != b"\x7fELF\x02\x01":
        raise ValueError(f"{path} is not a 64-bit little-endian ELF executable")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for index in range(phnum):
        base = phoff + index * phentsize
        (p_type,) = struct.unpack_from("<I", data, base)
        if p_type == _PT_INTERP:
            (offset,) = struct.unpack_from("<Q", data, base + 8)
            (size,) = struct.unpack_from("<Q", data, base + 32)
            return data[offset : offset + size].rstrip(b"\0").decode(errors="replace")
    return None


def _add_parents(tar: tarfile.TarFile, rel: str) -> None:
    parts = rel.strip("/").split("/")
    for depth in range(1, len(parts)):
        _add(tar, "rootfs/" + "/".join(parts[:depth]), None, 0o755)


def _add(
    tar: tarfile.TarFile, name: str, content: bytes | None, mode: int, *, link: str = ""
) -> None:
    if name in tar.getnames():
        return
    info = tarfile.TarInfo(name)
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if link:
        info.type = tarfile.SYMTYPE
        info.linkname = link
        tar.addfile(info)
    elif content is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
