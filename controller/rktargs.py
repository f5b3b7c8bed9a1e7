"""Argv builders: a TaskSpec (or a pod UUID) -> the exact argv tuple of an rkt command.

PURE. The only module that knows rkt's flag spellings and positions. Called by
`runtime.RktCli` (to run them) and by `plan`/`diff` output (to show them). Never
builds a shell string, never does I/O, never reads the environment or a clock.

Shape of the pod commands (globals before the subcommand, `=` form for every value):

    rkt <global_args> --insecure-options=A,B --debug=BOOL prepare --quiet
        [--stage1-name|--stage1-path|--stage1-url=S] [--no-overlay=true]
        [--volume=NAME,kind=host,source=HOST,readOnly=BOOL ...]
        [--mount=volume=NAME,target=PATH ...]
        [--set-env=K=V ...] [--port=NAME:HOSTPORT ...]
        IMAGE [--exec=CMD] [--user=U] [--group=G] [--memory=Q] [--cpu=Nm] [EXTRA_PREPARE...]
        --user-annotation=rktctl.io/task=T --user-annotation=rktctl.io/spec-hash=H
        --user-label=rktctl.io/managed-by=rktctl [-- ARGS...]
    rkt <global_args> --insecure-options=A,B --debug=BOOL run-prepared
        [--net=a,b] [--dns=X ...] [--dns-search=D ...] [EXTRA_RUN_PREPARED...] UUID

Deliberate choices (each tested in tests/unit/test_rktargs.py):
- `--port` goes *before* the image with the other pod flags. rkt parses the words
  after an image with the command's whole flag set, so Nomad's after-the-image
  position is accepted too, but `--port` is a pod-level flag (CONTRACT §4.4) and the
  before-the-image form is the one verified on rkt 1.30 (transcripts 180, 96).
  No `--port` is emitted when the pod uses host networking (`net` is exactly
  `host`) or `none` (rkt would refuse the pod: "--port flag does not work with ..."),
  nor with the fly stage1, which silently ignores it (`stage1_flavor`).
- `--mount` goes before the image, so it applies to every app of the pod (Nomad).
- Resource flags always carry a unit: `--cpu=<n>m`, `--memory=<n>Mi` (or the
  largest exact unit), never Nomad's unitless `--cpu` (hashicorp/nomad 97be19b1).
- `--insecure-options` is always explicit: the task's list, else `none` when the
  task sets `trust_prefix`, else the controller's `insecure_default` (`image`),
  never Nomad's silent `all`.
- `--set-env` is sorted by key (Nomad iterated a Go map: the order changed between
  runs); the task's env wins over controller-injected variables with the same key
  (rkt rejects a repeated key: `key "K" already set`).
- Volume names are ACNames derived from the task name and index (`rktctl-web-0`);
  relative host paths resolve to `<task_data_dir>/<task>/<path>`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from controller.model import (
    DEFAULT_STAGE1_FLAVOR,
    STAGE1_FLAVORS,
    STAMP_MANAGED_BY,
    STAMP_MANAGED_BY_VALUE,
    STAMP_SPEC_HASH,
    STAMP_TASK,
    PodUUID,
    TaskSpec,
    frozen_map,
)

KIB = 1024
MIB = 1024 * KIB

# Network modes in which rkt refuses `--port` (CONTRACT §4.4).
_NO_PORT_NETS = (("host",), ("none",))
_NON_ACNAME = re.compile(r"[^a-z0-9]+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_FLAVOR = re.compile(r"stage1-(" + "|".join(STAGE1_FLAVORS) + r")(?![a-z0-9])")
_REDACTED = "<redacted>"


@dataclass(frozen=True, slots=True, kw_only=True)
class ArgvOptions:
    """Everything besides the TaskSpec that shapes an rkt argv (from Config + placement)."""

    rkt: str
    """The rkt binary: argv[0]."""
    global_args: tuple[str, ...] = ()
    """Global flags such as `--dir=/tmp/x`, from `Config.rkt_global_args()`."""
    stage1: str | None = None
    """Controller default stage1 (name, absolute path or URL); `spec.stage1` overrides it."""
    default_stage1_flavor: str = DEFAULT_STAGE1_FLAVOR
    """Flavor of rkt's compiled-in stage1, used when neither the spec nor `stage1` names one."""
    insecure_default: tuple[str, ...] = ("image",)
    """`--insecure-options` for a task with neither insecure_options nor trust_prefix."""
    task_data_dir: str = "/var/lib/rktctl/state/tasks"
    """Relative volume host paths resolve to `<task_data_dir>/<task>/<path>`."""
    extra_env: Mapping[str, str] = field(default_factory=frozen_map)
    """Variables injected by the controller (ports etc.), rendered after spec.env."""
    host_ports: Mapping[str, int] = field(default_factory=dict)
    """Port label -> allocated host port; static ports may be omitted (spec has them)."""


def prepare_argv(
    spec: TaskSpec, opts: ArgvOptions, *, image_id: str | None = None
) -> tuple[str, ...]:
    """Given a task spec and options, return the argv of `rkt prepare --quiet` for it.

    With `image_id` (what the fetch phase's `rkt fetch` printed) the pod is prepared
    from that store image with `--pull-policy=never`: prepare then never pulls.

    Raise ValueError for a spec that rkt cannot express (a dynamic port without an
    allocated host port, a volume path with a comma, an argument `---`, a relative
    path escaping the task's data directory, an image rkt would read as a flag, a NUL
    in any word); manifest validation rejects those first, but ${...} values arrive later.
    """
    if spec.image.startswith("-"):
        raise ValueError(f"task {spec.name}: an image starting with '-' would be read as a flag")
    argv: list[str] = [*_pod_globals(spec, opts), "prepare", "--quiet"]
    stage1 = spec.stage1 or opts.stage1
    if stage1:
        argv.append(stage1_flag(stage1))
    if spec.no_overlay:
        argv.append("--no-overlay=true")
    volume_flags, mount_flags = _volume_flags(spec, opts)
    argv += volume_flags
    argv += mount_flags
    argv += [f"--set-env={key}={value}" for key, value in _merged_env(spec, opts)]
    argv += _port_flags(spec, opts)
    if image_id is not None:
        argv += ["--pull-policy=never", image_id]
    else:
        argv.append(spec.image)
    if spec.command is not None:
        argv.append(f"--exec={spec.command}")
    if spec.user is not None:
        argv.append(f"--user={spec.user}")
    if spec.group is not None:
        argv.append(f"--group={spec.group}")
    if spec.resources.memory_bytes is not None:
        argv.append(f"--memory={format_memory(spec.resources.memory_bytes)}")
    if spec.resources.cpu_millis is not None:
        argv.append(f"--cpu={spec.resources.cpu_millis}m")
    # extra_args: after the image, so per-app flags apply to this app (validated, `=` form).
    argv += spec.extra_prepare_args
    argv += stamp_args(spec)
    if spec.args:
        if "---" in spec.args:
            # rkt ends an app's argument list at a lone `---` and parses on: it cannot be passed.
            raise ValueError(f"task {spec.name}: an argument '---' cannot be passed to rkt")
        argv += ["--", *spec.args]
    if any("\x00" in word for word in argv):
        raise ValueError(f"task {spec.name}: a value contains a NUL character")
    return tuple(argv)


def fetch_argv(spec: TaskSpec, opts: ArgvOptions) -> tuple[str, ...]:
    """Return the argv of the fetch phase: `rkt fetch --pull-policy=<spec's> IMAGE`.

    The same --insecure-options as prepare (an unsigned local ACI needs `image`). Raise
    ValueError for an image rkt would read as a flag.
    """
    if spec.image.startswith("-"):
        raise ValueError(f"task {spec.name}: an image starting with '-' would be read as a flag")
    return (*_pod_globals(spec, opts), "fetch", f"--pull-policy={spec.pull_policy}", spec.image)


def run_prepared_argv(spec: TaskSpec, uuid: PodUUID, opts: ArgvOptions) -> tuple[str, ...]:
    """Given a task spec and the UUID of its prepared pod, return `rkt run-prepared` argv.

    The network flags live here because `prepare` rejects them (transcript 216).
    A one-element `dns_servers` of `host` or `none` renders as `--dns=host`/`--dns=none`.
    """
    argv: list[str] = [*_pod_globals(spec, opts), "run-prepared"]
    if spec.net:
        argv.append(f"--net={','.join(spec.net)}")
    argv += [f"--dns={server}" for server in spec.dns_servers]
    argv += [f"--dns-search={domain}" for domain in spec.dns_search_domains]
    argv += spec.extra_run_args
    argv.append(uuid)
    return tuple(argv)


def trust_argv(prefix: str, opts: ArgvOptions, *, debug: bool = False) -> tuple[str, ...]:
    """Return the argv that trusts the signing key discovered for `prefix` (no review).

    No `--insecure-options` here: with `image` rkt has no keystore and trust fails.
    """
    return (
        *_globals(opts),
        f"--debug={_bool(debug)}",
        "trust",
        f"--prefix={prefix}",
        "--skip-fingerprint-review",
    )


def list_argv(opts: ArgvOptions) -> tuple[str, ...]:
    """Return the argv of `rkt list --format=json` (parsed by observe.parse_pod_list)."""
    return (*_globals(opts), "list", "--format=json")


def status_argv(uuid: PodUUID, opts: ArgvOptions, *, wait: str | None = None) -> tuple[str, ...]:
    """Return the argv of `rkt status --format=json UUID`, with `--wait=<wait>` if given.

    `wait` is a Go duration such as `10s`; the `=` form is required (CONTRACT §1.4).
    """
    argv = [*_globals(opts), "status", "--format=json"]
    if wait is not None:
        argv.append(f"--wait={wait}")
    argv.append(uuid)
    return tuple(argv)


def enter_argv(uuid: PodUUID, command: Sequence[str], opts: ArgvOptions) -> tuple[str, ...]:
    """Return the argv of `rkt enter UUID CMD...` (an exec health check).

    rktctl's pods hold one app, so no `--app=`; everything after the UUID is the
    command's own (rkt stops reading flags there, CONTRACT §4.15).
    """
    return (*_globals(opts), "enter", uuid, *command)


def status_text_argv(uuid: PodUUID, opts: ArgvOptions) -> tuple[str, ...]:
    """Return the argv of text `rkt status UUID`: the only form that prints the pod's pid."""
    return (*_globals(opts), "status", uuid)


def stop_argv(uuid: PodUUID, opts: ArgvOptions, *, force: bool = False) -> tuple[str, ...]:
    """Return the argv of `rkt stop [--force] UUID`."""
    return (*_globals(opts), "stop", *(("--force",) if force else ()), uuid)


def rm_argv(uuid: PodUUID, opts: ArgvOptions) -> tuple[str, ...]:
    """Return the argv of `rkt rm UUID`."""
    return (*_globals(opts), "rm", uuid)


def gc_argv(opts: ArgvOptions, *, grace_period_s: float) -> tuple[str, ...]:
    """Return the argv of `rkt gc --grace-period=<Go duration>`.

    Raise ValueError for a negative grace period.
    """
    return (*_globals(opts), "gc", f"--grace-period={go_duration(grace_period_s)}")


def version_argv(opts: ArgvOptions) -> tuple[str, ...]:
    """Return the argv of `rkt version` (parsed by observe.parse_version)."""
    return (*_globals(opts), "version")


def config_argv(opts: ArgvOptions) -> tuple[str, ...]:
    """Return the argv of `rkt config` (parsed by observe.parse_data_dir)."""
    return (*_globals(opts), "config")


def cat_manifest_argv(uuid: PodUUID, opts: ArgvOptions) -> tuple[str, ...]:
    """Return the argv of `rkt cat-manifest UUID` (the pod manifest as JSON)."""
    return (*_globals(opts), "cat-manifest", uuid)


def stamp_args(spec: TaskSpec) -> tuple[str, ...]:
    """Return the app flags that stamp a pod as rktctl's (read back by observe.is_owned).

    They must follow the image: rkt files them under that app's user annotations/labels.
    """
    return (
        f"--user-annotation={STAMP_TASK}={spec.name}",
        f"--user-annotation={STAMP_SPEC_HASH}={spec.spec_hash}",
        f"--user-label={STAMP_MANAGED_BY}={STAMP_MANAGED_BY_VALUE}",
    )


def volume_name(task: str, index: int) -> str:
    """Return the volume name of the `index`-th volume of `task`: a valid ACName.

    ACNames are `[a-z0-9]+(-[a-z0-9]+)*`: the task name is lower-cased and every run of
    other characters becomes one dash (Nomad only replaced `_`, hashicorp/nomad#2358).
    """
    slug = _NON_ACNAME.sub("-", task.lower()).strip("-") or "task"
    return f"rktctl-{slug}-{index}"


def insecure_options(spec: TaskSpec, opts: ArgvOptions) -> tuple[str, ...]:
    """Return the `--insecure-options` words for a task.

    The task's own list wins; with a `trust_prefix` the answer is `none` (full
    verification against the trusted key); otherwise the controller's default.
    """
    if spec.insecure_options:
        return spec.insecure_options
    if spec.trust_prefix:
        return ("none",)
    return opts.insecure_default or ("none",)


def stage1_flag(stage1: str) -> str:
    """Return the flag selecting `stage1`: a URL, an absolute path, or an image name."""
    if _SCHEME.match(stage1):
        return f"--stage1-url={stage1}"
    if stage1.startswith("/"):
        return f"--stage1-path={stage1}"
    return f"--stage1-name={stage1}"


def stage1_flavor(stage1: str | None, *, default: str) -> str:
    """Return the flavor of the stage1 that `stage1` selects: fly, host, coreos, kvm, src.

    `stage1` is what `stage1_flag` takes (an image name, an absolute path or a URL) or
    None for rkt's compiled-in default, whose flavor is `default`. The flavor is read
    from rkt's naming of stage1 images, `stage1-<flavor>` in the last path segment
    (`coreos.com/rkt/stage1-fly:1.30.0`, `/usr/lib/rkt/stage1-images/stage1-host.aci`,
    `https://example.com/stage1-kvm-1.30.0.aci`); anything else is `unknown`.
    """
    if stage1 is None:
        return default
    last = stage1.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    match = _FLAVOR.search(last.lower())
    return match.group(1) if match else "unknown"


def format_memory(memory_bytes: int) -> str:
    """Return a memory quantity rkt parses exactly: `<n>Mi` when whole MiB, else `<n>Ki`.

    A byte count that is not a whole KiB stays a plain number, which rkt's quantity
    syntax reads as bytes (exact, unlike Nomad's `M` = 10^6).
    """
    if memory_bytes % MIB == 0:
        return f"{memory_bytes // MIB}Mi"
    if memory_bytes % KIB == 0:
        return f"{memory_bytes // KIB}Ki"
    return str(memory_bytes)


def go_duration(seconds: float) -> str:
    """Return `seconds` as a Go duration string (`1800s`, `0s`, `1500ms`).

    Raise ValueError when negative.
    """
    if seconds < 0:
        raise ValueError(f"duration must not be negative: {seconds}")
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def redact_argv(argv: Iterable[str]) -> tuple[str, ...]:
    """Return `argv` with the values of `--set-env` replaced, for logs and error messages.

    Env values may hold secrets; only their keys are ever logged.
    """
    out: list[str] = []
    for word in argv:
        if word.startswith("--set-env=") and "=" in word[len("--set-env=") :]:
            key = word[len("--set-env=") :].split("=", 1)[0]
            out.append(f"--set-env={key}={_REDACTED}")
        else:
            out.append(word)
    return tuple(out)


def host_path(spec_name: str, host: str, task_data_dir: str) -> str:
    """Return the host path `host` of a task (a volume's, a `spec.reload` file's): absolute
    as given, relative under the task's dir.

    Raise ValueError when a relative path climbs out of `<task_data_dir>/<task>`.
    """
    if host.startswith("/"):
        return posixpath.normpath(host)
    base = posixpath.normpath(posixpath.join(task_data_dir, spec_name))
    resolved = posixpath.normpath(posixpath.join(base, host))
    if resolved != base and not resolved.startswith(base + "/"):
        raise ValueError(
            f"task {spec_name}: relative volume path {host!r} leaves the task's "
            f"data directory {base}"
        )
    return resolved


def _globals(opts: ArgvOptions) -> tuple[str, ...]:
    return (opts.rkt, *opts.global_args)


def _pod_globals(spec: TaskSpec, opts: ArgvOptions) -> tuple[str, ...]:
    return (
        *_globals(opts),
        f"--insecure-options={','.join(insecure_options(spec, opts))}",
        f"--debug={_bool(spec.debug)}",
    )


def _volume_flags(spec: TaskSpec, opts: ArgvOptions) -> tuple[list[str], list[str]]:
    volumes: list[str] = []
    mounts: list[str] = []
    for index, volume in enumerate(spec.volumes):
        name = volume_name(spec.name, index)
        source = host_path(spec.name, volume.host, opts.task_data_dir)
        if "," in source:
            # rkt splits --volume on commas before unescaping: a comma cannot be expressed.
            raise ValueError(f"task {spec.name}: volume host path {source!r} contains a comma")
        volumes.append(
            f"--volume={name},kind=host,source={source},readOnly={_bool(volume.read_only)}"
        )
        # rkt parses --mount with url.ParseQuery after turning commas into `&`, so the
        # target is percent-encoded: `/a,b` -> `/a%2Cb`, `/a+b` -> `/a%2Bb` (plain paths unchanged).
        mounts.append(f"--mount=volume={name},target={quote(volume.container, safe='/')}")
    return volumes, mounts


def _merged_env(spec: TaskSpec, opts: ArgvOptions) -> list[tuple[str, str]]:
    pairs = sorted(spec.env.items())
    pairs += sorted((k, v) for k, v in opts.extra_env.items() if k not in spec.env)
    return pairs


def _port_flags(spec: TaskSpec, opts: ArgvOptions) -> list[str]:
    flavor = stage1_flavor(spec.stage1 or opts.stage1, default=opts.default_stage1_flavor)
    if spec.net in _NO_PORT_NETS or flavor == "fly":
        # fly ignores --port (it shares the host's network); placement only lets a fly
        # task through when each host port equals its container port.
        return []
    flags: list[str] = []
    for port in spec.resources.ports:
        host_port = opts.host_ports.get(port.label, port.static)
        if host_port is None:
            raise ValueError(
                f"task {spec.name}: dynamic port {port.label!r} has no allocated host port"
            )
        flags.append(f"--port={_port_name(spec.port_map.get(port.label, port.label))}:{host_port}")
    return flags


def _port_name(name: str) -> str:
    # rkt wants the image's port *name*; docker2aci names a container port 80 "80-tcp"
    # (hashicorp/nomad#2272, rkt/rkt#2150), so a bare number means that name.
    return f"{name}-tcp" if name.isdigit() else name


def _bool(value: bool) -> str:
    return "true" if value else "false"
