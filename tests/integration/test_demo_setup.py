"""The demo's preparation for a real rkt: what it checks first, and how it adapts desired/.

`check_rkt` must name every missing piece with its fix before anything runs (not root,
no stage1, no static busybox, no systemd-nspawn); `adapt_manifest` must turn each
example into a manifest that validates and runs on the demo's busybox image.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controller import aci
from controller.demosetup import DEFAULT_FAKE, adapt_manifest, check_rkt
from controller.manifests import parse_manifest, read_yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "desired").glob("*.yaml"))
NOT_FAKE = "/bin/true"  # any executable that is not the fake stands for a real rkt


@pytest.fixture
def stage1_images(tmp_path: Path) -> Path:
    images = tmp_path / "stage1-images"
    images.mkdir()
    for flavor in ("fly", "host"):
        (images / f"stage1-{flavor}.aci").write_bytes(b"")
    return images


def test_the_fake_needs_nothing() -> None:
    rkt, problems = check_rkt(str(DEFAULT_FAKE), None, euid=1000)
    assert problems == []
    assert rkt.is_fake


def test_a_stage1_for_the_fake_is_refused() -> None:
    _, problems = check_rkt(str(DEFAULT_FAKE), "host")
    assert problems == ["STAGE1 is for a real rkt; the fake needs none"]


@pytest.mark.skipif(not aci.BUSYBOX.exists(), reason="needs busybox-static: apt-get install it")
def test_a_real_rkt_defaults_to_the_fly_stage1(stage1_images: Path) -> None:
    rkt, problems = check_rkt(NOT_FAKE, None, euid=0, stage1_images=stage1_images)
    assert problems == []
    assert rkt.stage1 == str(stage1_images / "stage1-fly.aci")
    assert rkt.fly
    assert rkt.path_prefix == ()


def test_every_missing_piece_is_named_with_its_fix(tmp_path: Path) -> None:
    _, problems = check_rkt(
        NOT_FAKE,
        "host",
        euid=1000,
        busybox=tmp_path / "busybox",
        stage1_images=tmp_path / "none",
    )
    assert problems[:3] == [
        "a real rkt needs root (it refuses unprivileged users): sudo make demo RKT=rkt",
        f"{tmp_path / 'busybox'} is missing: the demo's image is built from it "
        "(apt-get install busybox-static)",
        f"stage1 image {tmp_path / 'none' / 'stage1-host.aci'} not found: STAGE1 is fly, "
        "host or the path of a stage1 ACI",
    ]


def test_a_dynamic_busybox_is_refused_with_the_package_to_install(stage1_images: Path) -> None:
    _, problems = check_rkt(
        NOT_FAKE, "fly", euid=0, busybox=Path("/bin/ls"), stage1_images=stage1_images
    )
    assert len(problems) == 1
    assert "/bin/ls is dynamically linked" in problems[0]
    assert problems[0].endswith("apt-get install busybox-static")


def test_the_host_stage1_needs_nspawn_and_iptables(stage1_images: Path, tmp_path: Path) -> None:
    _, problems = check_rkt(
        NOT_FAKE,
        "host",
        euid=0,
        busybox=Path("/bin/ls"),
        stage1_images=stage1_images,
        tool_path=str(tmp_path),
    )
    assert problems[1:] == [
        "the stage1-host.aci stage1 needs systemd-nspawn: apt-get install systemd-container",
        "the stage1-host.aci stage1 needs iptables: apt-get install iptables",
    ]


@pytest.mark.parametrize("fly", [True, False], ids=["fly", "host"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_adapted_example_validates_and_names_the_demo_image(path: Path, fly: bool) -> None:
    doc, _notes = adapt_manifest(
        read_yaml(path.read_text()), image="/tmp/demo.aci", fly=fly, host_root="/tmp/d/host"
    )
    spec = parse_manifest(yaml.safe_dump(doc), source=path.name)
    assert spec.image == "/tmp/demo.aci"
    assert spec.trust_prefix is None
    assert spec.stage1 is None
    assert all(
        v.host.startswith("/tmp/d/host/") or not v.host.startswith("/") for v in spec.volumes
    )
    command = spec.command or "/bin/sleep"
    assert command.rsplit("/", 1)[-1] in aci.BUSYBOX_APPLETS
    if fly:
        assert spec.port_map == {} or not spec.resources.ports
        assert spec.restart.policy != "on-failure"


def test_adaptation_keeps_the_rest_and_says_what_it_changed() -> None:
    original = read_yaml((ROOT / "desired" / "redis.yaml").read_text())
    doc, notes = adapt_manifest(original, image="/i.aci", fly=True, host_root="/d/host")
    assert doc["spec"]["config"]["volumes"] == ["data:/data"]  # relative: stays as it is
    assert doc["spec"]["config"]["net"] == ["host"]
    assert "port_map" not in doc["spec"]["config"]
    assert doc["spec"]["resources"] == original["spec"]["resources"]
    assert doc["spec"]["user"] == original["spec"]["user"]
    assert doc["spec"]["env"] == original["spec"]["env"]
    assert notes == [
        "a stand-in for redis-server, which busybox lacks",
        "fly: net host, the app binds its host port itself",
    ]
    assert original["spec"]["config"]["image"] == "docker://redis:3.2"  # not mutated
