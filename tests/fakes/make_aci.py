"""Build tiny, valid ACI image files (gzip'd tar: `manifest` + `rootfs/`) for tests.

TEST HELPER. The writer itself is `controller/aci.py` (the demo builds its image with
it too); this module keeps the tests' import path and a command line. The manifest is a
well-formed appc 0.8.11 image manifest, so real rkt can `fetch` and `prepare` it (with
--insecure-options=image). The rootfs is empty unless `files` are given, so a real rkt
cannot *run* its app. The fake rkt never imports this (nor `controller`).

    python tests/fakes/make_aci.py OUT.aci --name example.com/app --version 1.0.0 \
        --exec /bin/sh -c 'sleep 3600'
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from controller.aci import build_aci, image_manifest

__all__ = ["build_aci", "image_manifest", "main"]


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
