"""Command line: `rktctl validate | run | reconcile | plan | status | node`.

SHELL, the outermost layer. The only module that reads `sys.argv`, prints to
stdout and decides exit codes. Exit codes: 0 ok; 1 failure (or invalid
manifests); 2 usage; 3 `plan` found pending changes; 78 configuration error.
Each subcommand is a `_cmd_<name>(args) -> int` function registered in
`_build_parser`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from controller import __version__
from controller.errors import RktctlError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PENDING = 3
EXIT_CONFIG = 78

Handler = Callable[[argparse.Namespace], int]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rktctl",
        description="Reconcile rkt pods on this host with the task manifests in a directory.",
    )
    parser.add_argument("--version", action="version", version=f"rktctl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in _REGISTRARS:
        register(sub)
    return parser


_REGISTRARS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]) and return the exit code."""
    parser = _build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    try:
        return handler(args)
    except RktctlError as exc:
        print(f"rktctl: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the top-level guard: never a traceback for a user
        print(f"rktctl: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
