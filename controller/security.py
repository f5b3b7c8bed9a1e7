"""The workload policy: what a manifest may ask of this host, as the controller config allows.

PURE. A manifest is written by whoever can write the desired directory (a GitOps
committer); these settings, written by the host's root in the config, bound what
such a person can get on the host through rkt: host paths mounted into a pod,
`--insecure-options` that lift the container's protection or image checks, root
as the app's user, and a stage1 of the manifest's choosing (the stage1 runs as root
on the host). `placement` calls `problems()` on every resolved spec, before any rkt
call; a spec with problems is Blocked with the messages, each naming the config
key that would allow it. Never does I/O.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from controller import extraargs
from controller.model import TaskSpec

INSECURE_OPTION_RISKS = {
    "none": "nothing",
    "image": "runs images without a valid signature",
    "tls": "fetches images over HTTPS without checking the server's certificate",
    "ondisk": "skips the integrity check of the image store on disk",
    "http": "fetches images over plain HTTP",
    "pubkey": "trusts signing keys fetched without TLS",
    "capabilities": "gives the app every Linux capability (root over the host's kernel)",
    "paths": "lifts the restrictions on /proc and /sys inside the pod",
    "seccomp": "runs the app without a seccomp filter",
    "all-fetch": "image, tls, ondisk, http and pubkey together",
    "all-run": "capabilities, paths and seccomp together: the pod is no container",
    "all": "every check off: the pod is no container and any image runs",
}
"""What each `--insecure-options` word opens (rkt 1.30's words, model.RKT_INSECURE_OPTIONS)."""

ROOT_USERS = frozenset({"root", "0"})


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadPolicy:
    """The config settings that bound manifests (same names as in `Config`)."""

    volumes_enabled: bool = False
    """Allow absolute host paths in volumes at all."""
    allowed_volume_prefixes: tuple[str, ...] = ()
    """With volumes_enabled: host paths must be one of these or below one; () = any."""
    allowed_insecure_options: tuple[str, ...] = ("image",)
    """Words a manifest may use in insecure_options (`none` always)."""
    allow_root_user: bool = False
    """Allow `user: "0"` / `user: root`."""
    allowed_stage1: tuple[str, ...] = ()
    """Stage1 values a manifest may name; () = a manifest may not choose its stage1."""
    allowed_extra_args: tuple[str, ...] = ()
    """Privileged `extra_args` flags a manifest may pass (`extraargs.PRIVILEGED`)."""


def problems(spec: TaskSpec, policy: WorkloadPolicy) -> tuple[str, ...]:
    """Return why `policy` does not allow `spec` on this host (empty: it does).

    Given a resolved spec (after `${...}` interpolation: a variable may produce a host
    path), return one message per violation with its place in the manifest and the
    config key that would allow it.
    """
    found: list[str] = []
    for i, volume in enumerate(spec.volumes):
        if volume.host.startswith("/"):
            problem = _host_path_problem(volume.host, policy)
            if problem:
                found.append(f"spec.config.volumes[{i}]: host path {volume.host!r} {problem}")
    allowed = set(policy.allowed_insecure_options) | {"none"}
    for word in spec.insecure_options:
        if word not in allowed:
            risk = INSECURE_OPTION_RISKS.get(word, "is not a word rkt knows")
            found.append(
                f"spec.config.insecure_options: {word!r} ({risk}) is not in "
                f"allowed_insecure_options ({_listing(policy.allowed_insecure_options)}) in "
                "the controller config; add it there to allow it"
            )
    if spec.user is not None and _is_root(spec.user) and not policy.allow_root_user:
        found.append(
            f"spec.user: {spec.user!r} runs the app as root; allow_root_user is false in the "
            "controller config (set allow_root_user = true to allow it)"
        )
    if spec.stage1 is not None and spec.stage1 not in policy.allowed_stage1:
        found.append(
            f"spec.stage1: {spec.stage1!r} is not in allowed_stage1 "
            f"({_listing(policy.allowed_stage1)}) in the controller config; the stage1 runs as "
            "root on the host: add it there to allow it, or leave stage1 to the config"
        )
    found += extraargs.policy_problems(
        spec.extra_prepare_args, spec.extra_run_args, policy.allowed_extra_args
    )
    return tuple(found)


def _host_path_problem(host: str, policy: WorkloadPolicy) -> str | None:
    if not policy.volumes_enabled:
        return (
            "is absolute but volumes_enabled is false in the controller config; "
            "set volumes_enabled = true (and allowed_volume_prefixes) to allow it"
        )
    if not policy.allowed_volume_prefixes:
        return None
    # normpath folds "/srv/../etc" into "/etc", the directory the kernel would mount.
    path = posixpath.normpath(host)
    for prefix in policy.allowed_volume_prefixes:
        base = posixpath.normpath(prefix)
        if base in ("/", path) or path.startswith(base + "/"):
            return None
    return (
        f"is outside allowed_volume_prefixes ({_listing(policy.allowed_volume_prefixes)}) "
        "in the controller config; add a directory holding it there to allow it"
    )


def _is_root(user: str) -> bool:
    text = user.strip()
    return text in ROOT_USERS or (text.isdigit() and int(text) == 0)


def _listing(values: tuple[str, ...]) -> str:
    return ", ".join(values) if values else "empty"
