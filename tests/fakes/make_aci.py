"""Build tiny, valid ACI image files (gzip'd tar: `manifest` + `rootfs/`) for tests.

TEST HELPER, stdlib only. Used by the fake rkt's tests and by the contract tests, which
must also run against a real rkt 1.30: the manifest is a well-formed appc 0.8.11 image
manifest, so real rkt can `fetch` and `prepare` it (with --insecure-options=image).
The rootfs is empty unless `files` are given, so a real rkt cannot *run* its app.

    python tests/fakes/make_aci.py OUT.aci --name example.com/app --version 1.0.0 \
        --exec /bin/sh -c 'sleep 3600'
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys
import tarfile
from collections.abc import Mapping, Sequence


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
) -> dict:
    """Return an appc ImageManifest dict; `mount_points`/`ports` map names to paths/ports."""
    all_labels = [{"name": "version", "value": version}] if version is not None else []
    all_labels += [{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}]
    all_labels += [{"name": k, "value": v} for k, v in (labels or {}).items()]
    manifest: dict = {
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": name,
        "labels": all_labels,
    }
    if exec_ is not None:
        app: dict = {"exec": list(exec_), "user": user, "group": group}
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
    path: str | os.PathLike,
    manifest: Mapping | None = None,
    *,
    files: Mapping[str, bytes] | None = None,
    links: Mapping[str, str] | None = None,
    compress: bool = True,
    **manifest_kw: object,
) -> str:
    """Write an ACI to `path` and return the path. `manifest` wins over `manifest_kw`.

    `files` maps paths inside the rootfs (e.g. "bin/app") to their content (mode 0755);
    `links` maps paths to symlink targets (e.g. "bin/sleep" -> "busybox").
    Entries carry fixed times and owners, so the same inputs give the same bytes (and so
    the same image ID in rkt's store).
    """
    doc = dict(manifest) if manifest is not None else image_manifest(**manifest_kw)  # type: ignore[arg-type]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, "manifest", json.dumps(doc, indent=1).encode(), 0o644)
        _add(tar, "rootfs", None, 0o755)
        for rel, content in sorted((files or {}).items()):
            parts = rel.strip("/").split("/")
            for depth in range(1, len(parts)):
                _add(tar, "rootfs/" + "/".join(parts[:depth]), None, 0o755)
            _add(tar, "rootfs/" + "/".join(parts), content, 0o755)
        for rel, target in sorted((links or {}).items()):
            parts = rel.strip("/").split("/")
            for depth in range(1, len(parts)):
                _add(tar, "rootfs/" + "/".join(parts[:depth]), None, 0o755)
            _add(tar, "rootfs/" + "/".join(parts), None, 0o777, link=target)
    data = raw.getvalue()
    if compress:
        data = gzip.compress(data, mtime=0)
    out = os.fspath(path)
    with open(out, "wb") as fh:
        fh.write(data)
    return out


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a tiny ACI file for tests.")
    parser.add_argument("out")
    parser.add_argument("--name", default="example.com/app")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--mount-point", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--port", action="append", default=[], metavar="NAME=PORT")
    parser.add_argument("--env", action="append", default=[], metavar="K=V")
    parser.add_argument("--exec", dest="exec_", nargs=argparse.REMAINDER, default=None)
    args = parser.parse_args(argv)
    build_aci(
        args.out,
        name=args.name,
        version=args.version,
        exec_=args.exec_ or ("/bin/sh", "-c", "sleep 3600"),
        env=dict(kv.split("=", 1) for kv in args.env),
        mount_points=dict(kv.split("=", 1) for kv in args.mount_point),
        ports={k: int(v) for k, v in (kv.split("=", 1) for kv in args.port)},
    )
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
