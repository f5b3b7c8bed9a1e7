"""constraints.check: every operator, met and not met, with whole messages."""

from __future__ import annotations

import pytest

from controller.constraints import OPERATORS, check, lookup, reference_name
from controller.model import Constraint

ATTRS = {
    "driver.rkt": "1",
    "driver.rkt.version": "1.30.0",
    "driver.rkt.appc.version": "0.8.11",
    "kernel.name": "linux",
    "kernel.version": "6.1.0",
    "cpu.numcores": "8",
    "memory.totalbytes": "16777216000",
    "node.unique.name": "node-1",
    "meta.role": "web",
    "meta.tags": "ssd, gpu,eu",
    "meta.weight": "0.5",
    "meta.rc": "1.31.0-rc.1",
    "meta.other_role": "web",
}


def c(attribute: str, operator: str = "=", value: str = "") -> Constraint:
    return Constraint(attribute=attribute, operator=operator, value=value)


MET = [
    pytest.param(c("${meta.role}", "=", "web"), id="eq"),
    pytest.param(c("${meta.role}", "==", "web"), id="eq-double"),
    pytest.param(c("${meta.role}", "is", "web"), id="eq-is-alias"),
    pytest.param(c("meta.role", "=", "web"), id="attribute-without-braces"),
    pytest.param(c("${attr.kernel.name}", "=", "linux"), id="attr-prefix"),
    pytest.param(c("${kernel.name}", "=", "linux"), id="plain-attribute-key"),
    pytest.param(c("${node.unique.name}", "=", "node-1"), id="node-unique-name"),
    pytest.param(c("${meta.role}", "=", "${meta.other_role}"), id="value-is-a-reference"),
    pytest.param(c("${meta.role}", "", "web"), id="empty-operator-means-eq"),
    pytest.param(c("${meta.role}", "!=", "db"), id="ne"),
    pytest.param(c("${meta.rack}", "!=", "r1"), id="ne-unset-is-met"),
    pytest.param(c("${cpu.numcores}", ">", "4"), id="gt-numeric"),
    pytest.param(c("${cpu.numcores}", ">=", "8"), id="ge-numeric-equal"),
    pytest.param(c("${cpu.numcores}", "<", "16"), id="lt-numeric"),
    pytest.param(c("${cpu.numcores}", "<=", "8"), id="le-numeric"),
    pytest.param(c("${meta.weight}", ">", "0.25"), id="gt-decimal"),
    pytest.param(c("${driver.rkt.version}", ">=", "1.27.0"), id="ge-version"),
    pytest.param(c("${driver.rkt.version}", ">", "1.4.0"), id="gt-version-not-lexical"),
    pytest.param(c("${driver.rkt.version}", ">=", "1.27"), id="ge-version-padded"),
    pytest.param(c("${driver.rkt.version}", "<", "2"), id="lt-version-vs-integer"),
    pytest.param(c("${meta.rc}", "<", "1.31.0"), id="prerelease-sorts-before-release"),
    pytest.param(c("${meta.role}", "<", "zzz"), id="lt-lexical"),
    pytest.param(c("${kernel.name}", "regexp", "^lin"), id="regexp"),
    pytest.param(c("${kernel.name}", "regexp", "nu"), id="regexp-searches"),
    pytest.param(c("${meta.tags}", "set_contains", "gpu,ssd"), id="set-contains"),
    pytest.param(c("${meta.tags}", "set_contains_all", "eu"), id="set-contains-all-alias"),
    pytest.param(c("${meta.tags}", "set_contains_any", "hdd, eu"), id="set-contains-any"),
    pytest.param(c("${meta.role}", "is_set"), id="is-set"),
    pytest.param(c("${meta.rack}", "is_not_set"), id="is-not-set"),
    pytest.param(c("${driver.rkt.version}", "version", ">= 1.27, < 2.0"), id="version-range"),
    pytest.param(c("${driver.rkt.version}", "version", "1.30.0"), id="version-bare-is-eq"),
    pytest.param(c("${driver.rkt.version}", "version", "!= 1.29.0"), id="version-ne"),
    pytest.param(c("${driver.rkt.version}", "version", "~> 1.2"), id="version-pessimistic-minor"),
    pytest.param(
        c("${driver.rkt.version}", "version", "~> 1.30.0"), id="version-pessimistic-patch"
    ),
    pytest.param(c("${meta.rc}", "version", ">= 1.31.0-rc.0"), id="version-prerelease-bound"),
    pytest.param(c("${meta.rc}", "semver", ">= 1.30"), id="semver-prerelease-matches"),
    pytest.param(c("${driver.rkt.version}", "semver", ">= 1.27.0, < 1.31.0"), id="semver-range"),
]


@pytest.mark.parametrize("constraint", MET)
def test_met_constraint_gives_no_message(constraint: Constraint) -> None:
    assert check([constraint], ATTRS) == ()


NOT_MET = [
    pytest.param(c("${meta.role}", "=", "db"),
                 'constraint ${meta.role} = "db" not met: meta.role is "web"', id="eq"),
    pytest.param(c("${meta.rack}", "=", "r1"),
                 'constraint ${meta.rack} = "r1" not met: meta.rack is not set', id="eq-unset"),
    pytest.param(c("meta.role", "==", "db"),
                 'constraint ${meta.role} == "db" not met: meta.role is "web"',
                 id="bare-attribute"),
    pytest.param(c("${attr.kernel.name}", "=", "darwin"),
                 'constraint ${attr.kernel.name} = "darwin" not met: attr.kernel.name is "linux"',
                 id="attr-prefix-named-as-written"),
    pytest.param(c("${meta.role}", "=", "${meta.rack}"),
                 'constraint ${meta.role} = "${meta.rack}" not met: meta.rack is not set',
                 id="value-reference-unset"),
    pytest.param(c("${meta.role}", "!=", "web"),
                 'constraint ${meta.role} != "web" not met: meta.role is "web"', id="ne"),
    pytest.param(c("${cpu.numcores}", ">", "8"),
                 'constraint ${cpu.numcores} > "8" not met: cpu.numcores is "8"', id="gt"),
    pytest.param(c("${cpu.numcores}", ">", "10"),
                 'constraint ${cpu.numcores} > "10" not met: cpu.numcores is "8"',
                 id="gt-numeric-not-lexical"),
    pytest.param(c("${cpu.numcores}", ">=", "9"),
                 'constraint ${cpu.numcores} >= "9" not met: cpu.numcores is "8"', id="ge"),
    pytest.param(c("${cpu.numcores}", "<", "8"),
                 'constraint ${cpu.numcores} < "8" not met: cpu.numcores is "8"', id="lt"),
    pytest.param(c("${cpu.numcores}", "<=", "7"),
                 'constraint ${cpu.numcores} <= "7" not met: cpu.numcores is "8"', id="le"),
    pytest.param(c("${meta.rack}", ">", "1"),
                 'constraint ${meta.rack} > "1" not met: meta.rack is not set', id="gt-unset"),
    pytest.param(c("${driver.rkt.version}", "<", "1.27.0"),
                 'constraint ${driver.rkt.version} < "1.27.0" not met: '
                 'driver.rkt.version is "1.30.0"', id="lt-version"),
    pytest.param(c("${kernel.name}", "regexp", "^win"),
                 'constraint ${kernel.name} regexp "^win" not met: kernel.name is "linux"',
                 id="regexp"),
    pytest.param(c("${meta.tags}", "set_contains", "ssd,hdd"),
                 'constraint ${meta.tags} set_contains "ssd,hdd" not met: '
                 'meta.tags is "ssd, gpu,eu"', id="set-contains"),
    pytest.param(c("${meta.tags}", "set_contains_any", "hdd,us"),
                 'constraint ${meta.tags} set_contains_any "hdd,us" not met: '
                 'meta.tags is "ssd, gpu,eu"', id="set-contains-any"),
    pytest.param(c("${meta.gpu}", "is_set"),
                 "constraint ${meta.gpu} is_set not met: meta.gpu is not set", id="is-set"),
    pytest.param(c("${meta.role}", "is_not_set"),
                 'constraint ${meta.role} is_not_set not met: meta.role is "web"',
                 id="is-not-set"),
    pytest.param(c("${driver.rkt.version}", "version", ">= 1.27, < 1.30"),
                 'constraint ${driver.rkt.version} version ">= 1.27, < 1.30" not met: '
                 'driver.rkt.version is "1.30.0"', id="version-range"),
    pytest.param(c("${driver.rkt.version}", "version", "~> 1.29.0"),
                 'constraint ${driver.rkt.version} version "~> 1.29.0" not met: '
                 'driver.rkt.version is "1.30.0"', id="version-pessimistic"),
    pytest.param(c("${meta.rc}", "version", ">= 1.30"),
                 'constraint ${meta.rc} version ">= 1.30" not met: meta.rc is "1.31.0-rc.1"',
                 id="version-prerelease-never-meets-release-range"),
    pytest.param(c("${meta.role}", "version", ">= 1.0"),
                 'constraint ${meta.role} version ">= 1.0" not met: meta.role is "web"',
                 id="version-of-non-version"),
    pytest.param(c("${meta.rack}", "version", ">= 1.0"),
                 'constraint ${meta.rack} version ">= 1.0" not met: meta.rack is not set',
                 id="version-unset"),
    pytest.param(c("${meta.rc}", "semver", "< 1.31.0-rc.1"),
                 'constraint ${meta.rc} semver "< 1.31.0-rc.1" not met: meta.rc is "1.31.0-rc.1"',
                 id="semver"),
]  # fmt: skip


@pytest.mark.parametrize(("constraint", "message"), NOT_MET)
def test_unmet_constraint_gives_readable_message(constraint: Constraint, message: str) -> None:
    assert check([constraint], ATTRS) == (message,)


MALFORMED = [
    pytest.param(c("${meta.role}", "like", "w%"),
                 'constraint ${meta.role} like "w%": unknown operator "like"', id="unknown-op"),
    pytest.param(c("${meta.role}", "regexp", "(web"),
                 'constraint ${meta.role} regexp "(web": invalid regular expression: '
                 "missing ), unterminated subpattern at position 0", id="bad-regexp"),
    pytest.param(c("${driver.rkt.version}", "version", ">= 1.27, soon"),
                 'constraint ${driver.rkt.version} version ">= 1.27, soon": '
                 'invalid version constraint "soon"', id="bad-version-range"),
    pytest.param(c("${driver.rkt.version}", "version", ""),
                 'constraint ${driver.rkt.version} version "": invalid version constraint ""',
                 id="empty-version-range"),
]  # fmt: skip


@pytest.mark.parametrize(("constraint", "message"), MALFORMED)
def test_malformed_constraint_fails_with_message_instead_of_raising(
    constraint: Constraint, message: str
) -> None:
    assert check([constraint], ATTRS) == (message,)


def test_every_failing_constraint_is_reported_in_order() -> None:
    constraints = [
        c("${meta.role}", "=", "db"),
        c("${kernel.name}", "=", "linux"),
        c("${meta.gpu}", "is_set"),
    ]
    assert check(constraints, ATTRS) == (
        'constraint ${meta.role} = "db" not met: meta.role is "web"',
        "constraint ${meta.gpu} is_set not met: meta.gpu is not set",
    )


def test_quotes_in_values_are_escaped() -> None:
    assert check([c("${meta.role}", "=", 'a"b')], ATTRS) == (
        'constraint ${meta.role} = "a\\"b" not met: meta.role is "web"',
    )


def test_every_listed_operator_is_understood() -> None:
    unknown = [op for op in OPERATORS if "unknown operator" in " ".join(check([c("x", op)], {}))]
    assert unknown == []


@pytest.mark.parametrize(
    ("text", "name"),
    [("${meta.role}", "meta.role"), ("  ${ attr.kernel.name } ", "attr.kernel.name"),
     ("meta.role", "meta.role")],
)  # fmt: skip
def test_reference_name(text: str, name: str) -> None:
    assert reference_name(text) == name


def test_lookup_strips_attr_prefix_only_when_needed() -> None:
    attrs = {"kernel.name": "linux", "attr.odd": "literal"}
    assert [lookup(n, attrs) for n in ("attr.kernel.name", "kernel.name", "attr.odd", "x")] == [
        "linux",
        "linux",
        "literal",
        None,
    ]
