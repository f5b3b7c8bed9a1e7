"""The workload policy (controller/security.py): what a manifest may ask of the host.

Each case is one thing a manifest writer could use to get more of the host than a
container; the message must say where in the manifest and which config key allows it.
"""

from __future__ import annotations

import pytest

from controller.config import Config, parse_config
from controller.errors import ConfigError
from controller.model import RKT_INSECURE_OPTIONS, Volume
from controller.reconcile import workload_policy
from controller.security import INSECURE_OPTION_RISKS, WorkloadPolicy, problems
from tests.factories import task

DEFAULT = WorkloadPolicy()


def test_the_defaults_are_the_safe_ones_and_config_agrees() -> None:
    assert workload_policy(Config()) == DEFAULT
    assert (
        WorkloadPolicy(
            volumes_enabled=False,
            allowed_volume_prefixes=(),
            allowed_insecure_options=("image",),
            allow_root_user=False,
            allowed_stage1=(),
        )
        == DEFAULT
    )


def test_a_plain_task_and_relative_volumes_pass_by_default() -> None:
    spec = task("web", volumes=(Volume(host="data", container="/data"),), user="1000")
    assert problems(spec, DEFAULT) == ()


@pytest.mark.parametrize(
    ("spec_kw", "key"),
    [
        pytest.param({"volumes": (Volume(host="/", container="/host"),)}, "volumes_enabled",
                     id="root-fs-volume"),
        pytest.param({"volumes": (Volume(host="/etc", container="/e", read_only=True),)},
                     "volumes_enabled", id="read-only-host-volume"),
        pytest.param({"insecure_options": ("all",)}, "allowed_insecure_options", id="all"),
        pytest.param({"insecure_options": ("image", "capabilities")}, "allowed_insecure_options",
                     id="capabilities"),
        pytest.param({"insecure_options": ("all-run",)}, "allowed_insecure_options",
                     id="all-run"),
        pytest.param({"user": "0"}, "allow_root_user", id="user-0"),
        pytest.param({"user": "root"}, "allow_root_user", id="user-root"),
        pytest.param({"user": "000"}, "allow_root_user", id="user-000"),
        pytest.param({"stage1": "/tmp/evil.aci"}, "allowed_stage1", id="stage1-path"),
        pytest.param({"stage1": "https://evil.example/stage1.aci"}, "allowed_stage1",
                     id="stage1-url"),
    ],
)  # fmt: skip
def test_each_escalation_is_refused_by_default_naming_the_config_key(
    spec_kw: dict, key: str
) -> None:
    found = problems(task("web", **spec_kw), DEFAULT)
    assert len(found) == 1, found
    assert key in found[0]
    assert "controller config" in found[0]


def test_the_message_says_where_and_what() -> None:
    spec = task(
        "web", volumes=(Volume(host="data", container="/d"), Volume(host="/srv", container="/s"))
    )
    assert problems(spec, DEFAULT) == (
        "spec.config.volumes[1]: host path '/srv' is absolute but volumes_enabled is false in "
        "the controller config; set volumes_enabled = true (and allowed_volume_prefixes) to "
        "allow it",
    )
    (capabilities,) = problems(task("web", insecure_options=("capabilities",)), DEFAULT)
    assert capabilities.startswith("spec.config.insecure_options: 'capabilities' (gives the app")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("/srv/redis", True),
        ("/srv", True),
        ("/srvx/data", False),
        ("/srv/../etc", False),
        ("/etc/ssl/certs", True),
        ("/etc/ssl", False),
        ("/", False),
    ],
)
def test_volume_prefixes_match_whole_path_components(host: str, allowed: bool) -> None:
    policy = WorkloadPolicy(
        volumes_enabled=True, allowed_volume_prefixes=("/srv/", "/etc/ssl/certs")
    )
    found = problems(task("web", volumes=(Volume(host=host, container="/d"),)), policy)
    assert (found == ()) is allowed, found
    if not allowed:
        assert "allowed_volume_prefixes (/srv/, /etc/ssl/certs)" in found[0]


def test_enabled_volumes_without_prefixes_allow_any_host_path() -> None:
    policy = WorkloadPolicy(volumes_enabled=True)
    assert problems(task("web", volumes=(Volume(host="/", container="/h"),)), policy) == ()


def test_what_the_config_allows_passes() -> None:
    policy = WorkloadPolicy(
        allowed_insecure_options=("image", "seccomp"),
        allow_root_user=True,
        allowed_stage1=("coreos.com/rkt/stage1-coreos:1.30.0",),
    )
    spec = task(
        "web",
        insecure_options=("none", "seccomp"),
        user="0",
        stage1="coreos.com/rkt/stage1-coreos:1.30.0",
    )
    assert problems(spec, policy) == ()


def test_every_insecure_word_has_its_risk_spelled_out() -> None:
    assert set(INSECURE_OPTION_RISKS) == set(RKT_INSECURE_OPTIONS)


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"allowed_insecure_options": ["run-all"]}, "allowed_insecure_options: unknown option"),
        ({"allowed_volume_prefixes": ["srv"]}, "allowed_volume_prefixes: 'srv' is not an absolute"),
        ({"allowed_volume_prefixes": ["/srv/../etc"]}, "without '..'"),
        ({"allow_root_user": "maybe"}, "allow_root_user: expected true or false"),
    ],
)
def test_bad_policy_settings_are_config_errors(settings: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(settings, {})
    assert any(fragment in p for p in caught.value.problems), caught.value.problems


def test_policy_settings_come_from_the_config_file_and_the_environment() -> None:
    cfg = parse_config(
        {"volumes_enabled": True, "allowed_volume_prefixes": ["/srv"], "allow_root_user": True},
        {"RKTCTL_ALLOWED_STAGE1": "coreos.com/rkt/stage1-coreos:1.30.0"},
    )
    assert workload_policy(cfg) == WorkloadPolicy(
        volumes_enabled=True,
        allowed_volume_prefixes=("/srv",),
        allow_root_user=True,
        allowed_stage1=("coreos.com/rkt/stage1-coreos:1.30.0",),
    )
