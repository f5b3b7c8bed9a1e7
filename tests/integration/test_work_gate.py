"""When a task's actions may run: failed stops and removes back off per task (item 9 of issue 11).

In-process Reconciler on the fake rkt with a settable clock: every pass is explicit, so
"was rkt asked again?" is a question about the call log, not about timing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.config import Config
from controller.model import HoldReason
from controller.reconcile import Reconciler
from controller.runtime import RktCli
from controller.status import iso
from controller.statusfiles import StatusWriter, process_info
from tests.e2e.harness import manifest_yaml
from tests.fakes import fakerkt
from tests.integration.conftest import fake_rkt_run


@pytest.fixture
def cfg(make_config: Callable[..., Config], tmp_path: Path) -> Config:
    (tmp_path / "desired").mkdir()
    return make_config(gc_interval_s=0.0, backoff_base_s=10.0, backoff_cap_s=100.0)


def _write(cfg: Config, name: str) -> None:
    (Path(cfg.desired_dir) / f"{name}.yaml").write_text(manifest_yaml(name))


def _uuid_of(rkt_dir: Path, task: str) -> str:
    pods = json.loads(fake_rkt_run(rkt_dir, "list", "--format=json").stdout) or []
    return next(
        p["name"]
        for p in pods
        if p["apps"][0].get("user_annotations", {}).get("rktctl.io/task") == task
    )


def _calls(rkt_dir: Path, cmd: str, uuid: str) -> int:
    return sum(1 for c in fakerkt.calls(rkt_dir, cmd) if uuid in c["argv"])


@pytest.mark.parametrize("cmd", ["stop", "rm"])
def test_a_failed_stop_or_rm_waits_out_its_backoff_and_status_says_when(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path, cmd: str
) -> None:
    now = [1000.0]
    reconciler = Reconciler(cfg, make_rkt_cli(cfg), clock=lambda: now[0])
    _write(cfg, "web")
    _write(cfg, "keep")
    reconciler.run_pass("startup")
    uuid = _uuid_of(rkt_dir, "web")
    fakerkt.add_fault(rkt_dir, cmd=cmd, match=uuid, exit=254, stderr=f"{cmd}: injected")
    (Path(cfg.desired_dir) / "web.yaml").unlink()

    first = reconciler.run_pass("file")
    assert first.retries == {"web": 1010.0}  # base 10 s
    attempts = _calls(rkt_dir, cmd, uuid)
    assert attempts >= 1

    now[0] = 1005.0
    waiting = reconciler.run_pass("retry")
    assert _calls(rkt_dir, cmd, uuid) == attempts  # rkt was not asked again
    assert not [a for a in waiting.plan.actions if a.task == "web"]
    hold = next(h for h in waiting.plan.holds if h.task == "web")
    assert hold.reason == HoldReason.BACKOFF
    assert iso(1010.0) in hold.message
    assert waiting.plan.requeue_after == pytest.approx(5.0)

    writer = StatusWriter(cfg.status_dir)
    info = process_info(cfg, config_path=None, started_at=1000.0, node={})
    writer.publish(first, daemon=info, now=1001.0)
    writer.publish(waiting, daemon=info, now=1005.0)
    doc = json.loads((Path(cfg.status_dir) / "tasks" / "web.json").read_text())
    assert doc["next_retry_at"] == iso(1010.0)
    assert iso(1010.0) in doc["message"]
    assert doc["last_error"]["code"] == "rkt_command_failed"

    now[0] = 1011.0
    again = reconciler.run_pass("retry")
    assert _calls(rkt_dir, cmd, uuid) > attempts
    assert again.retries == {"web": 1011.0 + 20.0}  # doubled

    fakerkt.clear_faults(rkt_dir)
    now[0] = 1032.0
    reconciler.run_pass("retry")
    reconciler.run_pass("retry")
    pods = json.loads(fake_rkt_run(rkt_dir, "list", "--format=json").stdout) or []
    assert all(p["name"] != uuid for p in pods)
    final = reconciler.run_pass("retry")
    assert final.retries == {}
