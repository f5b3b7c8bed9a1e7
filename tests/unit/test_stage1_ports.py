"""Ports and the stage1 flavor (issue 10): fly shares the host's network and cannot remap.

Unit tier (pure core): which flavor a task runs on, which ports fly refuses and why,
what rktctl passes to rkt and advertises in `${RKTCTL_PORT_x}` on every flavor.
"""

from __future__ import annotations

from typing import Any

import pytest

from controller import security
from controller.config import parse_config
from controller.errors import ConfigError
from controller.interpolate import port_env
from controller.model import DEFAULT_STAGE1_FLAVOR, PortRequest, Resources, TaskSpec
from controller.placement import Capacity, Placement, place
from controller.ports import fly_problems
from controller.rktargs import ArgvOptions, prepare_argv, stage1_flavor
from tests.factories import desired, fake_spec_hash, task

FLY = "coreos.com/rkt/stage1-fly:1.30.0"
HOST_PATH = "/usr/lib/rkt/stage1-images/stage1-host.aci"


@pytest.mark.parametrize(
    ("stage1", "default", "want"),
    [
        pytest.param(None, "fly", "fly", id="rkt-default-fly"),
        pytest.param(None, "coreos", "coreos", id="rkt-default-coreos"),
        pytest.param(FLY, "coreos", "fly", id="name"),
        pytest.param("coreos.com/rkt/stage1-host", "fly", "host", id="name-without-version"),
        pytest.param(HOST_PATH, "fly", "host", id="path"),
        pytest.param("/usr/lib/rkt/stage1-images/stage1-fly.aci", "coreos", "fly", id="path-fly"),
        pytest.param("https://example.com/rkt/stage1-kvm-1.30.0.aci", "fly", "kvm", id="url"),
        pytest.param("file:///opt/stage1-coreos.aci?x=1#y", "fly", "coreos", id="url-query"),
        pytest.param("example.com/my-stage1:1.0", "fly", "unknown", id="custom-name"),
        pytest.param("/opt/stage1-flyer.aci", "fly", "unknown", id="not-a-flavor"),
        pytest.param("/opt/stage1-fly/", "coreos", "fly", id="trailing-slash"),
    ],
)
def test_stage1_flavor_is_read_from_rkts_stage1_names(
    stage1: str | None, default: str, want: str
) -> None:
    assert stage1_flavor(stage1, default=default) == want


def test_rktctl_assumes_fly_unless_told_and_refuses_an_unknown_flavor() -> None:
    assert DEFAULT_STAGE1_FLAVOR == "fly"
    assert parse_config({}, {}).default_stage1_flavor == "fly"
    assert parse_config({"default_stage1_flavor": "host"}, {}).default_stage1_flavor == "host"
    with pytest.raises(ConfigError, match="default_stage1_flavor: 'flyy' is not one of fly"):
        parse_config({}, {"RKTCTL_DEFAULT_STAGE1_FLAVOR": "flyy"})


def web(static: int | None, target: str = "8080", **kw: Any) -> TaskSpec:
    return task(
        "web",
        port_map={"http": target},
        resources=Resources(ports=(PortRequest(label="http", static=static),)),
        **kw,
    )


WHERE = "rkt's default stage1"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        pytest.param(web(8080), None, id="static-equals-container-port"),
        pytest.param(web(8080, "8080-tcp"), None, id="port-name-with-number"),
        pytest.param(
            task("web", net=("host",), resources=Resources(ports=(PortRequest(label="http"),))),
            None,
            id="net-host-dynamic-is-fine",
        ),
        pytest.param(
            web(18090),
            [
                "port 'http'",
                "cannot remap",
                "container port 8080",
                "host port 18090",
                "static: 8080",
                "spec.stage1",
            ],
            id="static-remap",
        ),
        pytest.param(
            web(None),
            [
                "port 'http' is dynamic",
                "cannot remap",
                "static: 8080",
                'net: ["host"]',
                "${RKTCTL_PORT_http}",
            ],
            id="dynamic",
        ),
        pytest.param(
            web(2379, "client"),
            ["port_map names 'client'", "container port number"],
            id="named-port",
        ),
    ],
)
def test_fly_refuses_what_it_cannot_publish(spec: TaskSpec, words: list[str] | None) -> None:
    problems = fly_problems(spec, stage1=WHERE)
    if words is None:
        assert problems == ()
        return
    (message,) = problems
    assert f"stage1 fly ({WHERE})" in message
    for word in words:
        assert word in message


def placed(spec: TaskSpec, **kw: Any) -> Placement:
    kwargs: dict[str, Any] = {
        "attrs": {},
        "persisted_ports": {},
        "host_bound": frozenset(),
        "running_tasks": frozenset(),
        "cfg_port_range": (20000, 20099),
        "env": None,
        "capacity": Capacity(),
        "overcommit": False,
        "hasher": fake_spec_hash,
    }
    kwargs.update(kw)
    return place(desired(spec), **kwargs)


def test_placement_blocks_a_fly_remap_and_says_where_fly_came_from() -> None:
    result = placed(web(18090))
    assert "web" not in result.specs
    assert "default_stage1_flavor in the controller config" in result.blocked["web"]
    by_config = placed(web(18090), stage1=FLY, default_stage1_flavor="coreos")
    assert f"the controller's stage1 {FLY}" in by_config.blocked["web"]
    by_spec = placed(web(18090, stage1=FLY), default_stage1_flavor="coreos")
    assert f"spec.stage1 {FLY}" in by_spec.blocked["web"]


def test_a_spec_stage1_with_its_own_network_lifts_the_fly_rule() -> None:
    # rkt's default is fly, this task is not (a spec's stage1 must be allowed by policy)
    allowed = security.WorkloadPolicy(allowed_stage1=(HOST_PATH,))
    result = placed(web(18090, stage1=HOST_PATH), policy=allowed)
    assert result.blocked == {}
    env = port_env(result.bindings["web"])
    assert (env["RKTCTL_PORT_http"], env["RKTCTL_HOST_PORT_http"]) == ("8080", "18090")


def test_on_fly_the_advertised_ports_are_the_port_the_app_listens_on() -> None:
    result = placed(web(8080))
    assert result.blocked == {}
    assert result.env["web"]["RKTCTL_PORT_http"] == "8080"
    assert result.env["web"]["RKTCTL_HOST_PORT_http"] == "8080"


def test_no_port_flag_is_passed_to_fly_and_remaps_stay_on_other_flavors() -> None:
    def argv(spec: TaskSpec, **kw: Any) -> tuple[str, ...]:
        opts = ArgvOptions(rkt="rkt", host_ports={"http": spec.resources.ports[0].static}, **kw)
        return prepare_argv(spec, opts)

    def ports(words: tuple[str, ...]) -> list[str]:
        return [w for w in words if w.startswith("--port=")]

    assert ports(argv(web(8080))) == []  # rkt's default: fly
    assert ports(argv(web(8080), default_stage1_flavor="coreos")) == ["--port=8080-tcp:8080"]
    assert ports(argv(web(18090, stage1=HOST_PATH))) == ["--port=8080-tcp:18090"]
    assert ports(argv(web(8080), stage1=FLY, default_stage1_flavor="host")) == []
