"""Rules for the rest of `spec`: resources, restart timing, kill_timeout, constraints,
stage1, update order, and the ${...} variables in any string rkt will see.

PURE. Each rule is a function of the Document that adds problems; RULES in
rules/__init__.py lists them.
"""

from __future__ import annotations

import posixpath
import re
from decimal import Decimal
from typing import Final

from controller import extraargs
from controller.manifests.problems import Path, quote, quote_key
from controller.manifests.quantities import (
    format_memory,
    parse_cpu,
    parse_duration,
    parse_memory,
)
from controller.manifests.rules.document import Document, finite, get, strs
from controller.manifests.variables import variable_problems
from controller.model import Restart, UpdateOrder

MIN_MEMORY_BYTES: Final = 4096
"""rkt refuses memory limits under 4 KiB."""
CONSTRAINT_OPERATORS: Final = (
    "=", "==", "!=", ">", ">=", "<", "<=", "regexp", "set_contains",
    "is_set", "is_not_set", "version", "semver",
)  # fmt: skip
_UNARY_OPERATORS: Final = frozenset({"is_set", "is_not_set"})


def quantities(doc: Document) -> None:
    base = ("spec", "resources")
    cpu = get(doc.data, *base, "cpu")
    if isinstance(cpu, (int, float)) and not isinstance(cpu, bool) and finite(cpu):
        millis = Decimal(str(cpu)) * 1000
        doc.add(
            (*base, "cpu"),
            f"{cpu} is a bare number, which is ambiguous (cores? millicores? MHz?); "
            f'write "{millis.normalize():f}m" or quote cores: "{cpu}"',
        )
    elif isinstance(cpu, str):
        try:
            parse_cpu(cpu)
        except ValueError as exc:
            doc.add((*base, "cpu"), str(exc))
    memory = get(doc.data, *base, "memory")
    if isinstance(memory, int) and not isinstance(memory, bool):
        doc.add((*base, "memory"), f'{memory} has no unit; write "{_memory_guess(memory)}"')
    elif isinstance(memory, str):
        try:
            size = parse_memory(memory)
        except ValueError as exc:
            doc.add((*base, "memory"), str(exc))
        else:
            if size < MIN_MEMORY_BYTES:
                doc.add(
                    (*base, "memory"),
                    f'{quote(memory)} is below rkt\'s minimum of 4Ki; raise it (e.g. "64Mi")',
                )


def durations(doc: Document) -> None:
    restart: Path = ("spec", "restart")
    seconds: dict[str, float] = {}
    for path in (
        (*restart, "initial_delay"),
        (*restart, "max_delay"),
        (*restart, "stable_after"),
        ("spec", "kill_timeout"),
    ):
        value = get(doc.data, *(str(p) for p in path))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            doc.add(path, f'{value} has no unit; write "{value}s"')
        elif isinstance(value, str):
            try:
                seconds[str(path[-1])] = parse_duration(value)
            except ValueError as exc:
                doc.add(path, str(exc))
    for key in ("initial_delay", "max_delay", "stable_after"):
        if seconds.get(key) == 0:
            doc.add((*restart, key), "must be longer than 0s (a zero delay restarts in a hot loop)")
    initial, maximum = seconds.get("initial_delay"), seconds.get("max_delay")
    if initial is None and maximum is not None:
        initial = Restart().initial_delay_s
    if maximum is None and initial is not None:
        maximum = Restart().max_delay_s
    if initial is not None and maximum is not None and initial > maximum:
        doc.add(
            (*restart, "initial_delay"),
            f"initial_delay ({initial:g}s) is longer than max_delay ({maximum:g}s); "
            "make max_delay at least as long",
        )


def constraints(doc: Document) -> None:
    base = ("spec", "constraints")
    items = get(doc.data, *base)
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        operator = item.get("operator", "=")
        if not isinstance(operator, str) or operator not in CONSTRAINT_OPERATORS:
            continue
        value = item.get("value")
        if operator in _UNARY_OPERATORS:
            if "value" in item:
                doc.add(
                    (*base, i, "value"), f"operator {quote_key(operator)} takes no value; remove it"
                )
        elif "value" not in item:
            doc.add((*base, i, "value"), f"operator {quote_key(operator)} needs a value; add one")
        elif operator == "regexp" and isinstance(value, str):
            try:
                re.compile(value)
            except re.error as exc:
                doc.add((*base, i, "value"), f"{quote(value)} is not a valid regexp: {exc}")
        elif operator in ("version", "semver", "set_contains") and value == "":
            doc.add((*base, i, "value"), f"operator {quote_key(operator)} needs a non-empty value")


def stage1(doc: Document) -> None:
    stage1 = get(doc.data, "spec", "stage1")
    if not isinstance(stage1, str) or not stage1:
        return
    if stage1.startswith(("./", "../", "~")) or (
        not stage1.startswith("/") and "://" not in stage1 and stage1.endswith(".aci")
    ):
        doc.add(
            ("spec", "stage1"),
            f"{quote(stage1)} looks like a relative path; write an absolute path, a URL "
            "or an image name such as coreos.com/rkt/stage1-fly:1.30.0",
        )


def update_order(doc: Document) -> None:
    order = get(doc.data, "spec", "update", "order")
    ports = get(doc.data, "spec", "resources", "ports")
    if order == UpdateOrder.START_FIRST and isinstance(ports, dict):
        static = [k for k, v in ports.items() if isinstance(get(v, "static"), int)]
        if static:
            doc.add(
                ("spec", "update", "order"),
                f"start-first cannot work with static ports ({', '.join(static)}): the new "
                "pod could not bind them while the old one runs; use stop-first",
            )


def update_timing(doc: Document) -> None:
    """A rollout must have time to pass: min_healthy_time shorter than healthy_deadline."""
    section = get(doc.data, "spec", "update")
    if not isinstance(section, dict):
        return
    try:
        least = parse_duration(section.get("min_healthy_time", "10s"))
        deadline = parse_duration(section.get("healthy_deadline", "5m"))
    except (TypeError, ValueError):
        return  # the schema reports the malformed duration
    if least >= deadline:
        doc.add(
            ("spec", "update", "healthy_deadline"),
            f"must be longer than min_healthy_time ({least:g}s): a new pod could never "
            "pass the rollout in time",
        )


def health(doc: Document) -> None:
    base: Path = ("spec", "health")
    section = get(doc.data, "spec", "health")
    if not isinstance(section, dict):
        return
    kinds = [k for k in ("http", "tcp", "exec") if k in section]
    if len(kinds) != 1:
        found = f"found {', '.join(kinds)}" if kinds else "found none"
        doc.add(base, f"a check needs exactly one of http, tcp or exec ({found})")
    for kind in ("http", "tcp"):
        label = get(section, kind, "port")
        ports = get(doc.data, "spec", "resources", "ports")
        if isinstance(label, str) and not (isinstance(ports, dict) and label in ports):
            doc.add(
                (*base, kind, "port"),
                f"port label {quote_key(label)} is not declared in spec.resources.ports; "
                "declare it there (the check connects to it)",
            )
    if get(section, "exec", "command") == []:
        doc.add((*base, "exec", "command"), "the command is empty; give the argv to run")
    status = get(section, "http", "expected_status")
    if isinstance(status, str) and "-" in status:
        low, high = status.split("-", 1)
        if low.isdigit() and high.isdigit() and int(low) > int(high):
            doc.add(
                (*base, "http", "expected_status"),
                f"{quote(status)} is an empty range; write low-high",
            )
    seconds: dict[str, float] = {}
    for key in ("interval", "timeout", "start_period"):
        value = section.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            doc.add((*base, key), f'{value} has no unit; write "{value}s"')
        elif isinstance(value, str):
            try:
                seconds[key] = parse_duration(value)
            except ValueError as exc:
                doc.add((*base, key), str(exc))
    for key in ("interval", "timeout"):
        if seconds.get(key) == 0:
            doc.add((*base, key), "must be longer than 0s")


def reload(doc: Document) -> None:
    """`spec.reload.on`: files the app can see (inside a volume), on a stage1 rktctl can
    signal an app of (not kvm)."""
    base: Path = ("spec", "reload")
    section = get(doc.data, "spec", "reload")
    if not isinstance(section, dict):
        return
    mounted = [
        posixpath.normpath(entry.split(":", 1)[0])
        for _, entry in strs(get(doc.data, "spec", "config", "volumes"))
        if ":" in entry and entry.split(":", 1)[0]
    ]
    for i, path in strs(section.get("on")):
        where = (*base, "on", i)
        absolute = path.startswith("/")
        if not absolute and (path.startswith("~") or ".." in path.split("/")):
            doc.add(
                where,
                f"{quote(path)}: write an absolute path or one relative to the task's data "
                "directory, as a volume host path (no '~', no '..')",
            )
            continue
        normal = posixpath.normpath(path)
        inside = [
            m
            for m in mounted
            if m.startswith("/") == absolute
            and (normal == m or normal.startswith(m.rstrip("/") + "/"))
        ]
        if not inside:
            doc.add(
                where,
                f"{quote(path)} is in none of this task's volumes, so the app would not see "
                "the change it is signalled for; mount its directory with spec.config.volumes",
            )
    stage1 = get(doc.data, "spec", "stage1")
    if isinstance(stage1, str) and re.search(r"stage1-kvm(?![a-z0-9])", stage1.lower()):
        doc.add(
            base,
            "the kvm stage1 runs apps inside a virtual machine, where the host cannot signal "
            "them; drop reload (a change of these files then needs a manifest edit) or use "
            "another stage1",
        )


def variables(doc: Document) -> None:
    targets: list[tuple[Path, object]] = [  # (path, text)
        (("spec", "config", "command"), get(doc.data, "spec", "config", "command"))
    ]
    for key in ("args", "volumes"):
        for i, text in strs(get(doc.data, "spec", "config", key)):
            targets.append((("spec", "config", key, i), text))
    env = get(doc.data, "spec", "env")
    if isinstance(env, dict):
        targets.extend((("spec", "env", k), v) for k, v in env.items())
    constraints = get(doc.data, "spec", "constraints")
    if isinstance(constraints, list):
        for i, item in enumerate(constraints):
            if isinstance(item, dict):
                for key in ("attribute", "value"):
                    targets.append((("spec", "constraints", i, key), item.get(key)))
    for path, value in targets:
        if isinstance(value, str) and "$" in value:
            for message in variable_problems(value, doc.ports):
                doc.add(path, message)


def _memory_guess(n: int) -> str:
    if n >= 1 << 16 and format_memory(n) != str(n):
        return format_memory(n)
    return f"{n}Mi"


def extra_args(doc: Document) -> None:
    """`spec.extra_args`: only rkt flags rktctl does not manage itself (controller/extraargs)."""
    for path, message in extraargs.manifest_problems(doc.data):
        doc.add(path, message)
