"""Stages 4 and the pipeline: a manifest's bytes -> its validated, defaulted TaskSpec.

PURE. `parse_manifest` runs the stages in order: yamlload (bounded YAML), schema
(task.schema.json through jsonschema), rules (what a schema cannot say), then builds
the frozen TaskSpec with every default filled in and its spec hash. Every problem of
a file is reported at once; the only exception raised is ManifestInvalidError.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath
from collections.abc import Mapping
from typing import Any, Final

from controller import extraargs
from controller.manifests.problems import FatalError, ManifestInvalidError, Problem, kind_of
from controller.manifests.quantities import parse_cpu, parse_duration, parse_memory
from controller.manifests.rules import rule_problems
from controller.manifests.rules.config import port_target
from controller.manifests.rules.document import get
from controller.manifests.schema import schema_problems
from controller.manifests.yamlload import decode, load
from controller.model import (
    API_VERSION,
    CheckKind,
    Constraint,
    HealthCheck,
    PortRequest,
    ReloadOn,
    Resources,
    Restart,
    RestartPolicy,
    SpecHash,
    TaskName,
    TaskSpec,
    UpdateOrder,
    Volume,
    frozen_map,
)

SPEC_HASH_PREFIX: Final = "sha256:"
SPEC_HASH_HEX_CHARS: Final = 16
_MANIFEST_KEYS: Final = frozenset({"apiVersion", "kind", "metadata", "spec"})
_DEFAULT_KILL_TIMEOUT_S: Final = 30.0  # TaskSpec.kill_timeout_s's default


def parse_manifest(data: bytes | str, *, source: str) -> TaskSpec:
    """Given a manifest's raw bytes (or text) and its path for messages, return its TaskSpec.

    The spec carries every default and its `spec_hash`; `source` is kept for messages
    only (it does not affect the hash). Raise ManifestInvalidError (a ManifestError)
    listing every problem, sorted by line, each formatted
    `<source>:<line>: <json.path>: <what is wrong; what to do>`.
    """
    return parse_manifest_document(data, source=source)[0]


def parse_manifest_document(data: bytes | str, *, source: str) -> tuple[TaskSpec, dict[str, Any]]:
    """`parse_manifest`, and the loaded document that passed every check.

    `spec_from_document(document, source)` builds the same TaskSpec again without
    loading or checking anything: what a cache of checked documents needs.
    """
    try:
        text = decode(data)
        value, index, problems = load(text)
    except FatalError as fatal:
        raise ManifestInvalidError(source, [fatal.problem]) from None
    if not isinstance(value, dict):
        raise ManifestInvalidError(
            source,
            [
                Problem(
                    index.line(()),
                    "",
                    # A file that is not a mapping is likely no manifest at all (a symlink
                    # to /etc/shadow reads as one long string): say what, never quote it.
                    f"the top level must be a mapping with apiVersion, kind, metadata and spec, "
                    f"not {kind_of(value)}; is this a task manifest?",
                )
            ],
        )
    if not _MANIFEST_KEYS & set(value):
        # Not a manifest at all (`key: value` lines, or /etc/shadow, whose lines end in
        # ":::" and so read as keys): one problem, quoting nothing of the file.
        raise ManifestInvalidError(
            source,
            [
                Problem(
                    index.line(()),
                    "",
                    "none of apiVersion, kind, metadata and spec is here; is this a task "
                    "manifest? (see README.md, 'Task manifests')",
                )
            ],
        )
    logic = rule_problems(value, index)
    claimed = {p.path for p in logic}
    # One message per path: a rule says it better than the schema (and the schema
    # module already keeps one failure per path).
    problems.extend(p for p in schema_problems(value, index) if p.path not in claimed)
    problems.extend(logic)
    if problems:
        raise ManifestInvalidError(source, problems)
    return _to_spec(value, source), value


def spec_from_document(document: dict[str, Any], source: str) -> TaskSpec:
    """The TaskSpec of a document `parse_manifest_document` returned (it checks nothing:
    never call it on anything else)."""
    return _to_spec(document, source)


def compute_spec_hash(spec: TaskSpec) -> SpecHash:
    """Return `sha256:<16 hex>` over the canonical JSON of the spec.

    Every field counts except `source` (the file name), `labels` and `spec_hash`
    itself: any edit of the task replaces its pod, while renaming or moving the file,
    relabelling, comments, key order and YAML style never do. Values are the
    validated, defaulted ones ("10000ms" and "10s" hash alike); mappings are
    key-sorted; list order is kept because it is meaningful (args, volumes).
    """
    doc: dict[str, object] = {
        "apiVersion": API_VERSION,
        "name": spec.name,
        "image": spec.image,
        "command": spec.command,
        "args": list(spec.args),
        "trust_prefix": spec.trust_prefix,
        "insecure_options": list(spec.insecure_options),
        "dns_servers": list(spec.dns_servers),
        "dns_search_domains": list(spec.dns_search_domains),
        "net": list(spec.net),
        "port_map": dict(spec.port_map),
        "debug": spec.debug,
        "no_overlay": spec.no_overlay,
        "volumes": [[v.host, v.container, v.read_only] for v in spec.volumes],
        "group": spec.group,
        "user": spec.user,
        "env": dict(spec.env),
        "cpu_millis": spec.resources.cpu_millis,
        "memory_bytes": spec.resources.memory_bytes,
        "ports": sorted([p.label, p.static] for p in spec.resources.ports),
        "restart": [
            str(spec.restart.policy),
            spec.restart.initial_delay_s,
            spec.restart.max_delay_s,
            spec.restart.stable_after_s,
        ],
        "kill_timeout_s": spec.kill_timeout_s,
        "constraints": [[c.attribute, c.operator, c.value] for c in spec.constraints],
        "stage1": spec.stage1,
        "update_order": str(spec.update_order),
        **extraargs.hash_fields(spec.extra_prepare_args, spec.extra_run_args),
    }
    if spec.health is not None:
        # Only when set: manifests without a check keep the hash they always had. A
        # check edit replaces the pod, as a Kubernetes probe edit restarts the container:
        # the check is part of what the pod is, and a fresh pod starts it afresh.
        h = spec.health
        doc["health"] = [str(h.kind), h.port, h.path, h.status_min, h.status_max,
                         list(h.command), h.interval_s, h.timeout_s, h.start_period_s,
                         h.failure_threshold, h.success_threshold]  # fmt: skip
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return SpecHash(SPEC_HASH_PREFIX + digest[:SPEC_HASH_HEX_CHARS])


def _to_spec(data: dict[str, Any], source: str) -> TaskSpec:
    """Build the TaskSpec of a manifest that passed every check (so no type tests here)."""
    meta = data["metadata"]
    spec = data["spec"]
    cfg = spec["config"]
    res = spec.get("resources", {})
    rst = spec.get("restart", {})
    ports = res.get("ports") or {}
    defaults = Restart()
    built = TaskSpec(
        name=TaskName(meta["name"]),
        image=cfg["image"],
        spec_hash=SpecHash(""),
        source=source,
        labels=_sorted_map(meta.get("labels", {})),
        command=cfg.get("command"),
        args=tuple(cfg.get("args", ())),
        trust_prefix=cfg.get("trust_prefix"),
        insecure_options=tuple(cfg.get("insecure_options", ())),
        dns_servers=tuple(cfg.get("dns_servers", ())),
        dns_search_domains=tuple(cfg.get("dns_search_domains", ())),
        net=tuple(cfg.get("net", ())),
        port_map=_sorted_map({k: port_target(v) for k, v in cfg.get("port_map", {}).items()}),
        debug=cfg.get("debug", False),
        no_overlay=cfg.get("no_overlay", False),
        volumes=tuple(_volume(v) for v in cfg.get("volumes", ())),
        group=cfg.get("group"),
        user=spec.get("user"),
        env=_sorted_map(spec.get("env", {})),
        resources=Resources(
            cpu_millis=parse_cpu(res["cpu"]) if "cpu" in res else None,
            memory_bytes=parse_memory(res["memory"]) if "memory" in res else None,
            ports=tuple(
                PortRequest(label=label, static=_static(ports[label])) for label in sorted(ports)
            ),
        ),
        restart=Restart(
            policy=RestartPolicy(rst.get("policy", defaults.policy)),
            initial_delay_s=_seconds(rst, "initial_delay", defaults.initial_delay_s),
            max_delay_s=_seconds(rst, "max_delay", defaults.max_delay_s),
            stable_after_s=_seconds(rst, "stable_after", defaults.stable_after_s),
        ),
        kill_timeout_s=_seconds(spec, "kill_timeout", _DEFAULT_KILL_TIMEOUT_S),
        constraints=tuple(
            Constraint(
                attribute=c["attribute"], operator=c.get("operator", "="), value=c.get("value", "")
            )
            for c in spec.get("constraints", ())
        ),
        stage1=spec.get("stage1"),
        update_order=UpdateOrder(spec.get("update", {}).get("order", UpdateOrder.STOP_FIRST)),
        suspend=spec.get("suspend", False),
        pull_policy=spec.get("pull_policy", "new"),
        **extraargs.spec_fields(spec),
        health=_health(spec["health"]) if "health" in spec else None,
        reload=(
            ReloadOn(
                signal=spec["reload"].get("signal", "HUP"),
                paths=tuple(posixpath.normpath(p) for p in spec["reload"]["on"]),
            )
            if "reload" in spec
            else None
        ),
        min_healthy_time_s=_seconds(spec.get("update", {}), "min_healthy_time", 10.0),
        healthy_deadline_s=_seconds(spec.get("update", {}), "healthy_deadline", 300.0),
        auto_revert=spec.get("update", {}).get("auto_revert", True),
    )
    return dataclasses.replace(built, spec_hash=compute_spec_hash(built))


def _health(section: Mapping[str, Any]) -> HealthCheck:
    d = HealthCheck(kind=CheckKind.TCP)
    common: dict[str, Any] = {
        "interval_s": _seconds(section, "interval", d.interval_s),
        "timeout_s": _seconds(section, "timeout", d.timeout_s),
        "start_period_s": _seconds(section, "start_period", d.start_period_s),
        "failure_threshold": section.get("failure_threshold", d.failure_threshold),
        "success_threshold": section.get("success_threshold", d.success_threshold),
    }
    if "http" in section:
        http = section["http"]
        low, _, high = str(http.get("expected_status", "200-399")).partition("-")
        return HealthCheck(kind=CheckKind.HTTP, port=http["port"], path=http.get("path", "/"),
                           status_min=int(low), status_max=int(high or low), **common)  # fmt: skip
    if "tcp" in section:
        return HealthCheck(kind=CheckKind.TCP, port=section["tcp"]["port"], **common)
    return HealthCheck(kind=CheckKind.EXEC, command=tuple(section["exec"]["command"]), **common)


def _sorted_map(items: Mapping[str, str]) -> Mapping[str, str]:
    return frozen_map(dict(sorted(items.items())))


def _volume(entry: str) -> Volume:
    parts = entry.split(":")
    return Volume(host=parts[0], container=parts[1], read_only=len(parts) == 3)


def _static(request: object) -> int | None:
    static = get(request, "static")
    return int(static) if isinstance(static, (int, float)) else None


def _seconds(section: Mapping[str, Any], key: str, default: Any) -> float:
    return parse_duration(section[key]) if key in section else float(default)
