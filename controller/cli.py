"""Command line: `rktctl validate | run | reconcile | plan | status | node`.

SHELL, the outermost layer. The only module that reads `sys.argv`, prints to
stdout and decides exit codes. Exit codes: 0 ok; 1 failure (or invalid
manifests); 2 usage; 3 `plan` found pending changes; 78 configuration error, or
another rktctl holds the state dir's lock (`run`, `reconcile`).
Each subcommand is a `_cmd_<name>(args) -> int` function registered in
`_build_parser`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from controller import __version__
from controller.errors import RktctlError

if TYPE_CHECKING:
    from controller.config import Config
    from controller.manifests import Problem
    from controller.model import PassReport

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


# --- shared options ---------------------------------------------------------------------


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    """Flags that override config settings (highest precedence: flags > env > file)."""
    group = parser.add_argument_group("configuration (flags > RKTCTL_* env > config file)")
    group.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (default $RKTCTL_CONFIG or /etc/rktctl/config.toml)",
    )
    group.add_argument("--desired", dest="desired_dir", metavar="DIR", help="desired directory")
    group.add_argument("--status-dir", metavar="DIR", help="status files directory")
    group.add_argument("--state-dir", metavar="DIR", help="controller state directory")
    group.add_argument("--rkt", metavar="PATH", help="rkt binary")
    group.add_argument("--rkt-dir", metavar="DIR", help="rkt's data dir (rkt --dir)")
    group.add_argument("--launcher", choices=("detached", "systemd-run"))
    group.add_argument(
        "--resync",
        dest="resync_interval_s",
        type=float,
        metavar="SECONDS",
        help="full pass at least this often",
    )
    group.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    group.add_argument("--log-format", choices=("auto", "json", "console"))


_OVERRIDE_KEYS = (
    "desired_dir",
    "status_dir",
    "state_dir",
    "rkt",
    "rkt_dir",
    "launcher",
    "resync_interval_s",
    "log_level",
    "log_format",
)


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    values = {key: getattr(args, key, None) for key in _OVERRIDE_KEYS}
    if getattr(args, "force", False):
        values["allow_empty"] = True
    return {k: v for k, v in values.items() if v is not None}


def _load(args: argparse.Namespace, *, reload: bool = False) -> Config:
    from controller.config import load_config

    return load_config(args.config, overrides=_overrides(args), reload=reload)


def _config_source(args: argparse.Namespace) -> str | None:
    """The config file this command read (for status documents and logs), or None."""
    from controller.config import config_source

    return config_source(args.config)


def _configure_logs(cfg: Config) -> None:
    from controller import logs

    logs.configure(cfg.log_level, cfg.log_format)


# --- run / reconcile / plan -----------------------------------------------------------------


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the controller daemon (watch, reconcile, resync)")
    _add_config_args(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="allow an empty or missing desired dir to stop every owned pod",
    )
    p.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from controller.daemon import Daemon
    from controller.fsio import instance_lock

    cfg = _load(args)
    _configure_logs(cfg)
    # A reload must not silently fall back to defaults: the file must be there and say something.
    # The lock is held until exit; a SIGHUP that changes state_dir keeps it on the first one.
    with instance_lock(cfg.state_dir):
        return Daemon(
            cfg, config_path=_config_source(args), load=lambda: _load(args, reload=True)
        ).run()


def _add_reconcile(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("reconcile", help="run reconcile passes without the daemon")
    _add_config_args(p)
    p.add_argument("--once", action="store_true", required=True, help="run exactly one pass")
    p.add_argument("--force", action="store_true", help="override the deletion guard")
    _add_wait_arg(
        p,
        "keep reconciling until every task is Ready (exit 0), or TIMEOUT seconds "
        "(default 300) pass (exit 1, naming the tasks that are not)",
    )
    p.set_defaults(handler=_cmd_reconcile)


def _cmd_reconcile(args: argparse.Namespace) -> int:
    from controller.fsio import instance_lock
    from controller.model import PassResult
    from controller.reconcile import Reconciler
    from controller.runtime import make_runtime
    from controller.statusfiles import StatusWriter, process_info

    cfg = _load(args)
    _configure_logs(cfg)
    with instance_lock(cfg.state_dir):  # a daemon on the same state would act twice
        reconciler = Reconciler(cfg, make_runtime(cfg), keep_documents=True)
        # Unlike the daemon, --once has no next pass to see a pod that dies right after start.
        report = reconciler.settle(reconciler.run_pass("startup"), window_s=cfg.start_settle_s)
        info = process_info(
            cfg,
            config_path=_config_source(args),
            started_at=report.started_at,
            node=reconciler.node_attributes,
        )
        writer = StatusWriter(cfg.status_dir)
        writer.publish(report, daemon=info, now=report.finished_at)
        _print_report_summary(report)
        first_result = report.result
        code = EXIT_OK if first_result in (PassResult.OK, PassResult.HELD) else EXIT_FAILURE
        if args.wait is None:
            reconciler.close()  # ends the health checker, if a task has a check
        else:
            # Passes again until every task is Ready: health checks run on their own thread
            # and a liveness restart happens in one of these passes.
            deadline = time.monotonic() + args.wait
            while (waiting := _not_ready(cfg.status_dir)) and time.monotonic() < deadline:
                time.sleep(WAIT_POLL_S)
                report = reconciler.run_pass("wait")
                writer.publish(report, daemon=info, now=report.finished_at)
            reconciler.close()
            if waiting:
                for line in waiting:
                    print(f"not ready: {line}", file=sys.stderr)
                return EXIT_FAILURE
            if code != EXIT_OK:
                print(f"rktctl: the first pass ended {first_result}, but every task is "
                      "Ready now", file=sys.stderr)  # fmt: skip
            return EXIT_OK  # --wait promises readiness: a first pass's failure since healed
        return code


WAIT_POLL_S = 0.5
WAIT_DEFAULT_S = 300.0


def _add_wait_arg(p: argparse.ArgumentParser, help_text: str) -> None:
    """`--wait[=TIMEOUT]`, shared by `reconcile --once` and `status`."""
    p.add_argument(
        "--wait", nargs="?", const=WAIT_DEFAULT_S, type=float, metavar="TIMEOUT", help=help_text
    )


def _not_ready(status_dir: str, only: str | None = None) -> list[str]:
    """'task (phase): message' for every task (or `only`) whose Ready condition is not True."""
    from controller.statusfiles import read_task_statuses

    docs = read_task_statuses(status_dir)
    if only is not None:
        docs = {only: docs.get(only) or {"phase": None, "message": "no status document yet"}}
    out = []
    for name, doc in sorted(docs.items()):
        ready = [c for c in doc.get("conditions") or () if c.get("type") == "Ready"]
        if not ready or ready[0].get("status") != "True":
            out.append(f"{name} ({doc.get('phase')}): {doc.get('message')}")
    return out


def _print_report_summary(report: PassReport) -> None:
    from controller.termination import render_output

    for outcome in report.outcomes:
        action = outcome.action
        if outcome.ok:
            state = "ok"
        else:
            state = "deferred" if outcome.deferred else "skipped" if outcome.skipped else "FAILED"
        uuid = outcome.pod_uuid or ""
        word = action.kind.replace("_", "-")
        line = f"{action.task}: {word} ({action.reason}) {uuid} {state}".rstrip()
        print(line if outcome.ok else f"{line}: {outcome.message}")
        term = report.terminations.get(action.task)
        if not outcome.ok and term is not None and term.uuid == outcome.pod_uuid:
            # The pod died right after its start: show the end of its output, as
            # `kubectl logs --previous` would.
            text, truncated = render_output(term.output.tail, truncated=term.output.truncated)
            where = term.output.location or "?"
            print(f"    output of pod {term.uuid[:8]} ({'end of ' if truncated else ''}{where}):")
            for out_line in text.split("\n") if text else [term.output.error or "(none)"]:
                print(f"    | {out_line}")
    for hold in report.plan.holds:
        print(f"{hold.task or '*'}: held ({hold.reason}) {hold.message}".rstrip())
    if report.error:
        print(f"pass failed: {report.error}")
    print(f"result: {report.result}")


def _add_plan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan",
        help="show what a pass would do and why, with the exact rkt argv "
        "(exit 0: nothing to do, 3: changes pending)",
    )
    _add_config_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--force", action="store_true", help="plan as if the deletion guard were off")
    p.set_defaults(handler=_cmd_plan)


def _cmd_plan(args: argparse.Namespace) -> int:
    import json

    from controller.reconcile import Reconciler, preview
    from controller.runtime import make_runtime

    cfg = _load(args)
    _configure_logs(cfg)
    reconciler = Reconciler(cfg, make_runtime(cfg))
    report = reconciler.run_pass("startup", dry_run=True)
    if report.error:
        print(f"rktctl: cannot plan: {report.error}", file=sys.stderr)
        return EXIT_FAILURE
    steps = preview(reconciler, report)
    if args.json:
        doc = {
            "actions": steps,
            "holds": [
                {"task": h.task, "reason": str(h.reason), "message": h.message}
                for h in report.plan.holds
            ],
            "pending": any(not s["suspended"] for s in steps),
        }
        print(json.dumps(doc, indent=2))
    else:
        if not steps:
            print("nothing to do: the host matches the desired state")
        for step in steps:
            uuid = f" {step['pod_uuid']}" if step["pod_uuid"] else ""
            paused = " [suspended: will not run]" if step["suspended"] else ""
            print(f"{step['task']}: {step['action']}{uuid} ({step['reason']}){paused}")
            for argv in step["argv"]:
                print("    " + " ".join(argv))
            if step["error"]:
                print(f"    ! rkt cannot run this: {step['error']}")
        for hold in report.plan.holds:
            print(f"{hold.task or '*'}: held ({hold.reason}) {hold.message}".rstrip())
    return EXIT_PENDING if any(not s["suspended"] for s in steps) else EXIT_OK


_REGISTRARS.extend([_add_run, _add_reconcile, _add_plan])


# --- node -----------------------------------------------------------------------------------


def _add_node(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "node", help="show this node's attributes (what constraints and ${attr.*} see)"
    )
    _add_config_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object of attributes")
    p.set_defaults(handler=_cmd_node)


def _cmd_node(args: argparse.Namespace) -> int:
    import json

    from controller import nodeinfo
    from controller.runtime import make_runtime

    cfg = _load(args)
    _configure_logs(cfg)
    try:
        rkt_attrs = make_runtime(cfg).version()
    except RktctlError as exc:
        # Like Nomad's fingerprint: an unusable rkt only leaves the driver.rkt* keys out.
        print(
            f"rktctl: note: rkt not usable, driver.rkt* attributes left out: {exc}", file=sys.stderr
        )
        rkt_attrs = {}
    attrs = nodeinfo.gather_attributes(cfg, rkt_attrs=rkt_attrs)
    if args.json:
        print(json.dumps(attrs, indent=2, sort_keys=True))
        return EXIT_OK
    width = max(len("ATTRIBUTE"), *(len(key) for key in attrs))
    print(f"{'ATTRIBUTE':<{width}}  VALUE")
    for key, value in sorted(attrs.items()):
        print(f"{key:<{width}}  {value}")
    return EXIT_OK


_REGISTRARS.append(_add_node)


# --- status ---------------------------------------------------------------------------------


def _add_status(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="show each task's phase from the status files (reads files only: no rkt, no root)",
        description="Exit 1 when the controller's heartbeat is older than 3 resync intervals, "
        "when no controller.json exists, or when NAME is unknown.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="print this task's full document")
    p.add_argument("--json", action="store_true", help="print the documents as JSON")
    p.add_argument("--status-dir", metavar="DIR", help="status directory (default: from config)")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file to read status_dir from (default $RKTCTL_CONFIG or "
        "/etc/rktctl/config.toml)",
    )
    _add_wait_arg(
        p,
        "first wait until every task (or NAME) is Ready and the daemon's heartbeat is "
        "fresh, at most TIMEOUT seconds (default 300); exit 1 naming the tasks that are not",
    )
    p.set_defaults(handler=_cmd_status)


def _cmd_status(args: argparse.Namespace) -> int:
    import json
    import time

    from controller import statusfiles, statustable

    if args.status_dir:
        status_dir = args.status_dir
    else:
        from controller.config import load_config

        status_dir = load_config(args.config).status_dir
    waiting: list[str] = []
    if args.wait is not None:
        # The daemon writes the documents; reading them again until they say Ready.
        deadline = time.monotonic() + args.wait
        while True:
            beat = statustable.heartbeat_problem(
                statusfiles.read_controller_status(status_dir), now=time.time()
            )
            waiting = _not_ready(status_dir, args.name) + ([beat] if beat else [])
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(WAIT_POLL_S)
    controller = statusfiles.read_controller_status(status_dir)
    tasks = statusfiles.read_task_statuses(status_dir)
    now = time.time()
    if args.name is not None:
        doc = tasks.get(args.name)
        if doc is None:
            known = ", ".join(sorted(tasks)) or "none"
            print(f"rktctl: no status for task {args.name!r} in {status_dir} (known: {known})",
                  file=sys.stderr)  # fmt: skip
            return EXIT_FAILURE
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    elif args.json:
        print(json.dumps({"controller": controller, "tasks": tasks}, indent=2, ensure_ascii=False))
    else:
        invalid = (controller or {}).get("invalid_manifests")
        print(
            statustable.render_table(
                tasks, now=now, invalid_manifests=invalid if isinstance(invalid, list) else ()
            ),
            end="",
        )
    failed_reload = (controller or {}).get("config_error")
    if isinstance(failed_reload, dict):
        errors = "; ".join(str(e) for e in failed_reload.get("errors") or [])
        print(f"rktctl: warning: the config reload at {failed_reload.get('at')} failed "
              f"({errors}); the daemon runs with its previous config", file=sys.stderr)  # fmt: skip
    problem = statustable.heartbeat_problem(controller, now=now)
    if problem is not None:
        print(f"rktctl: {status_dir}: {problem}", file=sys.stderr)
        return EXIT_FAILURE
    if waiting:
        for line in waiting:
            print(f"not ready: {line}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


_REGISTRARS.append(_add_status)


# --- validate -------------------------------------------------------------------------------


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "validate",
        help="check task manifests (exit 0: all valid, 1: any invalid or duplicate, 2: usage)",
        description="Check manifest files, or every manifest in directories (temp and dot "
        "files are skipped as the daemon skips them). Without PATH: the configured desired "
        "directory. Two files declaring the same task name are both invalid. A PATH that "
        "does not exist is a usage error (exit 2).",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="manifest files or directories")
    p.add_argument(
        "--json",
        action="store_true",
        help='print a JSON array, one {"path", "valid", "task", "spec_hash", "errors"} per file',
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file to read desired_dir from (default $RKTCTL_CONFIG or "
        "/etc/rktctl/config.toml)",
    )
    p.set_defaults(handler=_cmd_validate)


def _cmd_validate(args: argparse.Namespace) -> int:
    import json

    from controller.fsio import list_manifest_files

    given: list[str] = list(args.paths)
    if not given:
        from controller.config import load_config

        given = [load_config(args.config).desired_dir]
    files: dict[Path, None] = {}  # ordered set: a file named twice is checked once
    unlisted: list[tuple[Path, str]] = []  # directories that could not be read
    for name in given:
        path = Path(name)
        if path.is_dir():
            listing = list_manifest_files(path)
            files.update(dict.fromkeys(map(Path, listing.manifests)))
            unlisted += [(Path(p), why) for p, why in listing.refused]
        elif path.exists():
            files[path] = None
        else:
            print(f"rktctl validate: {name}: no such file or directory", file=sys.stderr)
            return EXIT_USAGE
    results = _validate_files(list(files))
    results += [_FileResult(path=str(p), errors=[_problem(why)]) for p, why in unlisted]
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2, ensure_ascii=False))
    else:
        for result in results:
            if result.valid:
                print(f"ok  {result.path} (task {result.task}, spec {result.spec_hash})")
            for error in result.errors:
                print(error.format(result.path))
    invalid = sum(1 for r in results if not r.valid)
    if not results:
        print(f"rktctl validate: no manifests found in {', '.join(given)}", file=sys.stderr)
    elif not args.json:
        print(f"{len(results)} manifest(s): {len(results) - invalid} valid, {invalid} invalid",
              file=sys.stderr)  # fmt: skip
    return EXIT_FAILURE if invalid else EXIT_OK


@dataclass(slots=True)
class _FileResult:
    """What `validate` found in one file; `to_json()` is the `--json` document."""

    path: str
    valid: bool = False
    task: str | None = None
    spec_hash: str | None = None
    errors: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "valid": self.valid,
            "task": self.task,
            "spec_hash": self.spec_hash,
            "errors": [{"line": e.line, "path": e.path, "message": e.message} for e in self.errors],
        }


def _problem(message: str) -> Problem:
    from controller.manifests import Problem

    return Problem(None, "", message)


def _validate_files(paths: Sequence[Path]) -> list[_FileResult]:
    """Parse each file; then mark every file of a task name declared more than once."""
    from controller import manifests
    from controller.fsio import read_manifest_bytes
    from controller.model import TaskName

    results: list[_FileResult] = []
    for path in paths:
        result = _FileResult(path=str(path))
        results.append(result)
        try:
            data = read_manifest_bytes(path, limit=manifests.MAX_BYTES)
        except OSError as exc:
            result.errors.append(manifests.Problem(None, "", f"cannot read: {exc}"))
            continue
        try:
            spec = manifests.parse_manifest(data, source=result.path)
        except manifests.ManifestInvalidError as exc:
            result.task = manifests.guess_name(data)
            result.errors.extend(exc.problems)
        else:
            result.valid, result.task, result.spec_hash = True, spec.name, spec.spec_hash
    duplicates = manifests.duplicate_names(
        (r.path, TaskName(r.task) if r.task else None) for r in results
    )
    for result in results:
        if result.task is not None and result.task in duplicates:
            others = ", ".join(s for s in duplicates[TaskName(result.task)] if s != result.path)
            result.errors.append(
                manifests.Problem(
                    None,
                    "metadata.name",
                    f'task "{result.task}" is also declared in {others}; task names must be '
                    "unique, and no file of a duplicated name is applied",
                )
            )
            result.valid = False
    return results


_REGISTRARS.append(_add_validate)
