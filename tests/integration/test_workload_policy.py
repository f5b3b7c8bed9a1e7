"""The workload policy is enforced before any rkt call: a manifest asking for more of the host
than the config allows is Blocked, says which config key would allow it, and rkt never hears
of it (issue 11: "with the defaults that runs --user=0 with / mounted and
--insecure-options=all")."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from controller.config import Config
from controller.reconcile import Reconciler
from controller.runtime import RktCli
from controller.statusfiles import StatusWriter, process_info
from tests.e2e.harness import manifest_yaml
from tests.fakes import fakerkt

IN_CONFIG = "    command: /bin/sleep\n"


def _in_config(name: str, line: str) -> str:
    return manifest_yaml(name).replace(IN_CONFIG, line + IN_CONFIG)


HOSTILE = {
    "rootfs": (_in_config("rootfs", '    volumes: ["/:/host"]\n'), "volumes_enabled"),
    "insecure": (
        _in_config("insecure", "    insecure_options: [all]\n"),
        "allowed_insecure_options",
    ),
    "rootuser": (manifest_yaml("rootuser", extra_spec='  user: "0"\n'), "allow_root_user"),
    "stage1": (
        manifest_yaml("stage1", extra_spec="  stage1: /tmp/evil-stage1.aci\n"),
        "allowed_stage1",
    ),
}


@pytest.fixture
def cfg(make_config: Callable[..., Config], tmp_path: Path) -> Config:
    (tmp_path / "desired").mkdir()
    return make_config(gc_interval_s=0.0)


def _write(cfg: Config, name: str, text: str) -> None:
    (Path(cfg.desired_dir) / f"{name}.yaml").write_text(text)


def test_the_default_policy_blocks_each_escalation_before_rkt_hears_of_it(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    _write(cfg, "good", manifest_yaml("good"))
    for name, (text, _key) in HOSTILE.items():
        _write(cfg, name, text)
    report = Reconciler(cfg, make_rkt_cli(cfg)).run_pass("startup")
    assert {o.action.task for o in report.outcomes} == {"good"}
    for name, (_text, key) in HOSTILE.items():
        assert key in report.blocked[name], report.blocked[name]
    # rkt was asked about nothing but the good task (and the listing).
    for call in fakerkt.calls(rkt_dir):
        stamps = [f"rktctl.io/task={n}" for n in HOSTILE]
        assert not any(s in " ".join(call["argv"]) for s in stamps), call["argv"]
        assert "evil-stage1" not in " ".join(call["argv"])

    StatusWriter(cfg.status_dir).publish(
        report, daemon=process_info(cfg, config_path=None, started_at=0.0, node={}), now=1.0
    )
    for name, (_text, key) in HOSTILE.items():
        doc = json.loads((Path(cfg.status_dir) / "tasks" / f"{name}.json").read_text())
        assert doc["phase"] == "Blocked"
        assert key in doc["message"]


def test_what_the_config_allows_runs(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    host = Path(cfg.state_dir).parent / "shared"
    host.mkdir()
    text = manifest_yaml("shared").replace(
        IN_CONFIG, f'    volumes: ["{host}:/shared"]\n' + IN_CONFIG
    )
    _write(cfg, "shared", text)
    _write(cfg, "rootuser", HOSTILE["rootuser"][0])
    allowing = replace(
        cfg, volumes_enabled=True, allowed_volume_prefixes=(str(host),), allow_root_user=True
    )
    report = Reconciler(allowing, make_rkt_cli(allowing)).run_pass("startup")
    assert report.blocked == {}
    assert sorted(o.action.task for o in report.outcomes if o.ok) == ["rootuser", "shared"]
    prepare = next(
        c["argv"]
        for c in fakerkt.calls(rkt_dir, "prepare")
        if "task=rootuser" in " ".join(c["argv"])
    )
    assert "--user=0" in prepare
