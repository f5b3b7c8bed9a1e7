"""Task constraints against this node's attributes, with Nomad's operators.

PURE. `placement.place` calls `check` for every valid task each pass; a task
with failing constraints is Blocked (and a running one is stopped by the
planner). Attributes come from `nodeinfo.gather_attributes` as a flat mapping
(`kernel.name`, `meta.role`, `node.unique.name`, `driver.rkt.version`, ...).
This module never raises for a data problem: an unknown operator, a bad regexp
or a malformed version range is a failing message.

Attribute references are written `${meta.role}`, `${attr.kernel.name}`,
`${node.unique.name}` or `${driver.rkt.version}`; the `${}` may be left out.
`attr.X` looks up `X`; anything else is looked up as written. A `value` that is
exactly one `${...}` reference is resolved the same way (Nomad's RTarget).

Ordering operators (`<`, `<=`, `>`, `>=`) compare numerically when both sides
are numbers, as versions when both look like versions (`1.30.0` > `1.27.0`,
`1.30.0` > `2` is false), else as strings. Beware: `1.30` and `1.4` are both
numbers, so `1.30 < 1.4`; write three-part versions or use `version`.
`version` takes a comma-separated range (`>= 1.27, < 2.0`, `~> 1.2`, `!= 1.28.0`)
and, like Nomad's, never lets a pre-release (`1.30.0-rc1`) satisfy a range
without one; `semver` is the same range syntax with plain semver ordering
(pre-releases sort before their release and may match).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from controller.model import Constraint

_REFERENCE = re.compile(r"^\$\{\s*([^{}]*?)\s*\}$")
_INTEGER = re.compile(r"^[-+]?\d+$")
_DECIMAL = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+)$")
_VERSION = re.compile(
    r"^v?(?P<core>\d+(?:\.\d+)*)"
    r"(?:-(?P<pre>[0-9A-Za-z~-]+(?:\.[0-9A-Za-z~-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z~-]+(?:\.[0-9A-Za-z~-]+)*))?$"
)
_RANGE_PART = re.compile(r"^(?P<op>~>|>=|<=|!=|==|=|>|<)?\s*(?P<version>\S+)$")

OPERATORS = (
    "=", "==", "is", "!=", "not", ">", ">=", "<", "<=", "regexp",
    "set_contains", "set_contains_all", "set_contains_any",
    "is_set", "is_not_set", "version", "semver",
)  # fmt: skip
"""Every operator `check` understands (`is`/`not`/`set_contains_all` are Nomad aliases)."""


def reference_name(text: str) -> str:
    """Return the attribute name in `text`: `${attr.kernel.name}` -> `attr.kernel.name`."""
    match = _REFERENCE.match(text.strip())
    return match.group(1) if match else text.strip()


def lookup(name: str, attrs: Mapping[str, str]) -> str | None:
    """Return the value of attribute `name` (`attr.` prefix optional), None when unset."""
    if name in attrs:
        return attrs[name]
    if name.startswith("attr."):
        return attrs.get(name.removeprefix("attr."))
    return None


def check(constraints: Sequence[Constraint], attrs: Mapping[str, str]) -> tuple[str, ...]:
    """Given a task's constraints and the node's attributes, return one message per failure.

    An empty tuple means every constraint is met. Messages read
    `constraint ${meta.role} = "db" not met: meta.role is "web"`.
    """
    return tuple(msg for c in constraints if (msg := _check_one(c, attrs)) is not None)


def _check_one(constraint: Constraint, attrs: Mapping[str, str]) -> str | None:
    name = reference_name(constraint.attribute)
    operator = constraint.operator.strip() or "="
    shown = f"${{{name}}} {operator}"
    if operator not in ("is_set", "is_not_set"):
        shown += f" {_quote(constraint.value)}"
    left = lookup(name, attrs)
    if operator == "is_set":
        return None if left is not None else f"constraint {shown} not met: {name} is not set"
    if operator == "is_not_set":
        return None if left is None else f"constraint {shown} not met: {name} is {_quote(left)}"

    right: str | None = constraint.value
    right_name = reference_name(constraint.value)
    if _REFERENCE.match(constraint.value.strip()):
        right = lookup(right_name, attrs)
        if right is None:
            return f"constraint {shown} not met: {right_name} is not set"
    assert right is not None

    if operator in ("!=", "not"):
        # Nomad: an unset attribute is "not equal" to anything.
        if left == right:
            return f"constraint {shown} not met: {name} is {_quote(left)}"
        return None
    evaluate = _EVALUATORS.get(operator)
    if evaluate is None:
        return f"constraint {shown}: unknown operator {_quote(operator)}"
    if left is None:
        return f"constraint {shown} not met: {name} is not set"
    try:
        ok = evaluate(left, right)
    except _BadConstraintError as exc:
        return f"constraint {shown}: {exc}"
    if ok:
        return None
    return f"constraint {shown} not met: {name} is {_quote(left)}"


class _BadConstraintError(ValueError):
    """The constraint itself is malformed (bad regexp, bad version range)."""


def _quote(text: str | None) -> str:
    return '""' if text is None else '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- ordering -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Version:
    core: tuple[int, ...]
    pre: tuple[str, ...]
    """Pre-release identifiers (`1.30.0-rc.1` -> ("rc", "1")); build metadata is ignored."""

    def key(
        self, width: int
    ) -> tuple[tuple[int, ...], tuple[int, tuple[tuple[int, int, str], ...]]]:
        """Sort key: core padded with zeros; a release sorts after its pre-releases."""
        core = self.core + (0,) * (width - len(self.core))
        if not self.pre:
            return core, (1, ())
        ids = tuple((1, 0, p) if not p.isdigit() else (0, int(p), "") for p in self.pre)
        return core, (0, ids)


def _parse_version(text: str) -> _Version | None:
    match = _VERSION.match(text.strip())
    if not match:
        return None
    core = tuple(int(part) for part in match.group("core").split("."))
    pre = tuple(match.group("pre").split(".")) if match.group("pre") else ()
    return _Version(core=core, pre=pre)


def _cmp_versions(a: _Version, b: _Version) -> int:
    width = max(len(a.core), len(b.core))
    ka, kb = a.key(width), b.key(width)
    return (ka > kb) - (ka < kb)


def _compare(left: str, right: str) -> int:
    """Three-way compare: numbers, then versions, then strings (see the module doc)."""
    if _INTEGER.match(left) and _INTEGER.match(right):
        a, b = int(left), int(right)
        return (a > b) - (a < b)
    if _DECIMAL.match(left) and _DECIMAL.match(right):
        x, y = float(left), float(right)
        return (x > y) - (x < y)
    lv, rv = _parse_version(left), _parse_version(right)
    if lv is not None and rv is not None:
        return _cmp_versions(lv, rv)
    return (left > right) - (left < right)


def _ordering(test: Callable[[int], bool]) -> Callable[[str, str], bool]:
    return lambda left, right: test(_compare(left, right))


# --- version ranges -------------------------------------------------------------


def _range_parts(spec: str) -> list[tuple[str, _Version]]:
    parts: list[tuple[str, _Version]] = []
    for raw in spec.split(","):
        match = _RANGE_PART.match(raw.strip())
        version = _parse_version(match.group("version")) if match else None
        if match is None or version is None:
            raise _BadConstraintError(f"invalid version constraint {_quote(raw.strip())}")
        parts.append((match.group("op") or "=", version))
    return parts


def _satisfies(version: _Version, op: str, bound: _Version) -> bool:
    order = _cmp_versions(version, bound)
    if op == "~>":
        # Pessimistic: `~> 1.2` means >= 1.2, < 2; `~> 1.2.3` means >= 1.2.3, < 1.3.
        # How many segments were written matters, so `bound.core` is never padded.
        keep = max(len(bound.core) - 1, 1)
        upper = _Version(core=(*bound.core[: keep - 1], bound.core[keep - 1] + 1), pre=())
        return order >= 0 and _cmp_versions(version, upper) < 0
    return {
        "=": order == 0,
        "==": order == 0,
        "!=": order != 0,
        ">": order > 0,
        ">=": order >= 0,
        "<": order < 0,
        "<=": order <= 0,
    }[op]


def _version_check(*, strict_prerelease: bool) -> Callable[[str, str], bool]:
    def evaluate(left: str, right: str) -> bool:
        parts = _range_parts(right)
        version = _parse_version(left)
        if version is None:
            return False
        for op, bound in parts:
            if strict_prerelease and version.pre:
                # go-version: a pre-release only matches a bound with a pre-release
                # on the same core version.
                width = max(len(version.core), len(bound.core))
                same_core = bound.key(width)[0] == version.key(width)[0]
                if not bound.pre or not same_core:
                    return False
            if not _satisfies(version, op, bound):
                return False
        return True

    return evaluate


# --- regexp and sets -----------------------------------------------------------


def _regexp(left: str, right: str) -> bool:
    try:
        pattern = re.compile(right)
    except re.error as exc:
        raise _BadConstraintError(f"invalid regular expression: {exc}") from None
    return pattern.search(left) is not None


def _items(text: str) -> set[str]:
    return {item.strip() for item in text.split(",") if item.strip()}


_EVALUATORS: dict[str, Callable[[str, str], bool]] = {
    "=": lambda left, right: left == right,
    "==": lambda left, right: left == right,
    "is": lambda left, right: left == right,
    ">": _ordering(lambda c: c > 0),
    ">=": _ordering(lambda c: c >= 0),
    "<": _ordering(lambda c: c < 0),
    "<=": _ordering(lambda c: c <= 0),
    "regexp": _regexp,
    "set_contains": lambda left, right: _items(right) <= _items(left),
    "set_contains_all": lambda left, right: _items(right) <= _items(left),
    "set_contains_any": lambda left, right: bool(_items(right) & _items(left)),
    "version": _version_check(strict_prerelease=True),
    "semver": _version_check(strict_prerelease=False),
}
