"""interpolate: every variable, the `$${` escape, errors naming the variable, the hash."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest

from controller.interpolate import (
    InterpolationContext,
    InterpolationError,
    interpolate,
    port_env,
    volume_problems,
)
from controller.model import Volume, frozen_map
from controller.ports import PortBinding
from tests.factories import fake_spec_hash, task

ATTRS = {
    "meta.role": "db",
    "meta.rack": "r7",
    "kernel.name": "linux",
    "driver.rkt.version": "1.30.0",
    "node.unique.name": "node-1",
    "node.unique.id": "0123abcd",
    "unique.hostname": "node-1",
}
PORTS = {
    "db": PortBinding(label="db", host_port=20001, host_ip="10.0.0.5", container_port="6379-tcp"),
    "admin": PortBinding(label="admin", host_port=20002, host_ip="10.0.0.5", container_port="web"),
    "raw": PortBinding(label="raw", host_port=9000, host_ip="10.0.0.5"),
    "v6": PortBinding(label="v6", host_port=9001, host_ip="fd00::1"),
}


def ctx(
    *,
    attrs: Mapping[str, str] = ATTRS,
    env: Mapping[str, str] | None = None,
    ports: Mapping[str, PortBinding] = PORTS,
) -> InterpolationContext:
    return InterpolationContext(attrs=attrs, env=env, ports=ports, task_name="redis")


def resolve(text: str, context: InterpolationContext | None = None) -> str:
    """Interpolate `text` as the task's single arg and return the result."""
    spec = task("redis", args=(text,))
    return interpolate(spec, context or ctx(), hasher=fake_spec_hash).args[0]


VARIABLES = [
    pytest.param("${meta.role}", "db", id="meta"),
    pytest.param("${attr.kernel.name}", "linux", id="attr"),
    pytest.param("${attr.driver.rkt.version}", "1.30.0", id="attr-driver"),
    pytest.param("${driver.rkt.version}", "1.30.0", id="driver-without-attr"),
    pytest.param("${node.unique.name}", "node-1", id="node-unique-name"),
    pytest.param("${node.unique.id}", "0123abcd", id="node-unique-id"),
    pytest.param("${attr.unique.hostname}", "node-1", id="unique-hostname"),
    pytest.param("${task.name}", "redis", id="task-name"),
    pytest.param("${NOMAD_TASK_NAME}", "redis", id="nomad-task-name"),
    pytest.param("${RKTCTL_PORT_db}", "6379", id="port-is-container-port-from-name"),
    pytest.param("${RKTCTL_PORT_admin}", "20002", id="port-is-host-port-for-aci-name"),
    pytest.param("${RKTCTL_PORT_raw}", "9000", id="port-is-host-port-without-mapping"),
    pytest.param("${RKTCTL_HOST_PORT_db}", "20001", id="host-port"),
    pytest.param("${RKTCTL_IP_db}", "10.0.0.5", id="ip"),
    pytest.param("${RKTCTL_ADDR_db}", "10.0.0.5:20001", id="addr"),
    pytest.param("${RKTCTL_ADDR_v6}", "[fd00::1]:9001", id="addr-ipv6"),
    pytest.param("${NOMAD_PORT_db}", "6379", id="nomad-port"),
    pytest.param("${NOMAD_HOST_PORT_db}", "20001", id="nomad-host-port"),
    pytest.param("${NOMAD_IP_db}", "10.0.0.5", id="nomad-ip"),
    pytest.param("${NOMAD_ADDR_db}", "10.0.0.5:20001", id="nomad-addr"),
    pytest.param("${ meta.role }", "db", id="spaces-inside-braces"),
    pytest.param("--bind=${NOMAD_IP_db}:${NOMAD_PORT_db}", "--bind=10.0.0.5:6379", id="several"),
    pytest.param("$${meta.role}", "${meta.role}", id="escape"),
    pytest.param("$$${meta.role}", "$${meta.role}", id="escape-found-left-to-right"),
    pytest.param("cost: $5 and $$ and $x", "cost: $5 and $$ and $x", id="lone-dollars-stay"),
    pytest.param("no variables", "no variables", id="plain"),
]


@pytest.mark.parametrize(("text", "expected"), VARIABLES)
def test_variable_resolves(text: str, expected: str) -> None:
    assert resolve(text) == expected


def test_env_variable_resolves_when_allowed() -> None:
    assert resolve("${env.REGION}", ctx(env={"REGION": "eu-1"})) == "eu-1"


UNKNOWN = [
    pytest.param(
        "${meta.zone}",
        "spec.config.args[0]: unknown variable ${meta.zone} "
        "(meta.zone is not an attribute of this node)",
        id="meta",
    ),
    pytest.param(
        "${attr.cpu.flags}",
        "spec.config.args[0]: unknown variable ${attr.cpu.flags} "
        "(cpu.flags is not an attribute of this node)",
        id="attr",
    ),
    pytest.param(
        "${NOMAD_PORT_http}",
        "spec.config.args[0]: unknown variable ${NOMAD_PORT_http} "
        "(the task has no port labelled 'http')",
        id="port-label",
    ),
    pytest.param(
        "${env.HOME}",
        "spec.config.args[0]: ${env.HOME} is not allowed: "
        "set allow_env_interpolation = true in the controller config",
        id="env-not-allowed",
    ),
    pytest.param("${}", "spec.config.args[0]: empty variable ${}", id="empty"),
    pytest.param(
        "${meta.role",
        "spec.config.args[0]: unterminated ${ (write $${ for a literal ${)",
        id="unterminated",
    ),
]


@pytest.mark.parametrize(("text", "message"), UNKNOWN)
def test_unresolvable_variable_is_an_error_naming_it(text: str, message: str) -> None:
    with pytest.raises(InterpolationError) as caught:
        resolve(text)
    assert caught.value.messages == (message,)


def test_env_variable_missing_from_the_environment_is_an_error() -> None:
    with pytest.raises(InterpolationError) as caught:
        resolve("${env.NOPE}", ctx(env={}))
    assert caught.value.messages == (
        "spec.config.args[0]: unknown variable ${env.NOPE} "
        "(NOPE is not set in the controller's environment)",
    )


def test_every_unknown_variable_is_reported_with_its_place() -> None:
    spec = task(
        "redis",
        command="/bin/${meta.a}",
        args=("ok", "${meta.b}-${meta.c}"),
        env=frozen_map({"X": "${meta.d}"}),
        volumes=(Volume(host="${meta.e}", container="/data/${meta.f}"),),
        source="desired/redis.yaml",
    )
    with pytest.raises(InterpolationError) as caught:
        interpolate(spec, ctx(), hasher=fake_spec_hash)
    names = [m.split(" (")[0] for m in caught.value.messages]
    assert names == [
        "spec.config.command: unknown variable ${meta.a}",
        "spec.config.args[1]: unknown variable ${meta.b}",
        "spec.config.args[1]: unknown variable ${meta.c}",
        "spec.env.X: unknown variable ${meta.d}",
        "spec.config.volumes[0]: unknown variable ${meta.e}",
        "spec.config.volumes[0]: unknown variable ${meta.f}",
    ]
    assert caught.value.source == "desired/redis.yaml"
    assert caught.value.code == "interpolation_failed"


def test_command_args_env_and_volumes_are_all_resolved() -> None:
    spec = task(
        "redis",
        command="/opt/${meta.role}/bin",
        args=("--port", "${NOMAD_PORT_db}"),
        env=frozen_map({"RACK": "${meta.rack}", "PLAIN": "x"}),
        volumes=(Volume(host="data/${task.name}", container="/srv/${meta.role}", read_only=True),),
    )
    got = interpolate(spec, ctx(), hasher=fake_spec_hash)
    assert (got.command, got.args, dict(got.env), got.volumes) == (
        "/opt/db/bin",
        ("--port", "6379"),
        {"RACK": "r7", "PLAIN": "x"},
        (Volume(host="data/redis", container="/srv/db", read_only=True),),
    )
    assert got.image == spec.image and got.name == spec.name


def test_spec_without_variables_or_ports_is_returned_unchanged() -> None:
    spec = task("plain", args=("a",), env=frozen_map({"K": "v"}))
    assert interpolate(spec, ctx(ports={}), hasher=fake_spec_hash) is spec


class TestSpecHash:
    """The hash follows the *effective* config, not the node."""

    spec = task("redis", args=("--rack", "${meta.rack}"))

    def hash_with(self, attrs: Mapping[str, str], ports: Mapping[str, PortBinding]) -> str:
        return interpolate(
            self.spec, ctx(attrs=attrs, ports=ports), hasher=fake_spec_hash
        ).spec_hash

    def test_used_attribute_change_changes_the_hash(self) -> None:
        moved = {**ATTRS, "meta.rack": "r8"}
        assert self.hash_with(ATTRS, {}) != self.hash_with(moved, {})

    def test_unrelated_attribute_change_keeps_the_hash(self) -> None:
        other = {**ATTRS, "meta.role": "web", "kernel.name": "freebsd", "meta.new": "1"}
        assert self.hash_with(ATTRS, {}) == self.hash_with(other, {})

    def test_resolved_hash_equals_the_hash_of_the_resolved_spec(self) -> None:
        resolved = dataclasses.replace(self.spec, args=("--rack", "r7"))
        assert self.hash_with(ATTRS, {}) == fake_spec_hash(resolved)

    def test_a_moved_host_port_changes_the_hash(self) -> None:
        one = {"db": PortBinding(label="db", host_port=20001, container_port="6379-tcp")}
        two = {"db": PortBinding(label="db", host_port=20002, container_port="6379-tcp")}
        assert self.hash_with(ATTRS, one) != self.hash_with(ATTRS, two)

    def test_same_ports_give_the_same_hash(self) -> None:
        one = {"db": PortBinding(label="db", host_port=20001, container_port="6379-tcp")}
        again = {"db": PortBinding(label="db", host_port=20001, container_port="6379-tcp")}
        assert self.hash_with(ATTRS, one) == self.hash_with(ATTRS, again)

    def test_ports_alone_change_the_hash_but_not_the_env(self) -> None:
        plain = task("redis")
        got = interpolate(plain, ctx(), hasher=fake_spec_hash)
        assert got.spec_hash != plain.spec_hash
        assert dataclasses.replace(got, spec_hash=plain.spec_hash) == plain


def test_port_env_gives_all_eight_variables_per_label() -> None:
    assert port_env({"db": PORTS["db"]}) == {
        "NOMAD_ADDR_db": "10.0.0.5:20001",
        "NOMAD_HOST_PORT_db": "20001",
        "NOMAD_IP_db": "10.0.0.5",
        "NOMAD_PORT_db": "6379",
        "RKTCTL_ADDR_db": "10.0.0.5:20001",
        "RKTCTL_HOST_PORT_db": "20001",
        "RKTCTL_IP_db": "10.0.0.5",
        "RKTCTL_PORT_db": "6379",
    }


def test_port_env_is_the_same_for_the_same_allocation() -> None:
    """Unlike Nomad's NOMAD_PORT_x, the value does not depend on a previous start."""
    first = port_env(PORTS)
    assert first == port_env(dict(reversed(list(PORTS.items()))))
    assert list(first) == sorted(first)


@pytest.mark.parametrize(
    ("volumes", "allowed", "problems"),
    [
        pytest.param((Volume(host="data", container="/d"),), False, (), id="relative-ok"),
        pytest.param((Volume(host="/srv", container="/d"),), True, (), id="absolute-allowed"),
        pytest.param(
            (Volume(host="/srv", container="/d"),), False,
            ("spec.config.volumes[0]: host path '/srv' is absolute but volumes_enabled is "
             "false in the controller config",),
            id="absolute-not-allowed",
        ),
        pytest.param(
            (Volume(host="d", container="/ok"), Volume(host="d", container="rel")), True,
            ("spec.config.volumes[1]: container path 'rel' is not absolute",),
            id="relative-container",
        ),
    ],
)  # fmt: skip
def test_volume_problems(
    volumes: tuple[Volume, ...], allowed: bool, problems: tuple[str, ...]
) -> None:
    assert volume_problems(volumes, absolute_allowed=allowed) == problems
