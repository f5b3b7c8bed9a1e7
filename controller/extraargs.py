"""`spec.extra_args`: rare rkt flags passed through, and the rules that bound them.

PURE. Nomad's `args` escape hatch without its trap: a manifest may pass a flag of
`rkt prepare` or `rkt run-prepared` that rktctl has no key for (`--hostname`,
`--working-dir`, `--caps-remove`, ...), but never one that rktctl sets from another
key or relies on itself (`--cpu`, `--volume`, `--user-annotation`, `--dir`, ...): that
would bypass a checked setting, the workload policy or the ownership stamp. Such a
flag is a validation error that names the key managing it.

The tables are rkt 1.30's flag sets (`rkt prepare --help`, `rkt run-prepared --help`,
CONTRACT §1): a flag rkt does not know is refused at validation, not at start. A flag
that takes a value must be written `--flag=value`: the argv word after a bare
`--working-dir` would be read as its value (the ownership stamp follows it).
Privileged flags (capabilities, seccomp, the host's IPC namespace, OOM priority) are
allowed by the manifest format but gated by the controller config's
`allowed_extra_args`, like `allowed_insecure_options` (see `security.problems`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

PREPARE: Final = "prepare"
RUN_PREPARED: Final = "run_prepared"

# Flags rkt takes without a value (`--flag` or `--flag=true|false`).
BOOLEAN_FLAGS: Final = frozenset(
    {"debug", "inherit-env", "interactive", "mds-register", "no-overlay", "private-users",
     "quiet", "trust-keys-from-https"}
)  # fmt: skip

# rkt's global flags: every subcommand takes them. rktctl sets each from its config.
_GLOBAL_MANAGED: Final = {
    "debug": "spec.config.debug",
    "dir": "the controller config's rkt_dir",
    "insecure-options": "spec.config.insecure_options",
    "local-config": "the controller config's rkt_local_config",
    "system-config": "the controller config's rkt_system_config",
    "user-config": "the controller config (rkt's configuration directories)",
    "trust-keys-from-https": "spec.config.trust_prefix",
}

_OWN = "rktctl itself"
_STAMP = "rktctl's ownership stamp (metadata.labels never reach the pod)"
MANAGED: Final = {
    PREPARE: {
        **_GLOBAL_MANAGED,
        "annotation": _STAMP,
        "user-annotation": _STAMP,
        "user-label": _STAMP,
        "cpu": "spec.resources.cpu",
        "memory": "spec.resources.memory",
        "volume": "spec.config.volumes",
        "mount": "spec.config.volumes",
        "exec": "spec.config.command",
        "user": "spec.user",
        "group": "spec.config.group",
        "set-env": "spec.env",
        "set-env-file": "spec.env",
        "environment": "spec.env",
        "inherit-env": "spec.env (the controller's own environment must not reach the app)",
        "port": "spec.resources.ports and spec.config.port_map",
        "no-overlay": "spec.config.no_overlay",
        "quiet": _OWN + " (it reads the pod's UUID from `prepare --quiet`)",
        "pod-manifest": _OWN + " (a pod manifest would replace the whole spec, "
        "the ownership stamp included)",
        "pull-policy": "spec.pull_policy (rktctl fetches first, then prepares with "
        "--pull-policy=never)",
        "stage1-from-dir": "spec.stage1",
        "stage1-hash": "spec.stage1",
        "stage1-name": "spec.stage1",
        "stage1-path": "spec.stage1",
        "stage1-url": "spec.stage1",
    },
    RUN_PREPARED: {
        **_GLOBAL_MANAGED,
        "net": "spec.config.net",
        "dns": "spec.config.dns_servers",
        "dns-search": "spec.config.dns_search_domains",
        "interactive": _OWN + " (it runs the pod detached, without a terminal)",
    },
}
"""Flags rktctl sets from another key or relies on -> that key (the error names it)."""

_PASS_PREPARE: Final = (
    "caps-remove", "caps-retain", "cpu-shares", "name", "oom-score-adj", "private-users",
    "readonly-rootfs", "seccomp", "signature", "supplementary-gids", "working-dir",
)  # fmt: skip
_PASS_RUN: Final = ("dns-domain", "dns-opt", "hostname", "hosts-entry", "ipc", "mds-register")
PASSABLE: Final = {PREPARE: frozenset(_PASS_PREPARE), RUN_PREPARED: frozenset(_PASS_RUN)}
"""The rest of rkt 1.30's flags of each subcommand: what `extra_args` may pass."""

PRIVILEGED: Final = {
    "caps-retain": "keeps the listed capabilities, also ones rkt drops by default "
    "(CAP_SYS_ADMIN is root over the host's kernel)",
    "seccomp": "replaces rkt's default seccomp filter; a retain set or a short remove "
    "set lets the app make the system calls the default blocks",
    "ipc": "--ipc=parent keeps the pod in the host's IPC namespace",
    "oom-score-adj": "a negative value shields the app from the OOM killer at the host's expense",
}
"""Passable flags that weaken the container: gated by the config's allowed_extra_args."""


def flag_name(arg: str) -> str:
    """`--working-dir=/srv` -> `working-dir`."""
    return arg[2:].split("=", 1)[0]


def problems(command: str, args: Sequence[object]) -> Iterator[tuple[int, str]]:
    """Yield (index, message) for each item of `extra_args.<command>` rktctl refuses.

    Items that are not `--flag...` strings are the schema's to report.
    """
    seen: dict[str, int] = {}
    other = RUN_PREPARED if command == PREPARE else PREPARE
    for i, arg in enumerate(args):
        if not isinstance(arg, str) or not arg.startswith("--") or len(arg) < 3:
            continue
        name = flag_name(arg)
        managed = MANAGED[command].get(name)
        if managed is not None and managed.startswith(_OWN):
            yield i, f"--{name} is rktctl's own{managed[len(_OWN) :]}; remove it"
        elif managed is not None:
            yield i, f"--{name} is set by rktctl from {managed}; set it there instead"
        elif name not in PASSABLE[command]:
            if name in PASSABLE[other] or name in MANAGED[other]:
                where = other.replace("_", "-")
                yield i, f"--{name} is a flag of rkt {where}, not of {command.replace('_', '-')}"
            else:
                known = ", ".join(f"--{f}" for f in sorted(PASSABLE[command]))
                sub = command.replace("_", "-")
                yield i, f"rkt 1.30 has no {sub} flag --{name}; extra_args takes {known}"
        elif "=" not in arg and name not in BOOLEAN_FLAGS:
            yield i, f"--{name} takes a value: write --{name}=VALUE as one item"
        elif name in seen and name not in _REPEATABLE:
            yield i, f"--{name} is given twice (also item {seen[name]}); rkt keeps only one"
        else:
            seen.setdefault(name, i)


# Flags rkt accumulates (string slices) rather than overwrites.
_REPEATABLE: Final = frozenset({"caps-remove", "caps-retain", "dns-opt", "hosts-entry"})


def policy_problems(
    prepare: Sequence[str], run_prepared: Sequence[str], allowed: Sequence[str]
) -> list[str]:
    """Return one message per privileged flag the config's `allowed_extra_args` lacks."""
    found: list[str] = []
    for command, args in ((PREPARE, prepare), (RUN_PREPARED, run_prepared)):
        for i, arg in enumerate(args):
            name = flag_name(arg)
            if name in PRIVILEGED and name not in allowed:
                listing = ", ".join(allowed) if allowed else "empty"
                found.append(
                    f"spec.extra_args.{command}[{i}]: --{name} ({PRIVILEGED[name]}) is not in "
                    f"allowed_extra_args ({listing}) in the controller config; add {name!r} "
                    "there to allow it"
                )
    return found


def manifest_problems(data: object) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield (path, message) for `spec.extra_args` of a raw manifest (any shape)."""
    spec = data.get("spec") if isinstance(data, dict) else None
    extra = spec.get("extra_args") if isinstance(spec, dict) else None
    if not isinstance(extra, dict):
        return
    for command in (PREPARE, RUN_PREPARED):
        args = extra.get(command)
        if not isinstance(args, list):
            continue
        for i, message in problems(command, args):
            yield ("spec", "extra_args", command, i), message
        for i, arg in enumerate(args):
            if isinstance(arg, str) and "${" in arg:
                yield (
                    ("spec", "extra_args", command, i),
                    "variables are not resolved in extra_args; write the value itself",
                )


def spec_fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The TaskSpec fields of a validated manifest's `spec.extra_args` (for `_to_spec`)."""
    extra = spec.get("extra_args", {})
    return {
        "extra_prepare_args": tuple(extra.get(PREPARE, ())),
        "extra_run_args": tuple(extra.get(RUN_PREPARED, ())),
    }


def hash_fields(prepare: Sequence[str], run_prepared: Sequence[str]) -> dict[str, Any]:
    """The spec-hash entries: none without extra_args, so existing hashes do not move."""
    if not prepare and not run_prepared:
        return {}
    return {"extra_args": [list(prepare), list(run_prepared)]}
