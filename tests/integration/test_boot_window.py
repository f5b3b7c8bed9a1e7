"""A pod in its boot window (running, no pid file yet) cannot be stopped: a deferral, not a failure.

Integration tier, in-process, on the fake rkt with its `boot_s` fault (real rkt's host
stage1 has this window for ~1 s; tests/e2e/test_daemon_volumes_boot_ports.py runs the same
scenario on real rkt).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from controller.config import Config
from controller.controllerstatus import action_counts
from controller.errors import PodStarting
from controller.metrics import Metrics
from controller.model import PassResult, PodState, Remove, Stop
from controller.reconcile import Reconciler
from controller.runtime import RktCli
from tests.e2e.harness import manifest_yaml, wait_for
from tests.factories import task
from tests.fakes import fakerkt
from tests.integration.conftest import fake_rkt_run

BOOT_S = 2.0


@pytest.fixture
def cfg(make_config: Callable[..., Config], tmp_path: Path) -> Config:
    (tmp_path / "desired").mkdir()
    return make_config(gc_interval_s=0.0, allow_empty=True)


def test_rkt_stop_in_the_boot_window_raises_pod_starting_and_counts_no_failure(
    make_config: Callable[..., Config], make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    failures: list[str] = []
    cli = make_rkt_cli(make_config(), on_failure=failures.append)
    fakerkt.add_fault(rkt_dir, cmd="run-prepared", boot_s=BOOT_S, times=1)
    spec = task("web", command="/bin/sleep", args=("3600",))
    uuid = cli.prepare(spec)
    cli.run_prepared(spec, uuid)
    pod = cli.status(uuid)
    assert pod is not None and pod.state is PodState.RUNNING and pod.started_at is None

    with pytest.raises(PodStarting) as raised:
        cli.stop(uuid, kill_timeout_s=5)
    assert raised.value.transitional and raised.value.code == "pod_starting"
    assert "error reading pid" in raised.value.stderr_tail
    assert failures == [], "a boot window is not an rkt command failure"

    wait_for(lambda: (p := cli.status(uuid)) is not None and p.started_at, what="the pid file")
    cli.stop(uuid, kill_timeout_s=5)
    assert (cli.status(uuid) or pod).state is PodState.EXITED


def test_a_pass_defers_the_stop_and_a_later_pass_does_it(
    cfg: Config, make_rkt_cli: Callable[..., RktCli], rkt_dir: Path
) -> None:
    desired = Path(cfg.desired_dir)
    (desired / "web.yaml").write_text(manifest_yaml("web"))
    reconciler = Reconciler(cfg, make_rkt_cli(cfg))
    fakerkt.add_fault(rkt_dir, cmd="run-prepared", boot_s=BOOT_S, times=1)
    assert reconciler.run_pass("startup").result is PassResult.OK
    (desired / "web.yaml").unlink()

    with capture_logs() as logs:
        report = reconciler.run_pass("file")
    stop, remove = report.outcomes
    assert isinstance(stop.action, Stop) and isinstance(remove.action, Remove)
    assert (stop.ok, stop.deferred, stop.failed, stop.error_code) == (
        False,
        True,
        False,
        "pod_starting",
    )
    assert (
        remove.skipped and remove.message == "skipped: an earlier action of this task was deferred"
    )
    assert report.result is PassResult.OK
    events = [e["event"] for e in logs]
    assert "action_deferred" in events
    assert "action_failed" not in events and "reconcile_retry_scheduled" not in events
    assert action_counts(report.outcomes)["deferred"] == 1
    metrics = Metrics()
    metrics.observe_pass(report, {}, report.finished_at)
    rendered = metrics.render().decode()
    assert 'rktctl_actions_total{action="stop",result="deferred"} 1.0' in rendered
    assert 'rktctl_passes_total{result="degraded"} 0.0' in rendered

    def stopped() -> bool:
        later = reconciler.run_pass("retry")
        assert not any(o.failed for o in later.outcomes), later.outcomes
        return not json.loads(fake_rkt_run(rkt_dir, "list", "--format=json").stdout)

    wait_for(stopped, what="the pod stopped and removed by a later pass", timeout=30)
