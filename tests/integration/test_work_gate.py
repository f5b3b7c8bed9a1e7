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
from controller.statusfiles import StatusWriter, process_info
from controller.timefmt import iso
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


def _stop_argvs(rkt_dir: Path, uuid: str) -> list[list[str]]:
    return [c["argv"] for c in fakerkt.calls(rkt_dir, "stop") if uuid in c["argv"]]


def test_a_background_pass_never_waits_and_a_busy_task_gets_no_new_work(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    fakerkt.add_fault(rkt_dir, cmd="prepare", match="task=web", delay_s=2, times=1)
    reconciler = Reconciler(cfg, make_rkt_cli(cfg), background=True)
    try:
        _write(cfg, "web")
        first = reconciler.run_pass("startup")
        assert [a.kind for a in first.plan.actions] == ["start"]
        assert first.outcomes == ()  # submitted, not waited for
        again = reconciler.run_pass("retry")  # the slow prepare is still under way
        assert again.plan.actions == ()
        # In flight: its fetch phase, or the slow prepare after it.
        assert [h.task for h in again.plan.holds] == ["web"]
        assert again.plan.holds[0].reason in (HoldReason.FETCHING, HoldReason.IN_PROGRESS)
        reconciler.wait_for_work(timeout=30)
        booked = reconciler.run_pass("retry")
        assert [(o.action.kind, o.ok) for o in booked.outcomes] == [("start", True)]
        assert len(fakerkt.calls(rkt_dir, "prepare")) == 1
    finally:
        reconciler.close()


def test_a_graceful_stop_is_watched_by_later_passes_and_forced_after_kill_timeout(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    now = [1000.0]
    reconciler = Reconciler(cfg, make_rkt_cli(cfg), clock=lambda: now[0], background=True)
    try:
        _write(cfg, "keep")
        (Path(cfg.desired_dir) / "web.yaml").write_text(
            manifest_yaml("web").replace("kill_timeout: 5s", "kill_timeout: 45s")
        )
        reconciler.run_pass("startup")
        reconciler.wait_for_work(timeout=30)
        reconciler.run_pass("retry")
        uuid = _uuid_of(rkt_dir, "web")
        # The pod ignores the graceful stop: `rkt stop` says yes and nothing happens.
        fakerkt.add_fault(rkt_dir, cmd="stop", match=f"stop {uuid}", stdout=uuid, exit=0)
        (Path(cfg.desired_dir) / "web.yaml").unlink()

        now[0] = 1001.0
        asked = reconciler.run_pass("file")
        assert [a.kind for a in asked.plan.actions] == ["stop", "remove"]
        reconciler.wait_for_work(timeout=30)
        now[0] = 1002.0
        watched = reconciler.run_pass("retry")
        stop = next(o for o in watched.outcomes if o.action.kind == "stop")
        assert stop.ok and stop.stopping
        assert next(o for o in watched.outcomes if o.action.kind == "remove").skipped
        assert watched.plan.actions == ()
        hold = next(h for h in watched.plan.holds if h.task == "web")
        assert hold.reason == HoldReason.IN_PROGRESS
        assert iso(1002.0 + 45.0) in hold.message
        assert watched.plan.requeue_after is not None and watched.plan.requeue_after <= 1.0
        assert _stop_argvs(rkt_dir, uuid) == [_stop_argvs(rkt_dir, uuid)[0]]  # asked once

        now[0] = 1046.0  # still inside the kill_timeout: still watched, not forced
        reconciler.run_pass("retry")
        reconciler.wait_for_work(timeout=30)
        assert not [a for a in _stop_argvs(rkt_dir, uuid) if "--force" in a]

        now[0] = 1048.0
        forced = reconciler.run_pass("retry")
        assert [a.kind for a in forced.plan.actions] == ["stop", "remove"]
        reconciler.wait_for_work(timeout=30)
        assert [a for a in _stop_argvs(rkt_dir, uuid) if "--force" in a]
        reconciler.run_pass("retry")
        pods = json.loads(fake_rkt_run(rkt_dir, "list", "--format=json").stdout) or []
        assert all(p["name"] != uuid for p in pods)
    finally:
        reconciler.close()
